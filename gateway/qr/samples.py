"""Sample merchant codes of the sandbox topology (docs/qr.md): demo, tests and benchmarks.

Amounts are given as printed (major units, a decimal string: ``"15000"`` KRW, ``"15.05"`` CNY).
"""

from __future__ import annotations

from gateway.qr.alipayplus import encode_alipayplus
from gateway.qr.emvco import encode_emvco
from schemas.qr import AdditionalData, AlipayPlusObject, AlipayPlusQR, MerchantAccount, MerchantQR


def _acct(tag: str, guid: str, merchant_id: str) -> MerchantAccount:
    return MerchantAccount(tag=tag, fields={"00": guid, "01": merchant_id})


def seoul(amount: str | None = None, *, korean: bool = False, reference: str | None = None) -> str:
    """The Seoul restaurant's shared QR: Kakao Pay template 26, Alipay template 27, KRW."""
    return encode_emvco(
        MerchantQR(
            point_of_initiation="dynamic" if amount is not None else "static",
            merchant_accounts=[
                _acct("26", "com.kakaopay", "KP-M-HANGANG-0001"),
                _acct("27", "com.alipay", "ALIKR-HANGANG-0001"),
            ],
            mcc="5812",
            currency="410",
            amount=amount,
            country="KR",
            merchant_name="한강 바베큐" if korean else "HANGANG BBQ",
            merchant_city="서울" if korean else "SEOUL",
            additional_data=AdditionalData(reference_label=reference) if reference else None,
        )
    )


def shanghai(amount: str | None = None, *, reference: str | None = None) -> str:
    """The Shanghai noodle house's QR: Alipay template 26, CNY."""
    return encode_emvco(
        MerchantQR(
            point_of_initiation="dynamic" if amount is not None else "static",
            merchant_accounts=[_acct("26", "com.alipay", "ALICN-NOODLE-0001")],
            mcc="5812",
            currency="156",
            amount=amount,
            country="CN",
            merchant_name="SHANGHAI NOODLE HOUSE",
            merchant_city="SHANGHAI",
            additional_data=AdditionalData(reference_label=reference) if reference else None,
        )
    )


def singapore(amount: str | None = None) -> str:
    """A Singapore hawker stall's QR: OpenWallet template 26, SGD."""
    return encode_emvco(
        MerchantQR(
            point_of_initiation="dynamic" if amount is not None else "static",
            merchant_accounts=[_acct("26", "sg.openwallet", "OW-HAWKER-0001")],
            mcc="5812",
            currency="702",
            amount=amount,
            country="SG",
            merchant_name="MAXWELL HAWKER",
            merchant_city="SINGAPORE",
        )
    )


def alipayplus(domain: str = "QR.ALIPAY.COM") -> str:
    """An Alipay+ MPM code (its own format) of a Seoul merchant acquired through Alipay+."""
    qr = AlipayPlusQR(
        domain=domain,
        objects=[
            AlipayPlusObject(id="PLVS", value="01"),
            AlipayPlusObject(id="CDSD", value="", fields={"01": "ALIPAYPLUSACQP", "02": "ALIKR-HANGANG-0001"}),
            AlipayPlusObject(id="CIRD", value="", fields={"01": "ALIPAYPLUSKR"}),
        ],
    )
    return encode_alipayplus(qr)


# Published example payloads of national schemes (sources in tests/test_qr_codec.py's docstring).
PUBLIC_EXAMPLES: dict[str, str] = {
    "pix-bcb-manual": "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR"
    "5913Fulano de Tal6008BRASILIA62070503***63041D3D",
    "promptpay-phone": "00020101021129370016A000000677010111011300668012345675802TH530376463046197",
    "promptpay-amount": "00020101021229370016A000000677010111011300660000000005802TH530376454044.226304E469",
    "promptpay-taxid": "00020101021129370016A000000677010111021338008005827115802TH5406825.00530376463040DA5",
    "paynow-uen": "00020101021126490009SG.PAYNOW010120210201403121W030110408203012315204000053037025802SG"
    "5913ACME Pte Ltd.6009Singapore6304B69E",
    "paynow-dynamic": "00020101021226560009SG.PAYNOW010120213201509555BNN1030100412230914205029520400005303702"
    "540450.05802SG5914DEV MERCHANT 56009SINGAPORE621601120870-0000VL663049149",
    "vietqr-napas": "00020101021238570010A00000072701270006970415011300110019324180208QRIBFTTA5303704540612000058"
    "02VN62170813ung ho lu lut6304C15C",
    "vietqr-vcb": "00020101021238540010A00000072701240006970436011010234567890208QRIBFTTA5303704540719430005802VN"
    "62120808TT0000696304A8E5",
    "duitnow": "00020101021126350014A00000061500010113016612345678952045999530345854041.005802MY5913TEST MERCHANT"
    "6012KUALA LUMPUR63049BF8",
    "duitnow-language": "00020101021226600014A000000615000101068900460228JjXrENybjHu7ag3sShhEmDUh3amy5204729853034585"
    "40115802MY5917AsiaPay-POS Sub 16006Kangar624005073UktVjo0725FUXkHSHGrI6uP98B4JsvUpybc64270002EN0117"
    "AsiaPay-POS Sub 163047BF7",
    "khqr": "00020101021129300010kh.gov.nbc0112someone@wing52045999530311654041.005802KH5913TEST MERCHANT"
    "6010PHNOM PENH6304D6A2",
    "alipayplus-sample": "HTTPS://QR.SAMPLEDOMAIN.COM/MPM/3/R1BMRDA5NVBMVlMwMDIwMUNEU0QwMzMwMTE0U0FNUExFUExBVEZPUk0w"
    "MjExU0FNUExFTUVSSURDSVJEMDM5MDExMlNBTVBMRUlTU1VFUjAyMDIxMjAzMTNNSU5JUFJPR1JBTUlE",
}
