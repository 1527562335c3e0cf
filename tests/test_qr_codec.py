"""The merchant QR codec: public scheme examples, every rejection code, round-trip and fuzz properties.

Sources of the example payloads (each decodes exactly and re-encodes byte-identical):
- Pix (BR Code): Banco Central do Brasil, "Manual de Padrões para Iniciação do Pix", the BR Code example
  (key 123e4567-e12b-12d1-a456-426655440000, "Fulano de Tal", BRASILIA).
- Alipay+: "Code Scanning Payment Standards", MPM Code Sample,
  https://docs.alipayplus.com/alipayplus/alipayplus/code-scanning-payment-standards/mpmcodesample
- PromptPay, SGQR/PayNow, VietQR (NAPAS), DuitNow, KHQR: test vectors published in public GitHub
  repositories (found through code search; e.g. the PromptPay vectors of antfu's qrcode toolkit tests, the
  VietQR NAPAS generator reference vector "ung ho lu lut", an AsiaPay DuitNow POS code with a language
  template). KHQR also comes live from the bakong-khqr package (a test dependency).
No valid QRIS or BharatQR vector with a correct CRC was found; their structure (ID.CO.QRIS.WWW / Visa-RuPay
primitive tags 02-25) is covered by the generated payloads below.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.qr import crc16, decode, encode, qr_fingerprint, samples
from gateway.qr._common import CURRENCIES
from schemas.errors import QRError
from schemas.qr import AdditionalData, AlipayPlusQR, LanguageTemplate, MerchantAccount, MerchantQR

PUBLIC = samples.PUBLIC_EXAMPLES


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_examples_decode_and_reencode_byte_identical(name: str) -> None:
    p = PUBLIC[name]
    qr = decode(p)
    assert encode(qr) == p
    assert type(qr).model_validate(qr.model_dump()) == qr  # the fast construction equals a validated model


def test_public_examples_fields() -> None:
    pix = decode(PUBLIC["pix-bcb-manual"])
    assert isinstance(pix, MerchantQR)
    assert pix.merchant_accounts[0].guid == "br.gov.bcb.pix"
    assert (pix.currency, pix.currency_alpha, pix.merchant_name, pix.country) == ("986", "BRL", "Fulano de Tal", "BR")
    assert pix.additional_data is not None and pix.additional_data.reference_label == "***"
    pp = decode(PUBLIC["promptpay-amount"])
    assert isinstance(pp, MerchantQR)
    assert (pp.amount, pp.amount_minor, pp.currency_alpha, pp.dynamic) == ("4.22", 422, "THB", True)
    assert pp.mcc is None and pp.merchant_name is None  # PromptPay transfer codes omit 52/59/60
    assert pp.order == ["00", "01", "29", "58", "53", "54"]  # printed order kept
    vn = decode(PUBLIC["vietqr-napas"])
    assert isinstance(vn, MerchantQR) and vn.merchant_accounts[0].fields is not None
    assert vn.merchant_accounts[0].fields["00"] == "A000000727" and vn.amount_minor == 120000
    dn = decode(PUBLIC["duitnow-language"])
    assert isinstance(dn, MerchantQR) and dn.language is not None
    assert (dn.language.language_preference, dn.language.merchant_name) == ("EN", "AsiaPay-POS Sub 1")
    ap = decode(PUBLIC["alipayplus-sample"])
    assert isinstance(ap, AlipayPlusQR) and ap.code_issuer == "SAMPLEISSUER"
    cdsd = ap.object("CDSD")
    assert cdsd is not None and cdsd.fields == {"01": "SAMPLEPLATFORM", "02": "SAMPLEMERID"}


def test_khqr_generated_by_bakong_khqr() -> None:
    from bakong_khqr import KHQR

    p = str(KHQR("token").create_qr(
        amount=1.5, account_id="someone@wing", merchant_name="TEST SHOP", merchant_city="PHNOM PENH",
        currency="USD", store_label="S1", phone_number="85512345678", bill_number="B-1", terminal_label="T1",
    ))
    qr = decode(p)
    assert isinstance(qr, MerchantQR) and encode(qr) == p
    assert qr.merchant_accounts[0].guid == "someone@wing" and qr.amount_minor == 150
    assert qr.additional_data is not None and qr.additional_data.bill_number == "B-1"
    assert "99" in qr.unreserved  # KHQR's timestamp template, kept verbatim


def test_lowercase_crc_is_accepted_and_kept() -> None:
    p = samples.seoul()
    low = p[:-4] + p[-4:].lower()
    assert low != p and encode(decode(low)) == low
    assert qr_fingerprint(low) == qr_fingerprint(p) == qr_fingerprint(f" {p}\n")


def test_lengths_count_characters_for_korean_names() -> None:
    p = samples.seoul("15000", korean=True)
    qr = decode(p)
    assert isinstance(qr, MerchantQR) and qr.merchant_name == "한강 바베큐" and "5906한강 바베큐" in p


def test_crc16_is_ccitt_false() -> None:
    assert crc16("123456789") == "29B1"


# --- rejections -------------------------------------------------------------------------------------
def with_crc(body: str) -> str:
    return body + "6304" + crc16(body + "6304")


BASE = "000201010211" + "26160012com.kakaopay"
TAIL = "52045812530341058" + "02KR5905SHOP16005SEOUL"


@pytest.mark.parametrize(
    ("payload", "code", "tag_path", "offset"),
    [
        ("0002010102", "QR_MALFORMED", "01", 6),
        ("0002010X0211", "QR_MALFORMED", None, 6),
        (BASE + TAIL + "6304ABCD", "QR_CRC_MISMATCH", "63", None),
        (BASE + TAIL, "QR_MISSING_FIELD", "63", None),
        (with_crc("000201010211" + TAIL), "QR_MISSING_FIELD", "02", None),
        (with_crc(BASE + "5204581258" + "02KR5905SHOP16005SEOUL"), "QR_MISSING_FIELD", "53", None),
        (with_crc(BASE.replace("0012com.kakaopay", "0112com.kakaopay") + TAIL), "QR_MISSING_FIELD", "26.00", 12),
        (with_crc(BASE + TAIL.replace("5303410", "5303000")), "QR_INVALID_FIELD", "53", None),
        (with_crc(BASE + TAIL + "54031.5"), "QR_INVALID_FIELD", "54", None),  # KRW has no decimals
        (with_crc(BASE + TAIL + "5402-1"), "QR_INVALID_FIELD", "54", None),
        (with_crc("000201010213" + TAIL[:0] + "26160012com.kakaopay" + TAIL), "QR_INVALID_FIELD", "01", 6),
        (with_crc(BASE + TAIL.replace("5802KR", "5802kr")), "QR_INVALID_FIELD", "58", None),
        (with_crc(BASE + TAIL + "550202"), "QR_MISSING_FIELD", "56", None),
        (with_crc("000202010211" + "26160012com.kakaopay" + TAIL), "QR_UNSUPPORTED_FORMAT", "00", 0),
        (with_crc(BASE + TAIL + "62060105AB"), "QR_MALFORMED", "62.01", None),
        (BASE + TAIL + "6304" + "ZZZZ", "QR_INVALID_FIELD", "63", None),
        (BASE + TAIL + "6304ABCD" + "6202XX", "QR_MALFORMED", "62", None),
        (with_crc(BASE + BASE[12:] + TAIL), "QR_MALFORMED", "26", 32),
        ("hello", "QR_UNSUPPORTED_FORMAT", None, 0),
        ("https://example.com/pay", "QR_UNSUPPORTED_FORMAT", None, 0),
        ("HTTPS://QR.ALIPAY.COM/MPM/4/R1BMRDAwMA==", "QR_UNSUPPORTED_FORMAT", "version", None),
        ("HTTPS://QR.ALIPAY.COM/MPM/3/!!!", "QR_MALFORMED", "GPLD", None),
        ("HTTPS://QR.ALIPAY.COM/MPM/3/" + base64.b64encode(b"GPLD010PLVS00201").decode(), "QR_MALFORMED", "GPLD", 4),
        ("HTTPS://QR.ALIPAY.COM/MPM/3/" + base64.b64encode(b"GPLD000").decode(), "QR_MISSING_FIELD", "GPLD", 7),
    ],
)
def test_rejections_carry_code_path_and_offset(
    payload: str, code: str, tag_path: str | None, offset: int | None
) -> None:
    with pytest.raises(QRError) as info:
        decode(payload)
    assert info.value.code == code, info.value.detail
    assert info.value.tag_path == tag_path
    assert isinstance(info.value.offset, int)
    if offset is not None:
        assert info.value.offset == offset


def test_crc_mismatch_points_after_the_crc_id() -> None:
    p = samples.seoul()
    bad = p[:-1] + ("0" if p[-1] != "0" else "1")
    with pytest.raises(QRError) as info:
        decode(bad)
    assert info.value.code == "QR_CRC_MISMATCH" and info.value.offset == len(p) - 4


def test_encode_refuses_what_it_would_not_read() -> None:
    lone = MerchantQR(merchant_accounts=[MerchantAccount(tag="02", value="1")], currency="410", country="KR",
                      postal_code="\ud800")
    with pytest.raises(QRError):
        encode(lone)
    qr = MerchantQR(merchant_accounts=[MerchantAccount(tag="26", fields={"00": "x" * 120})], mcc="5812",
                    currency="410", country="KR", merchant_name="A", merchant_city="B")
    with pytest.raises(QRError) as info:
        encode(qr)
    assert info.value.code == "QR_INVALID_FIELD" and info.value.tag_path == "26.00"


# --- properties -------------------------------------------------------------------------------------
TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=0xFFFF, exclude_categories=["Cs"]), max_size=20)
NAME = st.one_of(TEXT.filter(bool), st.sampled_from(["한강 바베큐", "ร้านอาหาร", "上海面馆", "Café Ñ"]))
SUBS = st.dictionaries(st.sampled_from([f"{i:02d}" for i in range(1, 100)]), TEXT, max_size=3)


@st.composite
def merchant_qrs(draw: st.DrawFn) -> MerchantQR:
    tags = draw(st.lists(st.integers(2, 51), min_size=1, max_size=4, unique=True))
    accounts = []
    for t in sorted(tags):
        if t <= 25:
            accounts.append(MerchantAccount(tag=f"{t:02d}", value=draw(st.from_regex(r"[0-9]{1,16}", fullmatch=True))))
        else:
            guid = draw(st.from_regex(r"[A-Za-z0-9.]{1,32}", fullmatch=True))
            accounts.append(MerchantAccount(tag=f"{t:02d}", fields={"00": guid, **draw(SUBS)}))
    cur = draw(st.sampled_from(sorted(CURRENCIES)))
    exp = CURRENCIES[cur][1]
    amount = None
    if draw(st.booleans()):
        whole = draw(st.integers(0, 10**8))
        amount = str(whole) if exp == 0 else f"{whole}.{draw(st.integers(0, 10**exp - 1)):0{exp}d}"
    extra = draw(st.dictionaries(st.sampled_from([f"{i:02d}" for i in range(10, 100)]), TEXT, max_size=2))
    ad = None
    if draw(st.booleans()):
        ad = AdditionalData(bill_number=draw(st.none() | TEXT), terminal_label=draw(st.none() | TEXT),
                            other=dict(sorted(extra.items())))
    lang = LanguageTemplate(language_preference="ZH", merchant_name=draw(NAME)) if draw(st.booleans()) else None
    return MerchantQR(
        point_of_initiation=draw(st.sampled_from([None, "static", "dynamic"])),
        merchant_accounts=accounts,
        mcc=draw(st.none() | st.from_regex(r"[0-9]{4}", fullmatch=True)),
        currency=cur, amount=amount, country=draw(st.from_regex(r"[A-Z]{2}", fullmatch=True)),
        merchant_name=draw(st.none() | NAME), merchant_city=draw(st.none() | NAME),
        postal_code=draw(st.none() | TEXT), additional_data=ad, language=lang,
        unreserved=dict(sorted(draw(st.dictionaries(st.sampled_from(["80", "91", "99"]), TEXT, max_size=2)).items())),
        other=dict(sorted(draw(st.dictionaries(st.sampled_from(["65", "70", "79"]), TEXT, max_size=2)).items())),
    )


def printed(qr: MerchantQR) -> MerchantQR:
    """Only what is printed: without what decode derives (gateway.qr.tree) or computes."""
    ad = qr.additional_data.model_copy(update={"templates": {}}) if qr.additional_data else None
    lang = qr.language.model_copy(update={"templates": {}}) if qr.language else None
    return qr.model_copy(update={"crc": None, "currency_alpha": None, "amount_minor": None, "additional_data": ad,
                                 "language": lang, "unreserved_templates": {}, "profiles": [], "warnings": []})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(merchant_qrs())
def test_decode_of_encode_is_the_model(m: MerchantQR) -> None:
    p = encode(m)
    qr = decode(p)
    assert isinstance(qr, MerchantQR)
    assert printed(qr) == m
    assert encode(qr) == p


@settings(max_examples=150, deadline=None)
@given(merchant_qrs(), st.randoms(use_true_random=False))
def test_any_printed_order_round_trips(m: MerchantQR, rnd: object) -> None:
    p = encode(m)
    qr = decode(p)
    assert isinstance(qr, MerchantQR)
    tags = [t for t in ["00", *sorted(set(_top_tags(p)) - {"00", "63"})]]
    shuffled = ["00", *rnd.sample(tags[1:], len(tags) - 1)]  # type: ignore[attr-defined]
    p2 = encode(qr.model_copy(update={"order": shuffled, "crc": None}))
    assert encode(decode(p2)) == p2 and _top_tags(p2)[:-1] == shuffled


def _top_tags(p: str) -> list[str]:
    out, i = [], 0
    while i < len(p):
        out.append(p[i : i + 2])
        i += 4 + int(p[i + 2 : i + 4])
    return out


SEEDS = [samples.seoul(), samples.seoul("15000", korean=True, reference="R1"), samples.shanghai("15.05"),
         samples.alipayplus(), *PUBLIC.values()]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SEEDS), st.integers(0, 400), st.integers(0, 3), st.characters(max_codepoint=0x10FFFF))
def test_mutated_and_truncated_payloads_raise_only_qrerror(seed: str, pos: int, op: int, ch: str) -> None:
    k = pos % (len(seed) + 1)
    mutated = [seed[:k], seed[:k] + ch + seed[k + 1 :], seed[:k] + seed[k + 1 :], seed[:k] + ch + seed[k:]][op]
    try:
        qr = decode(mutated)
    except QRError as exc:
        assert exc.code in QRError.codes and isinstance(exc.offset, int)
    else:
        assert encode(qr) == mutated  # whatever decodes is reproduced exactly


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_raises_only_qrerror(text: str) -> None:
    for p in (text, "00" + text, with_crc("00" + text), "HTTPS://A/MPM/3/" + text, "0002010102" + text + "\ud800"):
        try:
            decode(p)
        except QRError:
            pass
