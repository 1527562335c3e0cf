"""``Pricing`` over the real ``fx`` package: QuoteService, FxPolicy and refund conversion.

Translates wire money (``MoneyModel``) to ``fx.money.Money`` and back, so the payment core
never depends on fx's types.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fx.money import Money
from fx.quotes import Quote, QuoteService, refund_payer_amount
from gateway.payments.ports import PolicyResult, QuoteInfo
from schemas.money import MoneyModel
from schemas.payment import Payer


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

    def __init__(self, quotes: QuoteService, policy: Any) -> None:
        self.quotes, self.policy = quotes, policy

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
    ) -> PolicyResult:
        d = await self.policy.reserve(
            reservation_id=reservation_id,
            payer=payer,
            merchant_country=merchant_country,
            merchant_amount=Money.from_wire(merchant_amount),
            payer_amount=Money.from_wire(payer_amount),
            at=at,
        )
        return PolicyResult(flags=tuple(d.flags), reservation=d.reservation)

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
