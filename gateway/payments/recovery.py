"""The recovery task: resumes every payment with work left until it is final.

Started with the server (``cleanup_ctx``) in every gateway process. Safe with several
processes on one store: each payment is driven only under its lease
(``Store.acquire_lease``), every write is a compare-and-set, and a payment is looked at only
when its ``next_attempt_at`` is due (unknown outcomes back off). Stopping waits for the
step in flight: a stage's intent is persisted before its call, so nothing is half-done.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from gateway.payments.orchestrator import Orchestrator
from gateway.payments.service import ReversalService
from gateway.payments.steps import Clock, utcnow
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
        batch: int = 500,
        concurrency: int = 16,
        clock: Clock = utcnow,
    ) -> None:
        self.orch, self.rev = orchestrator, reversals
        self.store = orchestrator.store
        self.interval_s, self.batch, self.clock = interval_s, batch, clock
        self._sem = asyncio.Semaphore(concurrency)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def sweep(self) -> int:
        """One pass over the payments with work left; returns how many were due and driven."""
        ids = await self.store.payments_in_progress(self.batch)
        driven = await asyncio.gather(*(self._one(pid) for pid in ids))
        return sum(driven)

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
        while not self._stop.is_set():
            try:
                await self.sweep()
            except QrgwError as exc:
                log.warning("recovery_sweep_failed", code=exc.code)
            except Exception:
                log.exception("recovery_sweep_crashed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval_s)

    def start(self) -> None:
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self.run(), name="qrgw-recovery")

    async def stop(self) -> None:
        """Finish the sweep in flight, then stop."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
