"""What the payment core needs from its neighbours, as small Protocols (ports).

The orchestrator depends on these shapes, not on ``gateway.qr``/``gateway.routing`` or
``fx`` directly, so it can be unit-tested with fakes and wired to the real modules in the
composition root (``gateway.payments.wiring``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from adapters.base import AcquirerAdapter, WalletAdapter
from schemas.errors import PartnerError
from schemas.money import MoneyModel
from schemas.payment import Merchant, Payer, Route


@dataclass(frozen=True, slots=True)
class ResolvedQR:
    """A decoded merchant QR and the route this caller gets for it."""

    merchant: Merchant
    currency: str  # merchant currency, ISO 4217 alpha-3
    amount_minor: int | None  # tag 54 in minor units (dynamic QR), else None
    dynamic: bool
    route: Route
    fingerprint: str  # stable hash of the payload: binds quotes to the QR
    decoded: Mapping[str, Any] = field(default_factory=dict)  # the public decode view


class QrResolver(Protocol):
    def resolve(self, qr: str, caller: str) -> ResolvedQR:
        """Decode ``qr`` and route it for ``caller`` (the wallet); raises QRError / NoRoute."""


@dataclass(frozen=True, slots=True)
class QuoteInfo:
    """A locked quote as the payment core sees it (amounts on the wire form)."""

    quote_id: str
    merchant_amount: MoneyModel
    payer_amount: MoneyModel
    rate: Decimal
    expires_at: datetime
    wire: Mapping[str, Any]  # fx.quotes.Quote.to_wire(): stored on the payment, shown to partners


# Screening asked for a person to look. Internal flags ("_"): a partner never sees them (no
# tipping-off); "_needs_review" is the one flag an admin review queue lists, HOLD_FLAG says why.
HOLD_FLAG = "_screening_review"
REVIEW_FLAG = "_needs_review"
REVIEW_STAGE = "review"  # a payment held before its debit; not an active stage: nothing drives it


@dataclass(frozen=True, slots=True)
class PolicyResult:
    flags: tuple[str, ...] = ()
    reservation: Mapping[str, Any] | None = None
    hold: bool = False  # created at REVIEW_STAGE (no debit) until an operator decides


class Pricing(Protocol):
    """Quotes, the FX policy and refund conversion (``fx``), on wire money."""

    async def quote(
        self,
        *,
        merchant_amount: MoneyModel,
        payer_currency: str,
        partner_id: str,
        qr_fingerprint: str,
        persist: bool = True,
    ) -> QuoteInfo:
        """A locked quote; ``persist=False`` prices it without storing it (a payment's own quote,
        locked by living in the payment record)."""

    async def peek(
        self, quote_id: str, *, partner_id: str, qr_fingerprint: str, merchant_amount: MoneyModel
    ) -> QuoteInfo:
        """A named quote, checked (binding, expiry) but not consumed: QuoteExpired / QuoteInvalid."""

    async def redeem(
        self,
        quote_id: str,
        *,
        partner_id: str,
        qr_fingerprint: str,
        merchant_amount: MoneyModel,
        consumer: str,
    ) -> QuoteInfo:
        """QuoteExpired / QuoteInvalid when it cannot be used."""

    async def consume(
        self, quote_id: str, *, partner_id: str, qr_fingerprint: str, merchant_amount: MoneyModel, consumer: str
    ) -> None:
        """Mark a peeked quote used by ``consumer`` (a repeat by the same consumer is OK)."""

    async def unredeem(self, quote_id: str, consumer: str) -> None: ...

    async def reserve(
        self,
        *,
        reservation_id: str,
        payer: Payer,
        merchant_country: str,
        merchant_amount: MoneyModel,
        payer_amount: MoneyModel,
        at: datetime,
        wallet: str = "",
        merchant_name: str = "",
    ) -> PolicyResult:
        """Screening then the FX policy: ScreeningHit / LimitExceeded / DataRequired /
        RegistryUnavailable when the payment is refused. ``wallet`` scopes ``payer.id``."""

    async def release(
        self,
        reservation: Mapping[str, Any],
        *,
        fraction: tuple[int, int] | None = None,
        release_id: str | None = None,
    ) -> None:
        """Give FX counters back: all, or ``fraction`` of them once per ``release_id`` (a refund)."""

    def refund_payer_amount(
        self,
        *,
        quote: Mapping[str, Any],
        refund: MoneyModel,
        refunded_before: MoneyModel,
        refunded_payer_before: MoneyModel,
        paid_payer: MoneyModel,
        paid_merchant: MoneyModel,
    ) -> MoneyModel: ...


@dataclass
class Partners:
    """Adapters by partner id (built once in the composition root)."""

    wallets: dict[str, WalletAdapter] = field(default_factory=dict)
    acquirers: dict[str, AcquirerAdapter] = field(default_factory=dict)

    def wallet(self, partner_id: str) -> WalletAdapter:
        try:
            return self.wallets[partner_id]
        except KeyError:
            raise PartnerError(f"no wallet adapter for partner {partner_id}") from None

    def acquirer(self, partner_id: str) -> AcquirerAdapter:
        try:
            return self.acquirers[partner_id]
        except KeyError:
            raise PartnerError(f"no acquirer adapter for partner {partner_id}") from None


def money_wire(m: Any) -> MoneyModel:
    """Wire form of an ``fx.money.Money``-like value (``minor`` + ``currency``)."""
    if isinstance(m, MoneyModel):
        return m
    return MoneyModel.of(str(m.currency), int(m.minor))
