"""``QrResolver`` over the QR codec (``gateway.qr``) and the routing table (``gateway.routing``).

EMVCo codes give the merchant (name, city, country), the currency (tag 53), the amount (tag 54)
and the routed template's fields (sent to the acquirer as the merchant account). An Alipay+ MPM
code carries none of these: the merchant is the acquirer's (its home country and currency),
named by the code issuer, and the amount is always the payer's to enter (static).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from gateway.config import Settings
from gateway.payments.ports import ResolvedQR
from gateway.qr import decode, qr_fingerprint
from gateway.routing import RoutingTable
from schemas.errors import QRError
from schemas.payment import Merchant, MerchantAccount
from schemas.qr import AlipayPlusQR, MerchantQR


def _now() -> datetime:
    return datetime.now(UTC)


def refuse_expired(code: MerchantQR, now: datetime) -> None:
    """``QR_EXPIRED`` when a scheme profile carries an expiry that has passed (docs/qr.md)."""
    for profile in code.profiles:
        if profile.expires_at is not None and datetime.fromisoformat(profile.expires_at) <= now:
            raise QRError(f"this {profile.scheme} code expired at {profile.expires_at}", code="QR_EXPIRED",
                          tag_path="99.01" if profile.scheme == "khqr" else f"{profile.template}.04")


class RoutingResolver:
    def __init__(self, settings: Settings, table: RoutingTable | None = None,
                 clock: Callable[[], datetime] = _now) -> None:
        self.table = table or RoutingTable.from_settings(settings)
        self.clock = clock

    def resolve(self, qr: str, caller: str) -> ResolvedQR:
        code = decode(qr)
        if isinstance(code, MerchantQR):
            refuse_expired(code, self.clock())  # before routing: an expired code takes no probe slot
        # Quotes and payments use the route: a half-open circuit gives them its probe slot.
        decision = self.table.evaluate(code, caller, admit=True)
        route = decision.chosen()
        if isinstance(code, AlipayPlusQR):
            merchant = Merchant(
                name=code.code_issuer or "Alipay+ merchant",
                city="",
                country=decision.country,
                account=MerchantAccount(identifier=route.identifier, fields={"code": qr}),
            )
            return ResolvedQR(
                merchant=merchant,
                currency=decision.currency,
                amount_minor=None,
                dynamic=False,
                route=route,
                fingerprint=qr_fingerprint(qr),
            )
        if code.currency_alpha is None:
            raise QRError("tag 53 is not a known ISO 4217 currency", code="QR_INVALID_FIELD")
        template = next((t for t in code.merchant_accounts if t.guid == route.identifier), None)
        fields = dict(template.fields or {}) if template is not None else {}
        merchant = Merchant(
            name=code.merchant_name or "",
            city=code.merchant_city or "",
            country=code.country,
            account=MerchantAccount(identifier=route.identifier, fields=fields),
        )
        return ResolvedQR(
            merchant=merchant,
            currency=code.currency_alpha,
            amount_minor=code.amount_minor,
            dynamic=code.amount_minor is not None,
            route=route,
            fingerprint=qr_fingerprint(qr),
        )
