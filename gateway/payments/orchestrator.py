"""Payment orchestration: idempotency claim → decode + route → quote → FX policy → record →
debit → credit, with every stage persisted (store CAS) before its side effect.

A rejection before the record exists undoes what it took (claim, quote, reservation) and
raises its ``QrgwError``: nothing changed. From the record on, outcomes drive
``state.decide``; unknowns hand the payment to the recovery task (the API answers 202).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog

from adapters.base import CreditRequest, DebitRequest, Outcome
from gateway.events import payment_event
from gateway.payments import state as st
from gateway.payments.days import business_day
from gateway.payments.ports import REVIEW_STAGE, Partners, PolicyResult, Pricing, QrResolver, QuoteInfo, ResolvedQR
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
from gateway.store.base import ClaimStatus, StaleVersion, Store
from schemas.api import PaymentRequest
from schemas.errors import (
    ConflictError,
    FXError,
    IdempotencyInProgress,
    QrgwError,
    QuoteInvalid,
    StoreUnavailable,
    ValidationFailed,
)
from schemas.money import MoneyModel
from schemas.payment import PaymentRecord, PaymentStatus

log = structlog.get_logger("gateway.payments")
StatusObserver = Any  # Callable[[PaymentRecord], None]


@dataclass(frozen=True, slots=True)
class Submitted:
    record: PaymentRecord
    created: bool  # this request created it (201) rather than repeating it (200)


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

    # -- entry: POST /v1/payments ----------------------------------------------------------------
    async def submit(self, caller: str, req: PaymentRequest) -> Submitted:
        fp = fingerprint(req.model_dump(mode="json"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.claim_wait_s
        delay = 0.005
        while True:
            payment_id = new_id("pay")
            claim = await self.store.claim(caller, req.payment_request_id, fp, resource_id=payment_id)
            if claim.status == ClaimStatus.CONFLICT:
                raise ConflictError(f"payment_request_id {req.payment_request_id} was used with another body")
            if claim.status == ClaimStatus.NEW:
                if not await self._take_lease(payment_id):  # a fresh id: only a store fault says no
                    raise StoreUnavailable("could not take the payment's lease")
                return Submitted(await self._create_and_drive(caller, req, payment_id), created=True)
            rec = await self.store.get_payment(claim.resource_id)
            if rec is not None and (claim.status == ClaimStatus.DONE or rec.status != PaymentStatus.PROCESSING):
                return Submitted(rec, created=False)
            if loop.time() >= deadline:
                if rec is not None:  # the winner created it but never finished its claim (crash)
                    return Submitted(rec, created=False)
                # The winner holds the payment's lease from its claim until the record exists; a lease
                # we can take means it died in between: finish its work under the same payment id.
                if await self._take_lease(claim.resource_id):
                    return Submitted(await self._create_and_drive(caller, req, claim.resource_id), created=True)
                raise IdempotencyInProgress(f"payment_request_id {req.payment_request_id} is still being processed")
            await asyncio.sleep(delay)  # the winner is working: wait for its answer
            delay = min(delay * 2, 0.1)

    async def _take_lease(self, payment_id: str) -> bool:
        return await self.store.acquire_lease(lease_name(payment_id), self.owner, int(self.policy.lease_s * 1000))

    async def _create_and_drive(self, caller: str, req: PaymentRequest, payment_id: str) -> PaymentRecord:
        """Prepare and drive a claimed payment; the caller holds the payment's lease."""
        loop = asyncio.get_running_loop()
        try:
            rec = await self._prepare(caller, req, payment_id)
        except BaseException:
            with contextlib.suppress(QrgwError):
                await self.store.abandon_claim(caller, req.payment_request_id)
            raise
        try:
            rec = await self._drive_held(rec, loop.time() + self.inline_budget_s)
        finally:
            with contextlib.suppress(QrgwError):
                await self.store.finish_claim(caller, req.payment_request_id, {"payment_id": payment_id})
            with contextlib.suppress(QrgwError):
                await self.store.release_lease(lease_name(payment_id), self.owner)
        return rec

    async def _prepare(self, caller: str, req: PaymentRequest, payment_id: str) -> PaymentRecord:
        """Everything before the first side effect; on a rejection, undo and raise."""
        resolved = self.resolver.resolve(req.qr, caller)
        route = resolved.route
        if route.wallet != caller or caller not in self.partners.wallets:
            raise ValidationFailed(f"partner {caller} cannot pay as a wallet")
        amount = merchant_amount(resolved, req.amount)
        quote: QuoteInfo | None = None
        policy = PolicyResult()
        now = self.clock()
        try:
            if route.kind == "domestic":
                if req.quote_id is not None:
                    raise QuoteInvalid("a domestic payment takes no quote")
                if req.payer_currency != amount.currency:
                    raise FXError(f"payer_currency must be {amount.currency} on a domestic route")
                payer_amount = amount
            else:
                quote = await self._quote(caller, req, resolved, amount, payment_id)
                payer_amount = quote.payer_amount
                policy = await self.pricing.reserve(
                    reservation_id=payment_id,
                    payer=req.payer,
                    wallet=caller,
                    merchant_name=resolved.merchant.name,
                    merchant_country=resolved.merchant.country,
                    merchant_amount=amount,
                    payer_amount=payer_amount,
                    at=now,
                )
            rec = PaymentRecord(
                payment_id=payment_id,
                payment_request_id=req.payment_request_id,
                partner_id=caller,
                stage=REVIEW_STAGE if policy.hold else st.DEBIT,  # a held payment waits for an operator
                route=route,
                merchant=resolved.merchant,
                qr=req.qr,
                merchant_amount=amount,
                payer_amount=payer_amount,
                quote=dict(quote.wire) if quote else None,
                payer=req.payer,
                flags=list(policy.flags),
                reservation=dict(policy.reservation) if policy.reservation else None,
                legs={
                    "debit": {"id": f"{payment_id}-db"},
                    "credit": {"id": f"{payment_id}-cr"},
                    "visits": {st.DEBIT: 1},
                },
                business_day=business_day(now, self.zone),
                created_at=now,
                updated_at=now,
                next_attempt_at=now + timedelta(seconds=self.policy.lease_s),
            )
            await self.store.create_payment(rec)
        except BaseException:
            await self._undo(payment_id, quote, policy)
            raise
        self._status(rec)
        return rec

    async def _quote(
        self, caller: str, req: PaymentRequest, resolved: ResolvedQR, amount: MoneyModel, payment_id: str
    ) -> QuoteInfo:
        quote_id = req.quote_id
        if quote_id is None:
            fresh = await self.pricing.quote(
                merchant_amount=amount,
                payer_currency=req.payer_currency,
                partner_id=caller,
                qr_fingerprint=resolved.fingerprint,
            )
            quote_id = fresh.quote_id
        q = await self.pricing.redeem(
            quote_id,
            partner_id=caller,
            qr_fingerprint=resolved.fingerprint,
            merchant_amount=amount,
            consumer=payment_id,
        )
        if q.payer_amount.currency != req.payer_currency:
            with contextlib.suppress(QrgwError):
                await self.pricing.unredeem(q.quote_id, payment_id)
            raise QuoteInvalid("the quote is in another payer currency")
        return q

    async def _undo(self, payment_id: str, quote: QuoteInfo | None, policy: PolicyResult) -> None:
        with contextlib.suppress(QrgwError):
            if policy.reservation:
                await self.pricing.release(policy.reservation)
        with contextlib.suppress(QrgwError):
            if quote is not None:
                await self.pricing.unredeem(quote.quote_id, payment_id)
        with contextlib.suppress(QrgwError):
            await self.store.release_lease(lease_name(payment_id), self.owner)

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
            rec = await self._drive_held(rec)
            # a request that crashed mid-way never finished its claim: repeats get an answer now
            with contextlib.suppress(QrgwError):
                await self.store.finish_claim(rec.partner_id, rec.payment_request_id, {"payment_id": payment_id})
            return rec
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

    async def _drive_held(self, rec: PaymentRecord, deadline: float | None = None) -> PaymentRecord:
        """Run steps while the next one is due now; the caller holds the lease and has
        persisted the intent of ``rec.stage``. Past ``deadline`` (loop time; the request's
        inline budget) the payment is handed to recovery, due at once."""
        loop = asyncio.get_running_loop()
        while rec.status == PaymentStatus.PROCESSING and rec.stage in st.ACTIVE_STAGES:
            if deadline is not None and loop.time() >= deadline:
                return await self._hand_over(rec)
            outcome = await self._call(rec)
            d = st.decide(rec.stage, outcome, rec.legs.get("visits", {}), self.policy)
            if d.status == PaymentStatus.FAILED and rec.reservation:
                await self.pricing.release(rec.reservation)  # idempotent; before FAILED is recorded
            try:
                rec = await self._apply(rec, outcome, d)
            except StaleVersion:
                fresh = await self.store.get_payment(rec.payment_id)
                assert fresh is not None
                return fresh
            if d.final:
                self._status(rec)
            if d.delay_s > 0:
                break
        return rec

    async def _hand_over(self, rec: PaymentRecord) -> PaymentRecord:
        """Make the persisted intent due now, so the recovery task runs it without waiting."""

        def change(cur: PaymentRecord) -> Any:
            if cur.status != PaymentStatus.PROCESSING or cur.stage != rec.stage:
                return None
            new = copy_record(cur)
            new.next_attempt_at = self.clock()
            visits = new.legs.setdefault("visits", {})
            visits[new.stage] = max(0, visits.get(new.stage, 1) - 1)  # recovery counts the visit again
            return new, f"inline budget spent; {new.stage} handed to recovery", (), ()

        return await cas(self.store, rec.payment_id, change) or rec

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

    async def _apply(self, rec: PaymentRecord, o: Outcome, d: st.Decision) -> PaymentRecord:
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
        return await self.store.update_payment(new, expected_version=rec.version, reason=d.reason, events=events)

    def _status(self, rec: PaymentRecord) -> None:
        if self.observe_status is not None:
            self.observe_status(rec)
