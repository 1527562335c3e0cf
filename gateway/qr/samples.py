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
