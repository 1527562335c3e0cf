"""Deviations that need more than a warning on an otherwise decoded code (docs/qr.md, Tolerated deviations).

Lengths counted in UTF-8 bytes: EMVCo counts characters, but some generators count the bytes of a
non-ASCII merchant name (Chinese, Thai, Khmer ...). Such a payload is malformed to the reference decoder;
when its CRC is right over the printed text and every length reads as bytes, it is rebuilt with character
lengths, decoded, and marked ``LENGTH_IN_BYTES``. Only lengths change, never a value: who is paid and how
much stay what the merchant printed.
"""

from __future__ import annotations

from gateway.qr._common import HEAD, crc16
from gateway.qr.emvco import decode_checked
from schemas.errors import QRError
from schemas.qr import MerchantQR, QRWarning

# Containers whose sub-objects carry lengths too: merchant account templates, 62, 64, unreserved.
_CONTAINERS = frozenset({*(f"{t:02d}" for t in range(26, 52)), "62", "64", *(f"{t:02d}" for t in range(80, 100))})


def _split_bytes(b: bytes) -> list[tuple[str, bytes]] | None:
    """The data objects of ``b`` with lengths read as byte counts, or None."""
    out: list[tuple[str, bytes]] = []
    i = 0
    while i < len(b):
        n = HEAD.get(b[i : i + 4].decode("ascii", "replace"))
        if n is None or i + 4 + n > len(b):
            return None
        out.append((b[i : i + 2].decode("ascii"), b[i + 4 : i + 4 + n]))
        i += 4 + n
    return out


def _rebuild(objs: list[tuple[str, bytes]], nested: bool) -> str | None:
    parts: list[str] = []
    for tag, raw in objs:
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None  # a length cut a character in two: not a byte-length code
        if nested and tag in _CONTAINERS and not value.isascii():
            subs = _split_bytes(raw)
            inner = _rebuild(subs, False) if subs is not None else None
            value = inner if inner is not None else value
        if len(value) > 99:
            return None
        parts.append(f"{tag}{len(value):02d}{value}")
    return "".join(parts)


def char_lengths(p: str) -> str | None:
    """``p`` with byte-counted lengths rewritten as character counts and its CRC recomputed, or None
    when ``p`` is not such a code (ASCII, another fault, or a CRC that does not match as printed)."""
    if p.isascii() or p[-8:-4] != "6304":
        return None
    try:
        if crc16(p[:-4]).upper() != p[-4:].upper():
            return None
        objs = _split_bytes(p[:-8].encode("utf-8"))
    except UnicodeEncodeError:
        return None
    body = _rebuild(objs, True) if objs is not None else None
    if body is None or body == p[:-8]:
        return None
    body += "6304"
    return body + crc16(body)


def decode_tolerant(p: str) -> MerchantQR:
    """``decode_checked``, and for a malformed non-ASCII payload the byte-length reading (with a warning)."""
    try:
        return decode_checked(p)
    except QRError as exc:
        fixed = char_lengths(p) if exc.code == "QR_MALFORMED" else None
        if fixed is None:
            raise
        try:
            qr = decode_checked(fixed)
        except QRError:
            raise exc from None  # the byte reading does not help: the original error stands
    qr.warnings.append(QRWarning(code="LENGTH_IN_BYTES", tag_path="",
                                 detail="lengths count UTF-8 bytes, not characters; read as printed"))
    return qr
