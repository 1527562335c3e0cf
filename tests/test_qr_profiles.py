"""The whole EMVCo tree and the scheme profiles on public example codes (sources in docs/qr.md), tolerated
deviations as warnings, and expired dynamic codes refused at payment time (QR_EXPIRED)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bakong_khqr import KHQR
from test_qr_resolver import partner
from test_qr_speedups import check

from gateway.config import load_settings
from gateway.payments.qrbridge import RoutingResolver
from gateway.qr import crc16, decode, encode
from gateway.qr.emvco import decode_checked
from gateway.qr.emvco import scan as decode_objects
from gateway.qr.samples import PUBLIC_EXAMPLES
from schemas.errors import QRError
from schemas.qr import AdditionalData, LanguageTemplate, MerchantAccount, MerchantQR

# Public codes as printed in public repositories and payment-provider documentation (docs/qr.md).
QRIS_NOBU = ("00020101021126670016COM.NOBUBANK.WWW01189360050300000879140214107456374359710303UMI51440014ID.CO.QRIS"
             ".WWW0215ID20232494105490303UMI5204511153033605802ID5912YANAMIKUBOTZ6005TEGAL61055211162070703A016304F0A6")
QRIS_DANA = ("00020101021126570011ID.DANA.WWW011893600915311093669202091109366920303UKE51440014ID.CO.QRIS.WWW0215ID1"
             "0210624013640303UKE5204899953033605802ID5909SHN GROUP6010Kab. Bogor6105163206304BAFC")
UPI_RAZORPAY = ("000201010212021643926300000000850415540461000000008061661005900000000890827YESB0CMSNOC2223330048827"
                "00126430010A0000005240117razorpaybqr@icici02041.1027350010A0000005240117RZPGT8ildsFTgS5Sp5204753153033"
                "5654041.105802IN5906zxcbmn6005Delhi610611008562300514GT8ildsFTgS5Sp070838R004506304B6A9")
UPI_HDFC = ("000201010211021644038499331959060415522024099331959061661000309933195920825HDFC0000001501003081282002656"
            "0010A0000005240138centralwarehousingco.99331959@hdfcbank27430010A0000005240125STQ200318122305804I040108"
            "5204939953033565802IN5923CENTRAL WAREHOUSING NEW6009New Delhi610611001662410525STQ200318122305804I04010"
            "80708993319596304e9fc")
# BCB's manual, dynamic example fields (its payload location in 26.25), CRC computed here.
PIX_DYNAMIC = encode(MerchantQR(
    point_of_initiation="dynamic",
    merchant_accounts=[MerchantAccount(tag="26", fields={
        "00": "br.gov.bcb.pix", "25": "pix.example.com/8b3da2f3-9a41-40d1-a91a-bd93113bd441"})],
    mcc="0000", currency="986", country="BR", merchant_name="Fulano de Tal", merchant_city="BRASILIA",
    additional_data=AdditionalData(reference_label="***"),
))


def khqr(expiration_days: int = 1) -> str:
    """A dynamic KHQR from NBC's reference SDK (bakong-khqr): tag 99 carries creation and expiry."""
    out = KHQR("unused-token").create_qr(account_id="someone@wing", merchant_name="TEST MERCHANT",
                                         merchant_city="PHNOM PENH", amount=1.5, currency="USD", store_label="S1",
                                         phone_number="85512345678", bill_number="INV-1", terminal_label="T1",
                                         static=False, expiration=expiration_days)
    assert isinstance(out, str)
    return out


def profile(p: str) -> dict[str, Any]:
    qr = decode(p)
    assert isinstance(qr, MerchantQR) and len(qr.profiles) >= 1, p
    check(p)  # asserts the fast path and the reference agree on it
    return qr.profiles[0].model_dump()


@pytest.mark.parametrize(("name", "scheme", "fields"), [
    ("vietqr-napas", "vietqr", {"service_code": "QRIBFTTA", "acquirer_bin": "970415", "account": "0011001932418"}),
    ("vietqr-vcb", "vietqr", {"service_code": "QRIBFTTA", "acquirer_bin": "970436", "account": "1023456789"}),
    ("pix-bcb-manual", "pix", {"key": "123e4567-e12b-12d1-a456-426655440000", "txid": "***"}),
    ("promptpay-phone", "promptpay", {"mobile": "0066801234567"}),
    ("promptpay-taxid", "promptpay", {"national_id": "3800800582711"}),
    ("paynow-uen", "paynow", {"proxy_type": "2", "proxy": "201403121W", "editable": "1", "expiry_date": "20301231"}),
    ("duitnow-language", "duitnow", {"participant": "890046", "merchant_id": "JjXrENybjHu7ag3sShhEmDUh3amy"}),
])
def test_public_examples_decode_their_scheme_profile(name: str, scheme: str, fields: dict[str, str]) -> None:
    got = profile(PUBLIC_EXAMPLES[name])
    assert (got["scheme"], got["fields"]) == (scheme, fields)


def test_pix_dynamic_url_qris_and_upi() -> None:
    assert profile(PIX_DYNAMIC)["fields"] == {"url": "pix.example.com/8b3da2f3-9a41-40d1-a91a-bd93113bd441",
                                              "txid": "***"}
    assert profile(QRIS_NOBU)["fields"] == {"issuer": "COM.NOBUBANK.WWW", "merchant_pan": "936005030000087914",
                                            "merchant_id": "10745637435971", "criteria": "UMI",
                                            "nmid": "ID2023249410549"}
    assert profile(QRIS_DANA)["fields"]["criteria"] == "UKE"
    assert profile(UPI_RAZORPAY)["fields"] == {"vpa": "razorpaybqr@icici", "minimum_amount": "1.10",
                                               "transaction_reference": "RZPGT8ildsFTgS5Sp"}
    assert profile(UPI_HDFC)["fields"]["vpa"] == "centralwarehousingco.99331959@hdfcbank"


def test_khqr_timestamps_and_accounts() -> None:
    p = khqr()
    got = profile(p)
    assert got["scheme"] == "khqr" and got["template"] == "29"
    assert got["fields"] == {"account_type": "individual", "bakong_account_id": "someone@wing"}
    qr = decode(p)
    assert isinstance(qr, MerchantQR)
    stamps = qr.unreserved_templates["99"]  # the raw value stays in ``unreserved`` too
    assert qr.unreserved["99"] == "".join(f"{t}{len(v):02d}{v}" for t, v in stamps.items())
    created, expires = datetime.fromisoformat(got["created_at"]), datetime.fromisoformat(got["expires_at"])
    assert int(created.timestamp() * 1000) == int(stamps["00"]) and (expires - created).days == 1


def test_every_template_of_the_tree_is_decoded_and_kept_raw() -> None:
    qr = MerchantQR(
        merchant_accounts=[MerchantAccount(tag="26", fields={"00": "com.example", "01": "M-1"})],
        mcc="5812", currency="410", country="KR", merchant_name="A", merchant_city="B",
        additional_data=AdditionalData(reference_label="R-1", other={"50": "0010com.issuer0103XYZ", "51": "plain"}),
        language=LanguageTemplate(language_preference="KO", merchant_name="가", other={"03": "0006kr.lng0101Z"}),
        unreserved={"80": "0011com.example0105HELLO", "91": "not-a-template"},
    )
    p = encode(qr)
    got = decode(p)
    assert isinstance(got, MerchantQR) and check(p)
    assert got.unreserved_templates == {"80": {"00": "com.example", "01": "HELLO"}}
    assert got.unreserved == {"80": "0011com.example0105HELLO", "91": "not-a-template"}
    assert got.additional_data is not None and got.additional_data.templates == {"50": {"00": "com.issuer",
                                                                                       "01": "XYZ"}}
    assert got.language is not None and got.language.templates == {"03": {"00": "kr.lng", "01": "Z"}}
    assert [(w.code, w.tag_path) for w in got.warnings] == [("UNRESERVED_NOT_TEMPLATE", "91")]
    assert encode(got) == p


def with_crc(body: str) -> str:
    return body + crc16(body + "6304").join(["6304", ""])


def test_tolerated_deviations_are_warnings_the_rest_still_refused() -> None:
    three = with_crc(QRIS_NOBU[:-8].replace("52045111", "5203511"))
    qr = decode(three)
    assert isinstance(qr, MerchantQR) and qr.mcc == "511" and check(three) is False  # the reference decides
    assert [(w.code, w.tag_path) for w in qr.warnings] == [("MCC_NOT_4_DIGITS", "52")]
    ref = decode(QRIS_NOBU)
    assert isinstance(ref, MerchantQR)  # who is paid and how much: unchanged
    assert (qr.merchant_accounts, qr.amount_minor, qr.currency) == (ref.merchant_accounts, ref.amount_minor,
                                                                    ref.currency)
    promptpay = decode(PUBLIC_EXAMPLES["promptpay-phone"])
    assert isinstance(promptpay, MerchantQR)
    assert [w.code for w in promptpay.warnings] == ["MCC_MISSING", "MERCHANT_NAME_MISSING", "MERCHANT_CITY_MISSING"]
    hdfc = decode(UPI_HDFC)
    assert isinstance(hdfc, MerchantQR) and [w.code for w in hdfc.warnings] == ["CRC_LOWER_CASE"]
    for bad in ("520251", "52045X11"):  # 2 digits, a letter: still refused
        with pytest.raises(QRError) as info:
            decode(with_crc(QRIS_NOBU[:-8].replace("52045111", bad)))
        assert (info.value.code, info.value.tag_path) == ("QR_INVALID_FIELD", "52")


def resolver(clock: datetime) -> RoutingResolver:
    settings = load_settings(
        partners=[partner("bakong-kh", "KH", "USD"), partner("paynow-sg", "SG", "SGD"),
                  partner("kakaopay-kr", "KR", "KRW")],
        routing=[{"identifier": "someone@wing", "partner": "bakong-kh"},
                 {"identifier": "SG.PAYNOW", "partner": "paynow-sg"}],
    )
    return RoutingResolver(settings, clock=lambda: clock)


def test_expired_dynamic_codes_are_refused_at_payment_time() -> None:
    p = khqr()
    qr = decode(p)
    assert isinstance(qr, MerchantQR) and qr.profiles[0].expires_at is not None
    expiry = datetime.fromisoformat(qr.profiles[0].expires_at)
    assert resolver(expiry - timedelta(milliseconds=1)).resolve(p, "kakaopay-kr").route.acquirer == "bakong-kh"
    with pytest.raises(QRError) as info:
        resolver(expiry).resolve(p, "kakaopay-kr")
    assert (info.value.code, info.value.status, info.value.tag_path) == ("QR_EXPIRED", 422, "99.01")
    # PayNow's expiry date (26.04): the dynamic public example expired in 2023.
    with pytest.raises(QRError, match="paynow code expired") as info:
        resolver(datetime.now(UTC)).resolve(PUBLIC_EXAMPLES["paynow-dynamic"], "kakaopay-kr")
    assert info.value.code == "QR_EXPIRED"
    assert resolver(datetime(2030, 12, 31, 15, 59, tzinfo=UTC)).resolve(PUBLIC_EXAMPLES["paynow-uen"],
                                                                        "kakaopay-kr").route.acquirer == "paynow-sg"


def byte_lengths(p: str) -> str:
    """``p`` as generators that count UTF-8 bytes print it (top level and 64), with a CRC that matches."""
    out = ""
    for tag, value in decode_objects(p[:-8], "").items():
        if tag == "64":
            value = "".join(f"{t}{len(v.encode()):02d}{v}" for t, v in decode_objects(value, "64").items())
        out += f"{tag}{len(value.encode()):02d}{value}"
    return out + "6304" + crc16(out + "6304")


def test_lengths_counted_in_bytes_read_as_printed_with_a_warning() -> None:
    p = encode(MerchantQR(
        merchant_accounts=[MerchantAccount(tag="26", fields={"00": "com.kakaopay", "01": "KP-M-1"})],
        mcc="5812", currency="410", amount="15000", country="KR", merchant_name="한강 바베큐", merchant_city="서울",
        language=LanguageTemplate(language_preference="ZH", merchant_name="汉江烧烤", merchant_city="首尔"),
    ))
    b = byte_lengths(p)
    assert b != p
    with pytest.raises(QRError):
        decode_checked(b)  # the reference alone refuses it
    got, want = decode(b), decode(p)
    assert isinstance(got, MerchantQR) and isinstance(want, MerchantQR)
    assert [w.code for w in got.warnings] == ["LENGTH_IN_BYTES"]
    assert (got.merchant_accounts, got.amount_minor, got.merchant_name, got.language) == (
        want.merchant_accounts, want.amount_minor, want.merchant_name, want.language)
    broken = b[:-4] + ("0000" if b[-4:] != "0000" else "1111")  # the printed CRC must match as printed
    with pytest.raises(QRError) as info:
        decode(broken)
    assert info.value.code == "QR_MALFORMED"
