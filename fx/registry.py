"""The national registry step of the FX policy, with its fallback when the registry is down.

Order for a payment the registry covers (a home-country resident paying abroad):
1. ``check``: ask the person's remaining national allowance; less than the payment → the
   payment is refused (``FX_LIMIT_EXCEEDED``, limit ``national_annual``) before anything is counted;
2. the gateway reserves its own counters (fx.policy);
3. ``report``: the registry counts the payment (once per payment id); a refusal there (another
   channel spent the allowance in between) undoes step 2 and refuses the payment.
When the registry does not answer (step 1 or 3), ``fallback`` decides: ``refuse`` →
``503 FX_REGISTRY_UNAVAILABLE`` (nothing counted); ``count_locally`` → the payment goes on
under the gateway's own caps, flagged ``registry_pending``, and its report is queued and sent
later (``flush``; before every registry call). Every outcome is passed to ``observe(op, outcome)``
(metrics: ``qrgw_fx_registry``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import structlog

from fx.money import Money
from fx.ports import Allowance, LimitRegistry
from schemas.errors import LimitExceeded, RegistryUnavailable

__all__ = ["PENDING_FLAG", "Flusher", "RegistryGuard"]

PENDING_FLAG = "registry_pending"
Observe = Callable[[str, str], None]
log = structlog.get_logger("fx.registry")


@dataclass
class _Pending:
    person: str
    year: int
    amount: int  # USD cents still to report (reduced by releases made before it was sent)


def _refused(allowance: Allowance, usd: Money) -> LimitExceeded:
    remaining = Money(allowance.remaining, "USD")
    return LimitExceeded(
        f"{usd} passes the national annual allowance; {remaining} remains",
        limit="national_annual", limit_value=Money(allowance.limit, "USD").to_dict(),
        remaining=remaining.to_dict(),
    )


class RegistryGuard:
    def __init__(
        self,
        registry: LimitRegistry,
        fallback: Literal["refuse", "count_locally"] = "refuse",
        observe: Observe | None = None,
    ) -> None:
        self.registry, self.fallback = registry, fallback
        self.observe: Observe = observe or (lambda op, outcome: None)
        self.pending: dict[str, _Pending] = {}  # report id -> report not yet accepted by the registry

    def _down(self, op: str, exc: RegistryUnavailable) -> None:
        """Apply the fallback to an unanswered call: raise (refuse) or return (count locally)."""
        if self.fallback == "refuse":
            self.observe(op, "unavailable_refused")
            raise RegistryUnavailable(
                "the national limit registry did not answer; retry later", retry_after=5
            ) from exc
        self.observe(op, "unavailable_counted_locally")
        log.warning("fx_registry_unavailable", op=op, fallback=self.fallback, detail=exc.detail)

    async def allowance(self, person: str, year: int) -> Allowance | None:
        """The registry's view, for display (None when it does not answer)."""
        try:
            return await self.registry.allowance(person, year)
        except RegistryUnavailable:
            self.observe("allowance", "unavailable_shown")
            return None

    async def check(self, person: str, year: int, usd: Money) -> bool:
        """Step 1; True when the registry answered (False: counting locally)."""
        await self.flush()
        try:
            a = await self.registry.allowance(person, year)
        except RegistryUnavailable as exc:
            self._down("allowance", exc)
            return False
        if usd.minor > a.remaining:
            self.observe("allowance", "refused")
            raise _refused(a, usd)
        self.observe("allowance", "ok")
        return True

    async def report(self, person: str, report_id: str, year: int, usd: Money) -> bool:
        """Step 3; True when reported, False when queued (count locally); LimitExceeded /
        RegistryUnavailable when the payment must be refused (the caller undoes its counters)."""
        try:
            a = await self.registry.report(person, report_id, year, usd.minor)
        except RegistryUnavailable as exc:
            self._down("report", exc)
            self.pending[report_id] = _Pending(person, year, usd.minor)
            return False
        if not a.accepted:
            self.observe("report", "refused")
            raise _refused(a, usd)
        self.observe("report", "ok")
        return True

    def queue(self, person: str, report_id: str, year: int, usd: Money) -> None:
        """Report later (step 1 went unanswered and the fallback counts locally)."""
        self.pending[report_id] = _Pending(person, year, usd.minor)

    async def release(self, person: str, report_id: str, amount: int | None) -> None:
        """Give back at the registry; a report still queued is reduced instead (never sent twice)."""
        queued = self.pending.get(report_id)
        if queued is not None:
            queued.amount = 0 if amount is None else max(0, queued.amount - amount)
            if queued.amount == 0:
                del self.pending[report_id]
            self.observe("release", "dequeued")
            return
        try:
            await self.registry.release(person, report_id, amount)
            self.observe("release", "ok")
        except RegistryUnavailable as exc:
            # The payer must not lose allowance to our outage: log loudly for the operator's
            # resend; the payment's own release already happened.
            self.observe("release", "unavailable")
            log.error("fx_registry_release_lost", report_id=report_id, detail=exc.detail)

    async def flush(self) -> int:
        """Send queued reports (oldest first, marked late: the payments happened, the registry
        counts them whatever the cap); stops at the first unanswered one. Returns how many."""
        sent = 0
        for report_id, p in list(self.pending.items()):
            try:
                a = await self.registry.report(p.person, report_id, p.year, p.amount, late=True)
            except RegistryUnavailable:
                return sent
            del self.pending[report_id]
            sent += 1
            self.observe("report_later", "ok" if a.accepted else "over_cap")
        return sent

    def start_flusher(self, interval_s: float) -> Flusher:
        """Send queued reports every ``interval_s`` even when no payment calls the registry."""
        return Flusher(self, interval_s)


class Flusher:
    """The background task of ``RegistryGuard.start_flusher`` (closed with the app)."""

    def __init__(self, guard: RegistryGuard, interval_s: float) -> None:
        self.guard, self.interval_s = guard, interval_s
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            if self.guard.pending:
                try:
                    await self.guard.flush()
                except Exception:  # never let one bad answer stop the resends
                    log.exception("fx_registry_flush_failed")

    async def aclose(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
