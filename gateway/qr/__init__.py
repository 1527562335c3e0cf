"""Merchant QR codec (PROTOCOL.md §4): EMVCo merchant-presented mode and the Alipay+ MPM code.

Self-contained: imports only the standard library, pydantic, ``iso4217`` and ``schemas``.

    decode(payload) -> MerchantQR | AlipayPlusQR     # raises schemas.errors.QRError
    encode(qr) -> str                                 # encode(decode(p)) == p
    crc16(s) -> str                                   # CRC-16/CCITT-FALSE, 4 upper-case hex digits
    qr_fingerprint(payload) -> str                    # sha256 hex of the canonical payload
"""

from __future__ import annotations

import hashlib

from gateway.qr._common import crc16
from gateway.qr._speedups import FAST_EMVCO
from gateway.qr.alipayplus import decode_alipayplus, encode_alipayplus, is_url
from gateway.qr.deviations import decode_tolerant
from gateway.qr.emvco import encode_emvco
from schemas.errors import QRError
from schemas.qr import AlipayPlusQR, DecodedQR, MerchantQR

__all__ = ["AlipayPlusQR", "DecodedQR", "MerchantQR", "QRError", "crc16", "decode", "encode", "qr_fingerprint"]


def decode(payload: str) -> MerchantQR | AlipayPlusQR:
    """Decode a merchant-presented code exactly as given (no trimming) or raise ``QRError``."""
    if FAST_EMVCO is not None:  # compiled: well-formed EMVCo payloads only, else None for the checks below
        qr: MerchantQR | None = FAST_EMVCO(payload)
        if qr is not None:
            return qr
    if not isinstance(payload, str):
        raise QRError("a QR payload is text", code="QR_MALFORMED", offset=0)
    if payload[:2] == "00":
        return decode_tolerant(payload)  # the reference decoder, and known deviations it would refuse
    if is_url(payload):
        return decode_alipayplus(payload)
    raise QRError(
        "not an EMVCo merchant-presented payload (it starts with 00) nor an Alipay+ MPM code",
        code="QR_UNSUPPORTED_FORMAT",
        offset=0,
    )


def encode(qr: MerchantQR | AlipayPlusQR) -> str:
    """The payload of ``qr`` with a correct CRC; raises ``QRError`` for fields no decoder would read."""
    if isinstance(qr, AlipayPlusQR):
        return encode_alipayplus(qr)
    return encode_emvco(qr)


def canonical(payload: str) -> str:
    """Surrounding white space dropped and an EMVCo CRC in upper case: the same code, one text."""
    p = payload.strip()
    if p[:2] == "00" and p[-8:-4] == "6304":
        p = p[:-4] + p[-4:].upper()
    return p


def qr_fingerprint(payload: str) -> str:
    """sha256 (hex) of the canonical payload: binds quotes and payments to one printed code."""
    return hashlib.sha256(canonical(payload).encode("utf-8", "surrogatepass")).hexdigest()
