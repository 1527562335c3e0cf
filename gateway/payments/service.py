"""Cancels and refunds of succeeded payments (PROTOCOL.md §5, §6, §7).

Each has its own idempotency key (``cancel_request_id`` / ``refund_request_id``, scoped per
calling partner), is recorded on the payment (CAS) before any partner call, then repays
the payer at the wallet and reverses the merchant at the acquirer (``state.decide_reversal``).
Refunds convert at the payment's original rate; FX policy counters are released (all for a
cancel, the refunded fraction for a refund) once the change is recorded.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import structlog

from adapters.base import Outcome
from gateway.events import payment_event
from gateway.payments import state as st
from gateway.payments.days import business_day, cancel_deadline
from gateway.payments.ports import Partners, Pricing
from gateway.payments.steps import Caller, CallObserver, Clock, cas, fingerprint, lease_name, new_id, utcnow
from gateway.store.base import ClaimStatus, Store
from schemas.api import CancelRequest, RefundRequest
from schemas.errors import (
    ConflictError,
    InvalidState,
    NotFound,
    QrgwError,
    RefundExceedsPayment,
    ValidationFailed,
)
from schemas.money import MoneyModel
from schemas.payment import CancelRecord, Failure, PaymentRecord, PaymentStatus, RefundRecord

log = structlog.get_logger("gateway.payments")
S = PaymentStatus


def visible_to(rec: PaymentRecord | None, caller: str) -> PaymentRecord:
    """Only the partners on the route see a payment; anyone else gets 404, as if it did not exist."""
    if rec is None or caller not in (rec.route.wallet, rec.route.acquirer):
        raise NotFound("no such payment", code="PAYMENT_NOT_FOUND")
    return rec


def _same_key(sub: CancelRecord | RefundRecord, caller: str, key: str) -> bool:
    """An idempotency key belongs to its caller (PROTOCOL.md §5): the same id from another
    partner of the route is another request. Records from before ``requested_by`` match any."""
    rid = sub.cancel_request_id if isinstance(sub, CancelRecord) else sub.refund_request_id
    return rid == key and sub.requested_by in (None, caller)


def _refunded(rec: PaymentRecord) -> tuple[int, int]:
    """Merchant and payer minor units of refunds that succeeded or may still succeed."""
    live = [r for r in rec.refunds if r.status != "FAILED"]
    return sum(r.amount.minor for r in live), sum(r.payer_amount.minor for r in live)


class ReversalService:
    def __init__(
        self,
        store: Store,
        partners: Partners,
        pricing: Pricing,
        *,
        zone: str = "Asia/Seoul",
        cancel_cutoff: str = "24:00",
        policy: st.RetryPolicy | None = None,
        clock: Clock = utcnow,
        owner: str | None = None,
        observe_call: CallObserver | None = None,
    ) -> None:
        self.store, self.partners, self.pricing = store, partners, pricing
        self.zone, self.cutoff = zone, cancel_cutoff
        self.policy = policy or st.RetryPolicy()
        self.clock = clock
        self.owner = owner or new_id("gw")
        self.caller = Caller(self.policy, observe_call)

    # -- entry points ----------------------------------------------------------------------------
    async def cancel(self, caller: str, payment_id: str, req: CancelRequest) -> tuple[PaymentRecord, bool]:
        """Returns the payment and whether this request created the cancel."""
        visible_to(await self.store.get_payment(payment_id), caller)

        def add(rec: PaymentRecord) -> Any:
            if rec.cancel is not None and _same_key(rec.cancel, caller, req.cancel_request_id):
                return None  # this caller's cancel: a repeat (another caller's same id is its own key)
            if rec.status != S.SUCCEEDED or any(r.status != "FAILED" for r in rec.refunds):
                raise InvalidState(
                    f"a {rec.status} payment cannot be cancelled" + (" (it has refunds)" if rec.refunds else "")
                )
            if rec.cancel is not None and rec.cancel.status == "PROCESSING":
                raise InvalidState("another cancel of this payment is in progress")
            now = self.clock()
            if now >= cancel_deadline(rec.business_day, self.cutoff, self.zone):
                raise InvalidState(
                    "the cancel window of this payment's business day has closed", code="CANCEL_WINDOW_CLOSED"
                )
            new = rec.model_copy(deep=True)
            new.cancel = CancelRecord(
                cancel_request_id=req.cancel_request_id,
                requested_by=caller,
                status="PROCESSING",
                stage=st.WALLET_CANCEL,
                created_at=now,
                updated_at=now,
                business_day=business_day(now, self.zone),
            )
            self._intent(new, f"cancel:{req.cancel_request_id}")
            return new, f"cancel {req.cancel_request_id} requested", (), self._days(new, now)

        return await self._keyed(
            caller,
            "cancel",
            req.cancel_request_id,
            payment_id,
            {"payment_id": payment_id, **req.model_dump(mode="json")},
            add,
        )

    async def refund(self, caller: str, payment_id: str, req: RefundRequest) -> tuple[PaymentRecord, bool]:
        rec0 = visible_to(await self.store.get_payment(payment_id), caller)
        if req.amount.currency != rec0.merchant_amount.currency:
            raise ValidationFailed(f"amount.currency must be the merchant currency {rec0.merchant_amount.currency}")
        if req.amount.minor <= 0:
            raise ValidationFailed("amount.value must be positive")

        def add(rec: PaymentRecord) -> Any:
            mine = next((r for r in rec.refunds if _same_key(r, caller, req.refund_request_id)), None)
            if mine is not None:  # the claim is gone but the refund is recorded: same body or 409
                if mine.amount != req.amount:
                    raise ConflictError(f"refund_request_id {req.refund_request_id} was used with another body")
                return None
            if rec.status not in (S.SUCCEEDED, S.PARTIALLY_REFUNDED) or (
                rec.cancel is not None and rec.cancel.status != "FAILED"
            ):
                raise InvalidState(f"a {rec.status} payment cannot be refunded")
            done_m, done_p = _refunded(rec)
            left = rec.merchant_amount.minor - done_m
            if req.amount.minor > left:
                raise RefundExceedsPayment(
                    f"refund of {req.amount.value} exceeds the {left} left to refund",
                    remaining=MoneyModel.of(req.amount.currency, left).model_dump(),
                )
            payer_amount = self._payer_amount(rec, req.amount, done_m, done_p)
            now = self.clock()
            new = rec.model_copy(deep=True)
            refund_id = new_id("rf")
            new.refunds.append(
                RefundRecord(
                    refund_id=refund_id,
                    refund_request_id=req.refund_request_id,
                    requested_by=caller,
                    amount=req.amount,
                    payer_amount=payer_amount,
                    status="PROCESSING",
                    stage=st.WALLET_REFUND,
                    created_at=now,
                    updated_at=now,
                    business_day=business_day(now, self.zone),
                )
            )
            self._intent(new, f"refund:{refund_id}")
            return new, f"refund {refund_id} of {req.amount.value} requested", (), self._days(new, now)

        return await self._keyed(
            caller,
            "refund",
            req.refund_request_id,
            payment_id,
            {"payment_id": payment_id, **req.model_dump(mode="json")},
            add,
        )

    def _payer_amount(self, rec: PaymentRecord, refund: MoneyModel, done_m: int, done_p: int) -> MoneyModel:
        if rec.quote is None:  # domestic: one currency, no conversion
            return MoneyModel.of(rec.payer_amount.currency, refund.minor)
        return self.pricing.refund_payer_amount(
            quote=rec.quote,
            refund=refund,
            refunded_before=MoneyModel.of(refund.currency, done_m),
            refunded_payer_before=MoneyModel.of(rec.payer_amount.currency, done_p),
            paid_payer=rec.payer_amount,
            paid_merchant=rec.merchant_amount,
        )

    async def _keyed(
        self, caller: str, kind: str, key: str, payment_id: str, body: Mapping[str, Any], add: Any
    ) -> tuple[PaymentRecord, bool]:
        scope = f"{caller}:{kind}"
        claim = await self.store.claim(scope, key, fingerprint(body), resource_id=payment_id)
        if claim.status == ClaimStatus.CONFLICT:
            raise ConflictError(f"{kind}_request_id {key} was used with another body")
        if claim.status != ClaimStatus.NEW:
            rec = await self.store.get_payment(claim.resource_id)
            return visible_to(rec, caller), False
        made: list[bool] = []

        def record(cur: PaymentRecord) -> Any:
            planned = add(cur)
            made[:] = [planned is not None]
            return planned

        try:
            rec = await cas(self.store, payment_id, record)
        except BaseException:
            with contextlib.suppress(QrgwError):
                await self.store.abandon_claim(scope, key)
            raise
        with contextlib.suppress(QrgwError):
            await self.store.finish_claim(scope, key, {"payment_id": payment_id})
        assert rec is not None
        return (await self.resume(payment_id, inline=True) or rec), made == [True]

    # -- driving ---------------------------------------------------------------------------------
    def _intent(self, new: PaymentRecord, key: str) -> None:
        tries = new.legs.setdefault("tries", {})
        tries[key] = tries.get(key, 0) + 1
        new.next_attempt_at = self.clock() + timedelta(seconds=self.policy.lease_s)

    def _days(self, new: PaymentRecord, now: Any) -> tuple[str, ...]:
        today = business_day(now, self.zone)
        return (today,) if today != new.business_day else ()

    async def resume(self, payment_id: str, *, inline: bool = False) -> PaymentRecord | None:
        """Drive the payment's processing cancel and refunds while their next step is due."""
        name = lease_name(payment_id)
        if not await self.store.acquire_lease(name, self.owner, int(self.policy.lease_s * 1000)):
            if inline:  # another driver holds the payment: make the new work due for whoever runs next
                return await cas(self.store, payment_id, self._due_now)
            return await self.store.get_payment(payment_id)
        try:
            intent = inline  # the intent of the next step is already persisted
            while True:
                rec = await self.store.get_payment(payment_id)
                if rec is None:
                    return None
                work = self._next_work(rec)
                if work is None:
                    return rec
                if not intent:
                    if rec.next_attempt_at is not None and rec.next_attempt_at > self.clock():
                        return rec
                    rec = await cas(self.store, payment_id, functools.partial(self._begin, work=work))
                    assert rec is not None
                d = await self._step(rec, work)
                if d.delay_s > 0:
                    return await self.store.get_payment(payment_id)
                intent = d.status == "PROCESSING"  # _apply persisted the next step's intent
        finally:
            with contextlib.suppress(QrgwError):
                await self.store.release_lease(name, self.owner)

    def _due_now(self, rec: PaymentRecord) -> Any:
        if self._next_work(rec) is None:
            return None
        new = rec.model_copy(deep=True)
        new.next_attempt_at = self.clock()
        return new, "payment busy; new work left to the next driver", (), ()

    @staticmethod
    def _next_work(rec: PaymentRecord) -> str | None:
        if rec.cancel is not None and rec.cancel.status == "PROCESSING":
            return "cancel"
        return next((r.refund_id for r in rec.refunds if r.status == "PROCESSING"), None)

    def _begin(self, rec: PaymentRecord, work: str) -> Any:
        if self._next_work(rec) != work:
            return None
        new = rec.model_copy(deep=True)
        key = "cancel:" + new.cancel.cancel_request_id if work == "cancel" and new.cancel else f"refund:{work}"
        self._intent(new, key)
        return new, f"resuming {key}", (), ()

    async def _step(self, rec: PaymentRecord, work: str) -> st.SubDecision:
        debit_id, credit_id = rec.legs["debit"]["id"], rec.legs["credit"]["id"]
        w, a = self.partners.wallet(rec.route.wallet), self.partners.acquirer(rec.route.acquirer)
        if work == "cancel":
            assert rec.cancel is not None
            kind, stage, key = "cancel", rec.cancel.stage, f"cancel:{rec.cancel.cancel_request_id}"
            if stage == st.WALLET_CANCEL:
                o = await self.caller.keyed(w.partner_id, "cancel", lambda: w.cancel(debit_id, rec.payer_amount))
            else:
                o = await self.caller.keyed(
                    a.partner_id,
                    "reverse",
                    lambda: a.reverse(credit_id, f"{rec.payment_id}-cxl", rec.merchant_amount),
                )
        else:
            r = next(x for x in rec.refunds if x.refund_id == work)
            kind, stage, key = "refund", r.stage, f"refund:{work}"
            if stage == st.WALLET_REFUND:
                o = await self.caller.keyed(w.partner_id, "refund", lambda: w.refund(work, debit_id, r.payer_amount))
            else:
                o = await self.caller.keyed(a.partner_id, "reverse", lambda: a.reverse(credit_id, work, r.amount))
        d = st.decide_reversal(kind, stage, o, rec.legs.get("tries", {}).get(key, 1), self.policy)
        wrote: list[bool] = []

        def change(cur: PaymentRecord) -> Any:
            planned = self._apply(cur, work, stage, o, d)
            wrote[:] = [planned is not None]
            return planned

        stored = await cas(self.store, rec.payment_id, change)
        if stored is not None and wrote == [True] and d.status == "SUCCEEDED" and rec.reservation:
            await self._release(stored, work)
        return d

    def _apply(self, cur: PaymentRecord, work: str, stage: str, o: Outcome, d: st.SubDecision) -> Any:
        new = cur.model_copy(deep=True)
        now = self.clock()
        sub: CancelRecord | RefundRecord | None
        sub = new.cancel if work == "cancel" else next((x for x in new.refunds if x.refund_id == work), None)
        if sub is None or sub.stage != stage or sub.status != "PROCESSING":
            return None  # someone else already recorded this step
        sub.stage, sub.status, sub.updated_at = d.stage, d.status, now  # type: ignore[assignment]
        if d.failure is not None:
            sub.failure = d.failure
        for f in d.flags:
            if f"_{f}" not in new.flags:
                new.flags.append(f"_{f}")
        events: list[dict[str, Any]] = []
        if d.status == "SUCCEEDED":
            if work == "cancel":
                new.status = S.CANCELLED
                events.append(payment_event(new, "payment.cancelled"))
            else:
                done = sum(x.amount.minor for x in new.refunds if x.status == "SUCCEEDED")
                new.status = S.REFUNDED if done >= new.merchant_amount.minor else S.PARTIALLY_REFUNDED
                events.append(payment_event(new, "payment.refunded", refund_id=work))
        key = "cancel:" + new.cancel.cancel_request_id if work == "cancel" and new.cancel else f"refund:{work}"
        if d.delay_s > 0:
            new.next_attempt_at = now + timedelta(seconds=d.delay_s)
        elif d.status == "PROCESSING":
            self._intent(new, key)
        else:
            new.next_attempt_at = None
        reason = f"{key} {stage}: {o.kind}" + (f" {o.code}" if o.code else "") + f"; {d.reason}"
        return new, reason, events, self._days(new, now)

    async def _release(self, rec: PaymentRecord, work: str) -> None:
        """Give FX limit counters back once the change is recorded (a release that cannot be made
        over-counts: conservative; a release before the record could under-count on a crash). A
        refund's partial release carries the refund's id, so its repeat never gives back twice."""
        assert rec.reservation is not None
        try:
            if work == "cancel":
                await self.pricing.release(rec.reservation)
            else:
                r = next(x for x in rec.refunds if x.refund_id == work)
                await self.pricing.release(
                    rec.reservation, fraction=(r.amount.minor, rec.merchant_amount.minor), release_id=work
                )
        except QrgwError as exc:
            log.warning("fx_release_failed", payment_id=rec.payment_id, work=work, code=exc.code)


__all__ = ["Failure", "ReversalService", "visible_to"]
