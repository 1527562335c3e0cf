"""Payment orchestration: idempotency claim → decode + route → quote → FX policy → record →
debit → credit, with every stage persisted (store CAS) before its side effect.

A rejection before the record exists undoes what it took (claim, quote, reservation) and
raises its ``QrgwError``: nothing changed. From the record on, outcomes drive
``state.decide``; unknowns hand the payment to the recovery task (the API answers 202).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog

from adapters.base import CreditRequest, DebitRequest, Outcome
from gateway.events import payment_event
from gateway.payments import state as st
from gateway.payments.planning import Plan, held, new_record, plan_payment
from gateway.payments.ports import (
    REVIEW_STAGE,
    Partners,
    PolicyResult,
    Pricing,
    QrResolver,
)
from gateway.payments.steps import (
    Caller,
    CallObserver,
    Clock,
    cas,
    copy_record,
    fingerprint,
    lease_name,
    new_id,
    utcnow,
)
from gateway.store.base import ClaimStatus, Finish, StaleVersion, Store
from schemas.api import PaymentRequest
from schemas.errors import (
    ConflictError,
    IdempotencyInProgress,
    QrgwError,
    StoreUnavailable,
)
from schemas.payment import Failure, PaymentRecord, PaymentStatus

log = structlog.get_logger("gateway.payments")
StatusObserver = Any  # Callable[[PaymentRecord], None]


@dataclass(frozen=True, slots=True)
class Submitted:
    record: PaymentRecord
    created: bool  # this request created it (201) rather than repeating it (200)


class Orchestrator:
    """Creates payments and drives them to a final status (inline first, then by recovery)."""

    def __init__(
        self,
        store: Store,
        partners: Partners,
        resolver: QrResolver,
        pricing: Pricing,
        *,
        zone: str = "Asia/Seoul",
        policy: st.RetryPolicy | None = None,
        clock: Clock = utcnow,
        owner: str | None = None,
        observe_call: CallObserver | None = None,
        observe_status: StatusObserver | None = None,
        claim_wait_s: float = 10.0,
        inline_budget_s: float = 10.0,
    ) -> None:
        self.store, self.partners, self.resolver, self.pricing = store, partners, resolver, pricing
        self.zone = zone
        self.policy = policy or st.RetryPolicy()
        self.clock = clock
        self.owner = owner or new_id("gw")
        self.caller = Caller(self.policy, observe_call)
        self.observe_status = observe_status
        self.claim_wait_s = claim_wait_s
        self.inline_budget_s = inline_budget_s
        # Called when this process leaves a payment due later or now (the recovery task's wake-up).
        self.on_due: Callable[[], None] | None = None

    # -- entry: POST /v1/payments ----------------------------------------------------------------
    async def submit(self, caller: str, req: PaymentRequest) -> Submitted:
        """Plan (no writes), then one ``begin_payment`` (claim + lease + record), then lock the quote
        and FX limits, then drive. A store reply lost on the way is never taken for "nothing
        happened": the store repeats the call to find out, and if it still cannot, the request
        answers 503 with its claim kept, so a retry resumes this payment instead of starting another."""
        fp = fingerprint(req.model_dump(mode="json"))
        try:
            plan = await self._plan(caller, req)
        except QrgwError as exc:
            if isinstance(exc, StoreUnavailable):
                raise
            # A repeat of a request already taken gets its payment even if planning would now
            # refuse it (its quote expired, a rate went stale): look before refusing.
            repeat = await self._repeat_of(caller, req.payment_request_id, fp)
            if repeat is None:
                raise
            return repeat
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.claim_wait_s
        delay = 0.005
        rec = self._record(caller, req, plan)
        while True:
            begun = await self.store.begin_payment(
                caller, req.payment_request_id, fp, rec, owner=self.owner, lease_ms=int(self.policy.lease_s * 1000)
            )
            claim = begun.claim
            if claim.status == ClaimStatus.CONFLICT:
                raise ConflictError(f"payment_request_id {req.payment_request_id} was used with another body")
            if begun.created:
                return Submitted(await self._secure_and_drive(rec, loop.time() + self.inline_budget_s), True)
            found = await self.store.get_payment(claim.resource_id)
            if found is not None and (claim.status == ClaimStatus.DONE or found.status != PaymentStatus.PROCESSING):
                return Submitted(found, created=False)
            if loop.time() >= deadline:
                if found is not None:  # still being driven (or handed to recovery): the caller inquires
                    return Submitted(found, created=False)
                raise IdempotencyInProgress(f"payment_request_id {req.payment_request_id} is still being processed")
            await asyncio.sleep(delay)  # the winner is working: wait for its answer
            delay = min(delay * 2, 0.1)

    async def _repeat_of(self, caller: str, request_id: str, fp: str) -> Submitted | None:
        claim = await self.store.get_claim(caller, request_id, fp)
        if claim is None:
            return None
        if claim.status == ClaimStatus.CONFLICT:
            raise ConflictError(f"payment_request_id {request_id} was used with another body")
        rec = await self.store.get_payment(claim.resource_id)
        return None if rec is None else Submitted(rec, created=False)

    async def _plan(self, caller: str, req: PaymentRequest) -> Plan:
        return await plan_payment(self.resolver, self.partners, self.pricing, caller, req)

    def _record(self, caller: str, req: PaymentRequest, plan: Plan) -> PaymentRecord:
        return new_record(self.store, caller, req, plan, now=self.clock(), zone=self.zone, lease_s=self.policy.lease_s)

    async def _secure_and_drive(self, rec: PaymentRecord, deadline: float) -> PaymentRecord:
        """The request's own payment: lock its quote and limits (a refusal deletes the payment, which
        moved no money, and raises the 4xx), then drive it, finishing the claim on the last write."""
        finish = Finish(rec.partner_id, rec.payment_request_id, {"payment_id": rec.payment_id}, self.owner)
        rec, error = await self._secure(rec)
        if isinstance(error, StoreUnavailable):
            raise error  # unknown: keep everything; the caller's retry or recovery carries on
        if error is not None:
            await self.store.discard_payment(rec.partner_id, rec.payment_request_id, rec.payment_id, self.owner)
            await self._unsecure(rec)
            raise error
        self._status(rec)
        if held(rec):
            return await self._hold(rec, finish)
        try:
            return await self._drive_held(rec, deadline, finish)
        except BaseException:
            # Stopped mid-way (store lost, cancelled): the payment's intent is persisted, so let
            # whoever comes next (the caller's retry, recovery) drive it without waiting out the lease.
            with contextlib.suppress(QrgwError):
                await self.store.release_lease(lease_name(rec.payment_id), self.owner)
            raise

    async def _secure(self, rec: PaymentRecord) -> tuple[PaymentRecord, QrgwError | None]:
        """Consume the named quote for this payment and reserve the payer's FX limits, concurrently
        (they live in other slots); both are idempotent by the payment id. Returns ``rec`` with the
        reservation and policy flags (persisted by the next write) and the refusal, if any (an
        unknown outcome first: it must not be mistaken for a refusal)."""
        secure = rec.legs.get("secure")
        if not secure or secure.get("done"):
            return rec, None
        calls: list[Awaitable[Any]] = [self.pricing.reserve(
            # The policy's direction comes from the route (the country its acquirer serves this merchant
            # in), never from the QR's printed country alone (issue 15).
            reservation_id=rec.payment_id, payer=rec.payer, wallet=rec.partner_id, merchant_name=rec.merchant.name,
            merchant_country=rec.route.acquirer_country or rec.merchant.country,
            merchant_amount=rec.merchant_amount, payer_amount=rec.payer_amount, at=rec.created_at,
        )]
        if secure.get("quote_id"):
            calls.append(self.pricing.consume(
                secure["quote_id"], partner_id=rec.partner_id, qr_fingerprint=str(secure["qr_fingerprint"]),
                merchant_amount=rec.merchant_amount, consumer=rec.payment_id,
            ))
        results = await asyncio.gather(*calls, return_exceptions=True)
        new = copy_record(rec)
        new.legs["secure"] = {**secure, "done": True}
        policy = results[0]
        if isinstance(policy, PolicyResult):
            new.flags = [*rec.flags, *(f for f in policy.flags if f not in rec.flags)]
            new.reservation = dict(policy.reservation) if policy.reservation else None
            new.legs["secure"]["hold"] = policy.hold
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, QrgwError):
                raise r
        errors = [r for r in results if isinstance(r, QrgwError)]
        unknown = [e for e in errors if isinstance(e, StoreUnavailable)]
        return new, (unknown or errors or [None])[0]

    async def _hold(self, rec: PaymentRecord, finish: Finish | None) -> PaymentRecord:
        """Screening asked for a person: park the payment before its debit (``REVIEW_STAGE``, not
        driven; looked at again daily) until an operator decides (gateway.payments.review)."""
        new = copy_record(rec)
        new.stage = REVIEW_STAGE
        new.next_attempt_at = self.clock() + timedelta(days=1)
        return await self.store.update_payment(
            new, expected_version=rec.version, reason="held for a screening review before the debit", finish=finish
        )

    async def _unsecure(self, rec: PaymentRecord) -> None:
        """Give back what ``_secure`` took for a payment refused before its debit. Runs after the
        payment is deleted, so nothing can drive it on these locks; a release that fails leaves the
        payer's counter higher than spent (conservative) and is logged."""
        secure = rec.legs.get("secure") or {}
        try:
            if rec.reservation:
                await self.pricing.release(rec.reservation)
            if secure.get("quote_id"):
                await self.pricing.unredeem(secure["quote_id"], rec.payment_id)
        except QrgwError as exc:
            log.error("refused_payment_locks_not_released", payment_id=rec.payment_id, code=exc.code)

    # -- driving ---------------------------------------------------------------------------------
    async def resume(self, payment_id: str) -> PaymentRecord | None:
        """Drive a payment with work left, if no one else holds it (recovery; any process)."""
        name = lease_name(payment_id)
        if not await self.store.acquire_lease(name, self.owner, int(self.policy.lease_s * 1000)):
            return await self.store.get_payment(payment_id)
        try:
            rec = await self.store.get_payment(payment_id)
            if rec is None or rec.status != PaymentStatus.PROCESSING:
                return rec
            if rec.next_attempt_at is not None and rec.next_attempt_at > self.clock():
                return rec
            rec = await self._begin(rec)
            if rec is None:
                return None
            # a request that crashed (or lost its store) mid-way never finished its claim: the last
            # write of this drive finishes it, so repeats get an answer
            finish = Finish(rec.partner_id, rec.payment_request_id, {"payment_id": payment_id}, self.owner)
            return await self._drive_held(rec, finish=finish)
        finally:
            with contextlib.suppress(QrgwError):
                await self.store.release_lease(name, self.owner)

    async def _begin(self, rec: PaymentRecord) -> PaymentRecord | None:
        """Persist the intent to run ``rec.stage`` again (visit counted, held for a lease)."""

        def change(cur: PaymentRecord) -> Any:
            if cur.status != PaymentStatus.PROCESSING or cur.stage not in st.ACTIVE_STAGES:
                return None
            new = copy_record(cur)
            visits = new.legs.setdefault("visits", {})
            visits[new.stage] = visits.get(new.stage, 0) + 1
            new.next_attempt_at = self.clock() + timedelta(seconds=self.policy.lease_s)
            return new, f"resuming {new.stage}", (), ()

        return await cas(self.store, rec.payment_id, change)

    async def _drive_held(
        self, rec: PaymentRecord, deadline: float | None = None, finish: Finish | None = None
    ) -> PaymentRecord:
        """Run steps while the next one is due now; the caller holds the lease and has
        persisted the intent of ``rec.stage``. Past ``deadline`` (loop time; the request's
        inline budget) the payment is handed to recovery, due at once. The write after which
        driving stops carries ``finish`` (claim DONE, lease released)."""
        loop = asyncio.get_running_loop()
        while rec.status == PaymentStatus.PROCESSING and rec.stage in st.ACTIVE_STAGES:
            if deadline is not None and loop.time() >= deadline:
                return await self._hand_over(rec, finish)
            outcome, d, rec = await self._step(rec)
            if d.status == PaymentStatus.FAILED and rec.reservation:
                await self.pricing.release(rec.reservation)  # idempotent; before FAILED is recorded
            last = d.final or d.delay_s > 0
            try:
                rec = await self._apply(rec, outcome, d, finish if last else None)
            except StaleVersion:
                fresh = await self.store.get_payment(rec.payment_id)
                assert fresh is not None
                await self._finish_apart(fresh, finish)
                return fresh
            if d.final:
                self._status(rec)
            if last:
                if not d.final and self.on_due is not None:
                    self.on_due()
                break
        return rec

    async def _step(self, rec: PaymentRecord) -> tuple[Outcome, st.Decision, PaymentRecord]:
        """Call the partner for ``rec.stage`` and decide what follows. A debit whose quote and limits
        were never locked (its request lost the store before it could) locks them first; refused
        then, the debit is cancelled in case a copy was sent (never assumed unsent)."""
        if rec.stage == st.DEBIT:
            rec, error = await self._secure(rec)
            if isinstance(error, StoreUnavailable):
                raise error
            if error is not None:
                o = Outcome.failed(error.code, error.detail)
                reason = f"refused before the debit ({error.code}); cancelling any debit sent"
                failure = Failure(code=error.code, message=error.detail)
                return o, st.Decision(st.DEBIT_CANCEL, reason, failure=failure), rec
            if held(rec):
                o = Outcome.unknown("held for a screening review")
                why = "held for a screening review before the debit"
                return o, st.Decision(REVIEW_STAGE, why, delay_s=86400.0), rec
        outcome = await self._call(rec)
        return outcome, st.decide(rec.stage, outcome, rec.legs.get("visits", {}), self.policy), rec

    async def _finish_apart(self, rec: PaymentRecord, finish: Finish | None) -> None:
        """``finish`` as calls of its own, when the write it was folded into did not happen."""
        if finish is None:
            return
        with contextlib.suppress(QrgwError):
            await self.store.finish_claim(finish.scope, finish.key, finish.answer)
        with contextlib.suppress(QrgwError):
            await self.store.release_lease(lease_name(rec.payment_id), finish.owner)

    async def _hand_over(self, rec: PaymentRecord, finish: Finish | None = None) -> PaymentRecord:
        """Make the persisted intent due now, so the recovery task runs it without waiting."""

        def change(cur: PaymentRecord) -> Any:
            if cur.status != PaymentStatus.PROCESSING or cur.stage != rec.stage:
                return None
            new = copy_record(cur)
            new.next_attempt_at = self.clock()
            visits = new.legs.setdefault("visits", {})
            visits[new.stage] = max(0, visits.get(new.stage, 1) - 1)  # recovery counts the visit again
            return new, f"inline budget spent; {new.stage} handed to recovery", (), ()

        out = await cas(self.store, rec.payment_id, change) or rec
        await self._finish_apart(out, finish)
        if self.on_due is not None:
            self.on_due()
        return out

    async def _call(self, rec: PaymentRecord) -> Outcome:
        s, legs = rec.stage, rec.legs
        debit_id, credit_id = legs["debit"]["id"], legs["credit"]["id"]
        wallet_id, acq_id = rec.route.wallet, rec.route.acquirer
        if s.startswith("debit"):
            w = self.partners.wallet(wallet_id)
            if s == st.DEBIT:
                req = DebitRequest(
                    debit_id=debit_id,
                    payment_id=rec.payment_id,
                    payer=rec.payer,
                    amount=rec.payer_amount,
                    merchant_amount=rec.merchant_amount,
                    merchant=rec.merchant,
                    quote=rec.quote,
                )
                return await self.caller.keyed(wallet_id, "pay", lambda: w.pay(req))
            if s in (st.DEBIT_INQUIRY, st.DEBIT_CHECK):
                return await self.caller.once(wallet_id, "inquire", lambda: w.inquire(debit_id))
            if s == st.DEBIT_REFUND:
                return await self.caller.keyed(
                    wallet_id, "refund", lambda: w.refund(f"{rec.payment_id}-drf", debit_id, rec.payer_amount)
                )
            return await self.caller.keyed(wallet_id, "cancel", lambda: w.cancel(debit_id, rec.payer_amount))
        a = self.partners.acquirer(acq_id)
        if s == st.CREDIT:
            creq = CreditRequest(
                credit_id=credit_id,
                payment_id=rec.payment_id,
                merchant=rec.merchant,
                amount=rec.merchant_amount,
            )
            return await self.caller.keyed(acq_id, "credit", lambda: a.notify_paid(creq))
        if s == st.CREDIT_INQUIRY:
            return await self.caller.once(acq_id, "inquire_credit", lambda: a.inquire_credit(credit_id))
        return await self.caller.keyed(
            acq_id, "reverse", lambda: a.reverse(credit_id, f"{rec.payment_id}-crv", rec.merchant_amount)
        )

    async def _apply(
        self, rec: PaymentRecord, o: Outcome, d: st.Decision, finish: Finish | None = None
    ) -> PaymentRecord:
        new = copy_record(rec)
        now = self.clock()
        leg = "debit" if rec.stage.startswith("debit") else "credit"
        new.legs[leg][rec.stage] = {
            "kind": o.kind,
            "code": o.code,
            "message": o.message,
            "partner_ref": o.partner_ref,
            "at": now.isoformat(),
        }
        visits = new.legs.setdefault("visits", {})
        for f in d.flags:
            visits[f] = visits.get(f, 0) + 1
            if f == "needs_review" and "_needs_review" not in new.flags:
                new.flags.append("_needs_review")
        new.stage, new.status = d.stage, d.status
        if d.failure is not None:
            new.failure = d.failure
        events: list[dict[str, Any]] = []
        if d.final:
            new.next_attempt_at = None
            kind = "payment.succeeded" if d.status == PaymentStatus.SUCCEEDED else "payment.failed"
            events.append(payment_event(new, kind))
        elif d.delay_s > 0:
            new.next_attempt_at = now + timedelta(seconds=d.delay_s)
        else:  # the next step runs now: this write is also its intent
            visits[d.stage] = visits.get(d.stage, 0) + 1
            new.next_attempt_at = now + timedelta(seconds=self.policy.lease_s)
        log.info("payment_step", payment_id=rec.payment_id, stage=rec.stage, outcome=o.kind, next=d.stage)
        return await self.store.update_payment(
            new, expected_version=rec.version, reason=d.reason, events=events, finish=finish
        )

    def _status(self, rec: PaymentRecord) -> None:
        if self.observe_status is not None:
            self.observe_status(rec)
