"""Decoded merchant QR codes (PROTOCOL.md §4): EMVCo merchant-presented mode and Alipay+ MPM.

The models hold every data object of a payload, so that ``gateway.qr.encode`` reproduces a
conforming payload character for character:

- ordered sub-tags are plain ``dict[str, str]`` (insertion order is the printed order);
- a container whose data objects are not in ascending tag order records that order in
  ``order`` (``None`` = ascending, the canonical order ``encode`` uses for built codes);
- ``crc`` is the CRC as printed (``None`` when building: ``encode`` computes it).

Currency: the codec maps ISO 4217 numeric (tag 53) to alpha-3 itself with the ``iso4217``
package (``schemas`` cannot import ``fx``), and refuses numerics that ISO 4217 does not list,
so ``currency_alpha`` and ``amount_minor`` are always filled on a decoded code.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, computed_field

__all__ = [
    "ADDITIONAL_DATA_NAMES",
    "AdditionalData",
    "AlipayPlusObject",
    "AlipayPlusQR",
    "DecodedQR",
    "LanguageTemplate",
    "MerchantAccount",
    "MerchantQR",
    "QRWarning",
    "SchemeProfile",
]

# Sub-tags 01-09 of the additional data field template (tag 62), EMVCo MPM §4.8.
ADDITIONAL_DATA_NAMES: dict[str, str] = {
    "01": "bill_number",
    "02": "mobile_number",
    "03": "store_label",
    "04": "loyalty_number",
    "05": "reference_label",
    "06": "customer_label",
    "07": "terminal_label",
    "08": "purpose_of_transaction",
    "09": "consumer_data_request",
}


class QRWarning(BaseModel):
    """A tolerated deviation from EMVCo (docs/qr.md): one that cannot change who is paid or how much."""

    code: str  # stable, e.g. MCC_NOT_4_DIGITS
    tag_path: str
    detail: str


class SchemeProfile(BaseModel):
    """What a known scheme's nested structures say (docs/qr.md, Scheme profiles): derived on decode,
    never encoded (the raw data objects stay where they are)."""

    scheme: str  # vietqr, khqr, pix, promptpay, paynow, sgqr, duitnow, qris, upi
    template: str | None = None  # the tag of the template it reads (None: several)
    fields: dict[str, str] = Field(default_factory=dict)  # named values, as printed
    created_at: str | None = None  # ISO 8601 UTC, when the code says
    expires_at: str | None = None


class MerchantAccount(BaseModel):
    """Merchant account information, tags 02-51, in payload order.

    Tags 02-25 (card schemes) are primitive: ``value`` as printed, ``fields`` None. Tags
    26-51 are templates: ``fields`` holds every sub-tag in printed order (``"00"``, the
    globally unique identifier, included), ``value`` None.
    """

    tag: str = Field(pattern=r"^(0[2-9]|[1-4][0-9]|5[01])$")
    value: str | None = None
    fields: dict[str, str] | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def guid(self) -> str | None:
        """Sub-tag 00 of a template (a reverse-domain name or an AID); the routing key."""
        return self.fields.get("00") if self.fields is not None else None


class AdditionalData(BaseModel):
    """Additional data field template (tag 62): sub-tags 01-09 named, 10-99 kept in ``other``."""

    bill_number: str | None = None
    mobile_number: str | None = None
    store_label: str | None = None
    loyalty_number: str | None = None
    reference_label: str | None = None
    customer_label: str | None = None
    terminal_label: str | None = None
    purpose_of_transaction: str | None = None
    consumer_data_request: str | None = None
    other: dict[str, str] = Field(default_factory=dict)
    order: list[str] | None = None
    # Derived: payment-system-specific templates (sub-tags 50-99 of ``other`` with a sub-tag 00).
    templates: dict[str, dict[str, str]] = Field(default_factory=dict)


class LanguageTemplate(BaseModel):
    """Merchant information - language template (tag 64)."""

    language_preference: str
    merchant_name: str
    merchant_city: str | None = None
    other: dict[str, str] = Field(default_factory=dict)
    order: list[str] | None = None
    # Derived: sub-tags of ``other`` that are templates (a sub-tag 00), decoded.
    templates: dict[str, dict[str, str]] = Field(default_factory=dict)


class MerchantQR(BaseModel):
    """An EMVCo merchant-presented-mode payload."""

    format: Literal["emvco"] = "emvco"
    payload_format_indicator: str = "01"
    point_of_initiation: Literal["static", "dynamic"] | None = None  # tag 01: 11 / 12
    merchant_accounts: list[MerchantAccount]
    mcc: str | None = None  # 52 (EMVCo mandatory; PromptPay and VietQR transfer codes omit it)
    currency: str  # 53, ISO 4217 numeric as printed
    currency_alpha: str | None = None  # derived on decode
    amount: str | None = None  # 54, exactly as printed
    amount_minor: int | None = None  # derived on decode (ISO 4217 exponent)
    tip_indicator: str | None = None  # 55
    convenience_fee_fixed: str | None = None  # 56
    convenience_fee_percentage: str | None = None  # 57
    country: str  # 58
    merchant_name: str | None = None  # 59 (omitted by PromptPay/VietQR transfer codes, like 52 and 60)
    merchant_city: str | None = None  # 60
    postal_code: str | None = None  # 61
    additional_data: AdditionalData | None = None  # 62
    language: LanguageTemplate | None = None  # 64
    unreserved: dict[str, str] = Field(default_factory=dict)  # 80-99, verbatim
    other: dict[str, str] = Field(default_factory=dict)  # 65-79 and any other tag, verbatim
    crc: str | None = None  # 63, as printed
    order: list[str] | None = None  # top-level tags in printed order when not ascending
    # Derived on decode (gateway.qr.tree), never encoded:
    unreserved_templates: dict[str, dict[str, str]] = Field(default_factory=dict)  # 80-99 decoded
    profiles: list[SchemeProfile] = Field(default_factory=list)  # known schemes it carries, in order
    warnings: list[QRWarning] = Field(default_factory=list)

    @property
    def dynamic(self) -> bool:
        return self.point_of_initiation == "dynamic"

    def templates(self) -> list[MerchantAccount]:
        """The merchant account templates (26-51) in printed order: routing candidates."""
        return [a for a in self.merchant_accounts if a.fields is not None]


class AlipayPlusObject(BaseModel):
    """A data object of an Alipay+ general payload: 4-character id, value as printed, and for a
    template (``CDSD``, ``CIRD``) its sub-objects (2-digit id, 2-digit length) in order."""

    id: str = Field(pattern=r"^[A-Z0-9]{4}$")
    value: str
    fields: dict[str, str] | None = None


class AlipayPlusQR(BaseModel):
    """An Alipay+ merchant-presented code: ``HTTPS://<domain>/MPM/<version>/<Base64 GPLD payload>``."""

    format: Literal["alipayplus"] = "alipayplus"
    scheme: str = "HTTPS"  # as printed (QR alphanumeric mode prints it upper case)
    domain: str
    version: str = "3"
    objects: list[AlipayPlusObject]
    payload: str | None = None  # the Base64 text as printed (None when building)

    def object(self, ident: str) -> AlipayPlusObject | None:
        return next((o for o in self.objects if o.id == ident), None)

    @property
    def code_issuer(self) -> str | None:
        """CIRD sub-object 01: the code issuer."""
        o = self.object("CIRD")
        return o.fields.get("01") if o is not None and o.fields is not None else None


DecodedQR = MerchantQR | AlipayPlusQR
