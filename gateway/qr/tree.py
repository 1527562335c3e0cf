"""The rest of the EMVCo tree, derived from a decoded code's raw data objects (docs/qr.md).

Both decoders (the reference ``emvco.decode_checked`` and the compiled fast path, through
``_speedups.scanner_of``) end with ``finish``, so they agree on everything it adds:

- templates with a globally unique identifier in sub-tag 00, decoded into their sub-tags: the
  unreserved templates 80-99, the payment-system-specific templates of tag 62 (sub-tags 50-99) and
  the other sub-tags of tag 64; the raw value stays where it was (``unreserved``, ``other``);
- the scheme profiles (``gateway.qr.profiles``);
- ``warnings``: tolerated deviations, each unable to change who is paid or how much.
"""

from __future__ import annotations

from typing import Any

from gateway.qr.profiles import profiles_of
from schemas.errors import QRError
from schemas.qr import MerchantQR, QRWarning


def template(value: str) -> dict[str, str] | None:
    """The sub-tags of ``value`` when it is a template with a sub-tag 00, else None."""
    from gateway.qr.emvco import scan  # emvco imports this module

    try:
        fields = scan(value, "")
    except QRError:
        return None
    return fields if "00" in fields else None


def templates(raw: dict[str, str], first: str = "00") -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for tag, value in raw.items():
        if tag >= first and (fields := template(value)) is not None:
            out[tag] = fields
    return out


def _set(model: Any, name: str, value: Any) -> None:
    model.__dict__[name] = value
    model.__pydantic_fields_set__.add(name)


def warnings_of(qr: MerchantQR) -> list[QRWarning]:
    """The tolerated deviations of ``qr`` in tag order (codes documented in docs/qr.md)."""
    out: list[QRWarning] = []

    def warn(code: str, tag_path: str, detail: str) -> None:
        out.append(QRWarning(code=code, tag_path=tag_path, detail=detail))

    if qr.mcc is None:
        warn("MCC_MISSING", "52", "merchant category code (52) is missing")
    elif len(qr.mcc) == 3:
        warn("MCC_NOT_4_DIGITS", "52", f"merchant category code (52) {qr.mcc!r} has 3 digits, not 4")
    if qr.merchant_name is None:
        warn("MERCHANT_NAME_MISSING", "59", "merchant name (59) is missing")
    if qr.merchant_city is None:
        warn("MERCHANT_CITY_MISSING", "60", "merchant city (60) is missing")
    if qr.crc is not None and qr.crc != qr.crc.upper():
        warn("CRC_LOWER_CASE", "63", "the CRC (63) is printed in lower-case hexadecimal")
    for tag in qr.unreserved:
        if tag not in qr.unreserved_templates:
            warn("UNRESERVED_NOT_TEMPLATE", tag, f"unreserved template {tag} has no sub-tag 00; kept raw")
    return out


_DERIVED = ("unreserved_templates", "profiles", "warnings")


def finish(qr: MerchantQR) -> MerchantQR:
    """Add the derived parts to a freshly decoded ``qr`` (in place) and return it."""
    d = qr.__dict__
    d["unreserved_templates"] = templates(qr.unreserved) if qr.unreserved else {}
    if qr.additional_data is not None:
        _set(qr.additional_data, "templates", templates(qr.additional_data.other, "50"))
    if qr.language is not None:
        _set(qr.language, "templates", templates(qr.language.other))
    d["profiles"] = profiles_of(qr)
    d["warnings"] = warnings_of(qr)
    qr.__pydantic_fields_set__.update(_DERIVED)
    return qr
