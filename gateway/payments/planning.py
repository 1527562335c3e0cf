"""What a payment request resolves to before anything is written (pure, or reads only).

``plan_payment`` decides the route, the amounts and the quote; ``new_record`` is the payment as
``Store.begin_payment`` stores it. The orchestrator writes; nothing here does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.payments import state as st
from gateway.payments.days import business_day
from gateway.payments.ports import HOLD_FLAG, Partners, Pricing, QrResolver, QuoteInfo, ResolvedQR
from gateway.payments.steps import new_id
from gateway.store.base import Store
from schemas.api import PaymentRequest
from schemas.errors import FXError, QuoteInvalid, ValidationFailed
from schemas.money import MoneyModel
from schemas.payment import PaymentRecord


@dataclass(frozen=True, slots=True)
class Plan:
    """What a payment request resolves to before anything is written."""

    resolved: ResolvedQR
    amount: MoneyModel  # merchant currency
    payer_amount: MoneyModel
    quote: QuoteInfo | None  # None on a domestic route
    named_quote: bool  # the request named a quote (to consume) rather than getting its own


def held(rec: PaymentRecord) -> bool:
    """Screening asked for a person before this payment's debit (set by ``_secure``; an operator's
    approval clears the hold flag, gateway.payments.review)."""
    secure = rec.legs.get("secure")
    return bool(secure and secure.get("hold")) and HOLD_FLAG in rec.flags


def merchant_amount(resolved: ResolvedQR, given: MoneyModel | None) -> MoneyModel:
    """PROTOCOL.md §5: static QR needs ``amount``; dynamic QR: optional, equal to tag 54."""
    if given is not None and given.currency != resolved.currency:
        raise ValidationFailed(f"amount.currency must be the merchant's currency {resolved.currency}")
    if resolved.amount_minor is None:
        if given is None:
            raise ValidationFailed("amount is required for a static QR code")
        if given.minor <= 0:
            raise ValidationFailed("amount.value must be positive")
        return given
    if given is not None and given.minor != resolved.amount_minor:
        raise ValidationFailed("amount differs from the amount in the QR code (tag 54)")
    if resolved.amount_minor <= 0:
        raise ValidationFailed("the QR code's amount (tag 54) must be positive")
    return MoneyModel.of(resolved.currency, resolved.amount_minor)


async def plan_payment(
    resolver: QrResolver, partners: Partners, pricing: Pricing, caller: str, req: PaymentRequest
) -> Plan:
    """Everything decided before the first write: route, amounts, the quote (priced here, or a
    named one checked but not yet consumed). Raises the request's 4xx; writes nothing."""
    resolved = resolver.resolve(req.qr, caller)
    route = resolved.route
    if route.wallet != caller or caller not in partners.wallets:
        raise ValidationFailed(f"partner {caller} cannot pay as a wallet")
    amount = merchant_amount(resolved, req.amount)
    if route.kind == "domestic":
        if req.quote_id is not None:
            raise QuoteInvalid("a domestic payment takes no quote")
        if req.payer_currency != amount.currency:
            raise FXError(f"payer_currency must be {amount.currency} on a domestic route")
        return Plan(resolved, amount, amount, None, named_quote=False)
    if req.quote_id is None:
        quote = await pricing.quote(
            merchant_amount=amount, payer_currency=req.payer_currency, partner_id=caller,
            qr_fingerprint=resolved.fingerprint, persist=False,
        )
    else:
        quote = await pricing.peek(
            req.quote_id, partner_id=caller, qr_fingerprint=resolved.fingerprint, merchant_amount=amount
        )
    if quote.payer_amount.currency != req.payer_currency:
        raise QuoteInvalid("the quote is in another payer currency")
    return Plan(resolved, amount, quote.payer_amount, quote, named_quote=req.quote_id is not None)


def new_record(
    store: Store, caller: str, req: PaymentRequest, plan: Plan, *, now: datetime, zone: str, lease_s: float
) -> PaymentRecord:
    """The payment as ``begin_payment`` stores it: at its debit stage, its id drawn in the
    shard of its claim (one slot), its quote and FX limits still to lock (``legs.secure``)."""
    shard = store.claim_shard(caller, req.payment_request_id)
    payment_id = new_id("pay")
    while store.shard_of(payment_id) != shard:  # ~shards draws of a random id: microseconds
        payment_id = new_id("pay")
    secure = None
    if plan.quote is not None:
        secure = {
            "quote_id": plan.quote.quote_id if plan.named_quote else None,
            "qr_fingerprint": plan.resolved.fingerprint,
            "done": False,
        }
    return PaymentRecord(
        payment_id=payment_id,
        payment_request_id=req.payment_request_id,
        partner_id=caller,
        stage=st.DEBIT,
        route=plan.resolved.route,
        merchant=plan.resolved.merchant,
        qr=req.qr,
        merchant_amount=plan.amount,
        payer_amount=plan.payer_amount,
        quote=dict(plan.quote.wire) if plan.quote else None,
        payer=req.payer,
        legs={
            "debit": {"id": f"{payment_id}-db"},
            "credit": {"id": f"{payment_id}-cr"},
            "visits": {st.DEBIT: 1},
            **({"secure": secure} if secure else {}),
        },
        business_day=business_day(now, zone),
        created_at=now,
        updated_at=now,
        next_attempt_at=now + timedelta(seconds=lease_s),
    )
