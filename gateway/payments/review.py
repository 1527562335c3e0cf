"""An operator's decision on a payment held by screening (stage ``review``; docs/fx.md).

For the admin API's review queue: it lists PROCESSING payments at ``REVIEW_STAGE`` flagged
``_needs_review``; ``decide_review`` approves one (its debit becomes due now: the recovery task
drives it like any other) or rejects it (FAILED with ``SCREENING_HIT``, its FX reservation
released first, a ``payment.failed`` event). Idempotent: a payment no longer held is left as is.
"""

from __future__ import annotations

from typing import Any

from gateway.events import payment_event
from gateway.payments import state as st
from gateway.payments.ports import HOLD_FLAG, REVIEW_FLAG, REVIEW_STAGE, Pricing
from gateway.payments.steps import Clock, cas, copy_record, utcnow
from gateway.store.base import Store
from schemas.payment import Failure, PaymentRecord, PaymentStatus

__all__ = ["decide_review"]


def _held(rec: PaymentRecord) -> bool:
    return rec.status == PaymentStatus.PROCESSING and rec.stage == REVIEW_STAGE


async def decide_review(
    store: Store, pricing: Pricing, payment_id: str, *, approve: bool, operator: str, clock: Clock = utcnow
) -> PaymentRecord | None:
    rec = await store.get_payment(payment_id)
    if rec is None or not _held(rec):
        return rec
    if not approve and rec.reservation:
        await pricing.release(rec.reservation)  # idempotent; before FAILED is recorded, as the orchestrator does

    def change(cur: PaymentRecord) -> Any:
        if not _held(cur):
            return None
        new = copy_record(cur)
        new.flags = [f for f in new.flags if f not in (HOLD_FLAG, REVIEW_FLAG)]
        now = clock()
        if approve:
            new.stage = st.DEBIT
            new.legs.setdefault("visits", {})[st.DEBIT] = 0  # recovery counts its first visit
            new.next_attempt_at = now
            return new, f"screening review approved by {operator}", (), ()
        new.stage, new.status = st.FAILED, PaymentStatus.FAILED
        new.failure = Failure(code="SCREENING_HIT", message="the payment was refused by compliance screening")
        new.next_attempt_at = None
        return new, f"screening review rejected by {operator}", [payment_event(new, "payment.failed")], ()

    return await cas(store, payment_id, change)
