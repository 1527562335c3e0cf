"""``QrResolver`` over the QR codec (``gateway.qr``) and the routing table (``gateway.routing``).

Imported lazily so the app starts (and answers every other route) while the codec is absent.
"""

from __future__ import annotations

from gateway.config import Settings
from gateway.payments.ports import ResolvedQR
from schemas.errors import QRError


class RoutingResolver:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def resolve(self, qr: str, caller: str) -> ResolvedQR:
        try:
            from gateway.payments.qrcodec import resolve  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise QRError("merchant QR decoding is not available", code="QR_UNSUPPORTED_FORMAT") from None
        result: ResolvedQR = resolve(self.settings, qr, caller)
        return result
