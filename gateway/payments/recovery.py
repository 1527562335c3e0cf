"""The recovery task: resumes every payment with work left until it is final.

Started with the server (``cleanup_ctx``) in every gateway process. Safe with several
processes on one store: each payment is driven only under its lease
(``Store.acquire_lease``), every write is a compare-and-set, and a payment is looked at only
when its ``next_attempt_at`` is due (unknown outcomes back off). Stopping waits for the
step in flight: a stage's intent is persisted before its call, so nothing is half-done.

Cost when idle: a sweep reads only the due-time index (``Store.payments_due``), never a record
that is not due, and the task sleeps until the earliest due time (at most ``max_idle_s``, at
least ``interval_s``); ``wake()`` (called when this process makes work due now) cuts the sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

import structlog

from gateway.obs.backoff import Outage
from gateway.payments.orchestrator import Orchestrator
from gateway.payments.service import ReversalService
from gateway.payments.steps import Clock, utcnow
from gateway.store.base import PURPOSE
from schemas.errors import QrgwError
from schemas.payment import PaymentStatus

log = structlog.get_logger("gateway.recovery")


class Recovery:
    def __init__(
        self,
        orchestrator: Orchestrator,
        reversals: ReversalService,
        *,
        interval_s: float = 0.5,
        max_idle_s: float = 5.0,
        batch: int = 500,
        concurrency: int = 16,
        clock: Clock = utcnow,
    ) -> None:
        self.orch, self.rev = orchestrator, reversals
        self.store = orchestrator.store
        self.interval_s, self.batch, self.clock = interval_s, batch, clock
        self.max_idle_s = max(interval_s, max_idle_s)
        self._sem = asyncio.Semaphore(concurrency)
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._next_due: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self._outage = Outage(log, "recovery", base_s=interval_s)

    async def sweep(self) -> int:
        """One pass over the payments with work left; returns how many were due and driven."""
        ids, self._next_due = await self.store.payments_due(self.clock(), self.batch)
        driven = await asyncio.gather(*(self._one(pid) for pid in ids))
        if len(ids) >= self.batch:
            self._next_due = self.clock()  # more are due than one sweep takes
        return sum(driven)

    def wake(self) -> None:
        """Sweep now: this process just made work due (a payment handed over, a retry scheduled)."""
        self._wake.set()

    def _sleep_s(self) -> float:
        if self._next_due is None:
            return self.max_idle_s
        until = (self._next_due - self.clock()).total_seconds()
        return min(self.max_idle_s, max(self.interval_s, until))

    async def _one(self, payment_id: str) -> bool:
        async with self._sem:
            try:
                rec = await self.store.get_payment(payment_id)
                if rec is None:
                    return False
                if rec.next_attempt_at is not None and rec.next_attempt_at > self.clock():
                    return False
                if rec.status == PaymentStatus.PROCESSING:
                    await self.orch.resume(payment_id)
                else:
                    await self.rev.resume(payment_id)
                return True
            except QrgwError as exc:  # store or partner trouble: the next sweep tries again
                log.warning("recovery_step_failed", payment_id=payment_id, code=exc.code, detail=exc.detail)
            except Exception:
                log.exception("recovery_step_crashed", payment_id=payment_id)
            return False

    async def run(self) -> None:
        PURPOSE.set("background")  # this task's store calls are not a request's
        while not self._stop.is_set():
            self._wake.clear()
            outage_wait: float | None = None
            try:
                await self.sweep()
                self._outage.succeeded()
            except QrgwError as exc:  # the store is down: back off, say so once (not every sweep)
                outage_wait = self._outage.failed(exc)
                self._next_due = None
            except Exception:
                log.exception("recovery_sweep_crashed")
                self._next_due = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait(), self._sleep_s() if outage_wait is None else outage_wait)

    async def _wait(self) -> None:
        """Until stopped or woken."""
        stop, wake = asyncio.ensure_future(self._stop.wait()), asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({stop, wake}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            wake.cancel()

    def start(self) -> None:
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self.run(), name="qrgw-recovery")

    async def stop(self) -> None:
        """Finish the sweep in flight, then stop."""
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
