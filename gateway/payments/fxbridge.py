"""``Pricing`` over the real ``fx`` package: QuoteService, screening, FxPolicy and refund conversion.

Translates wire money (``MoneyModel``) to ``fx.money.Money`` and back, so the payment core
never depends on fx's types. ``reserve`` screens payer and merchant first (a hit refuses the
payment, ``SCREENING_HIT``; a review flags it ``_needs_review`` / ``_screening_review``, hidden
from partners, and holds it for an operator: gateway.payments.review),
then applies the FX policy of every jurisdiction concerned (the wallet's home country from the
partner settings). Registry and screening outcomes are counted on the app's metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter

from fx.money import Money
from fx.quotes import Quote, QuoteService, refund_payer_amount
from fx.screening import Party, Screener
from gateway.payments.ports import HOLD_FLAG, REVIEW_FLAG, PolicyResult, QuoteInfo
from schemas.errors import ScreeningHit
from schemas.money import MoneyModel
from schemas.payment import Payer

log = structlog.get_logger("gateway.payments.fx")


def fx_observers(registry: CollectorRegistry) -> tuple[Callable[[str, str], None], Callable[[str], None]]:
    """(registry observer, screening observer) counting on the app's metrics registry."""
    reg = Counter("qrgw_fx_registry", "National limit registry calls by outcome (fallbacks included)",
                  ["op", "outcome"], registry=registry)
    scr = Counter("qrgw_fx_screening", "Screening verdicts before the debit", ["outcome"], registry=registry)
    return (lambda op, outcome: reg.labels(op, outcome).inc()), (lambda outcome: scr.labels(outcome).inc())


def _info(q: Quote) -> QuoteInfo:
    return QuoteInfo(
        quote_id=q.quote_id,
        merchant_amount=q.merchant_amount.to_wire(),
        payer_amount=q.payer_amount.to_wire(),
        rate=q.rate,
        expires_at=q.expires_at,
        wire=q.to_wire(),
    )


class FxBridge:
    """``policy`` is an ``fx.policy.FxPolicy`` (reserve/release per the contract)."""

    def __init__(
        self,
        quotes: QuoteService,
        policy: Any,
        *,
        screener: Screener | None = None,
        wallet_countries: Mapping[str, str] | None = None,
        observe_screening: Callable[[str], None] | None = None,
    ) -> None:
        self.quotes, self.policy = quotes, policy
        self.screener = screener
        self.wallet_countries = dict(wallet_countries or {})
        self.observe_screening = observe_screening or (lambda outcome: None)

    async def quote(
        self,
        *,
        merchant_amount: MoneyModel,
        payer_currency: str,
        partner_id: str,
        qr_fingerprint: str,
        persist: bool = True,
    ) -> QuoteInfo:
        q = await self.quotes.quote(
            merchant_amount=Money.from_wire(merchant_amount),
            payer_currency=payer_currency,
            partner_id=partner_id,
            qr_fingerprint=qr_fingerprint,
            persist=persist,
        )
        return _info(q)

    async def peek(
        self, quote_id: str, *, partner_id: str, qr_fingerprint: str, merchant_amount: MoneyModel
    ) -> QuoteInfo:
        q = await self.quotes.peek(
            quote_id, partner_id=partner_id, qr_fingerprint=qr_fingerprint,
            merchant_amount=Money.from_wire(merchant_amount),
        )
        return _info(q)

    async def redeem(
        self, quote_id: str, *, partner_id: str, qr_fingerprint: str, merchant_amount: MoneyModel, consumer: str
    ) -> QuoteInfo:
        q = await self.quotes.redeem(
            quote_id,
            partner_id=partner_id,
            qr_fingerprint=qr_fingerprint,
            merchant_amount=Money.from_wire(merchant_amount),
            consumer=consumer,
        )
        return _info(q)

    async def consume(
        self, quote_id: str, *, partner_id: str, qr_fingerprint: str, merchant_amount: MoneyModel, consumer: str
    ) -> None:
        await self.quotes.consume(quote_id, partner_id=partner_id, qr_fingerprint=qr_fingerprint,
                                  merchant_amount=Money.from_wire(merchant_amount), consumer=consumer)

    async def unredeem(self, quote_id: str, consumer: str) -> None:
        await self.quotes.unredeem(quote_id, consumer)

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
        hold = await self._screen(reservation_id, payer, merchant_name, merchant_country)
        d = await self.policy.reserve(
            reservation_id=reservation_id,
            payer=payer,
            wallet=wallet,
            wallet_country=self.wallet_countries.get(wallet),
            merchant_country=merchant_country,
            merchant_amount=Money.from_wire(merchant_amount),
            payer_amount=Money.from_wire(payer_amount),
            at=at,
        )
        flags = (*d.flags, REVIEW_FLAG, HOLD_FLAG) if hold else tuple(d.flags)
        return PolicyResult(flags=flags, reservation=d.reservation, hold=hold)

    async def _screen(self, payment_id: str, payer: Payer, merchant_name: str, merchant_country: str) -> bool:
        """True when the payment must be held for review; ScreeningHit (before anything is counted)."""
        if self.screener is None:
            return False
        v = await self.screener.screen(
            [Party("payer", payer.name, payer.country), Party("merchant", merchant_name or None, merchant_country)]
        )
        self.observe_screening(v.outcome)
        if v.outcome == "clear":
            return False
        # the reason names the list entry: for the operator's log only, never for the partner
        log.warning("screening_" + v.outcome, payment_id=payment_id, reason=v.reason)
        if v.outcome == "hit":
            raise ScreeningHit("the payment was refused by compliance screening")
        return True

    async def release(
        self,
        reservation: Mapping[str, Any],
        *,
        fraction: tuple[int, int] | None = None,
        release_id: str | None = None,
    ) -> None:
        await self.policy.release(reservation, fraction=fraction, release_id=release_id)

    def refund_payer_amount(
        self,
        *,
        quote: Mapping[str, Any],
        refund: MoneyModel,
        refunded_before: MoneyModel,
        refunded_payer_before: MoneyModel,
        paid_payer: MoneyModel,
        paid_merchant: MoneyModel,
    ) -> MoneyModel:
        m = refund_payer_amount(
            rate_quote=quote,
            refund=Money.from_wire(refund),
            refunded_before=Money.from_wire(refunded_before),
            refunded_payer_before=Money.from_wire(refunded_payer_before),
            paid_payer=Money.from_wire(paid_payer),
            paid_merchant=Money.from_wire(paid_merchant),
        )
        return m.to_wire()


def build_fx_bridge(
    settings: Any, store: Any, metrics: CollectorRegistry, closers: list[Any], cls: Callable[..., FxBridge] = FxBridge
) -> FxBridge:
    """The real pricing of the composition root: rates, quotes, registry, screening, policy
    (``cls``: the bridge to build, e.g. ``gateway.obs.fxmetrics.MeteredFxBridge``)."""
    from adapters.oris import OrisRegistry
    from fx.policy import FxPolicy
    from fx.rates import build_rates
    from fx.registry import RegistryGuard
    from fx.screening import ListScreener

    fx = settings.fx
    rates = build_rates(fx, store)
    if hasattr(rates, "aclose"):
        closers.append(rates)
    observe_registry, observe_screening = fx_observers(metrics)
    guard: RegistryGuard | None = None
    reg = fx.policy.registry
    if reg.enabled:
        client = OrisRegistry(str(reg.url), reg.timeout_s)
        guard = RegistryGuard(client, reg.fallback, observe_registry)
        if reg.fallback == "count_locally":
            closers.append(guard.start_flusher(reg.flush_interval_s))  # closed before the client it uses
        closers.append(client)
    screener = None
    if fx.screening.enabled and fx.screening.list_file is not None:
        screener = ListScreener.from_file(fx.screening.list_file, fx.screening.review_countries)
    policy = FxPolicy(fx, store, rates, settings.business_day.zone, registry=guard)
    return cls(
        QuoteService(rates, store, fx), policy, screener=screener,
        wallet_countries={p.id: p.country for p in settings.partners}, observe_screening=observe_screening,
    )
