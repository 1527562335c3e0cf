"""Per-partner circuit breaker on consecutive transport failures (docs/routing.md).

Fed by the payment core's call observer (``observe(partner, op, kind)``): an ``unknown`` outcome
(timeout, refused connection, 5xx: the partner may or may not have acted) counts as a failure; any
answer, approval or refusal, proves the partner reachable and resets the count. ``failures`` in a
row open the circuit: routing skips the partner for ``open_s``, then the circuit is half-open and
lets ``half_open_probes`` routes through at once; the first answered call closes it, an unknown
one opens it again. A probe whose outcome never comes frees its slot after ``probe_timeout_s``.

State is per process (each gateway process learns from its own calls). The clock is injectable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

from gateway.routing_settings import BreakerSettings


class Circuit(IntEnum):
    """Values of the ``qrgw_partner_circuit_state`` gauge."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass
class _Partner:
    failures: int = 0
    opened_at: float | None = None
    probes: list[float] = field(default_factory=list)  # when each probe in flight was let through


class CircuitBreaker:
    def __init__(self, settings: BreakerSettings | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings or BreakerSettings()
        self.clock = clock
        self._partners: dict[str, _Partner] = {}

    def _get(self, partner: str) -> _Partner:
        return self._partners.setdefault(partner, _Partner())

    def state(self, partner: str) -> Circuit:
        p = self._partners.get(partner)
        if p is None or p.opened_at is None:
            return Circuit.CLOSED
        if self.clock() - p.opened_at < self.settings.open_s:
            return Circuit.OPEN
        return Circuit.HALF_OPEN

    def _live_probes(self, p: _Partner) -> list[float]:
        now = self.clock()
        p.probes = [t for t in p.probes if now - t < self.settings.probe_timeout_s]
        return p.probes

    def would_allow(self, partner: str) -> bool:
        """Would a route to ``partner`` go through now? Takes nothing (decode previews use this)."""
        state = self.state(partner)
        if state is Circuit.HALF_OPEN:
            return len(self._live_probes(self._get(partner))) < self.settings.half_open_probes
        return state is Circuit.CLOSED

    def allow(self, partner: str) -> bool:
        """``would_allow``, and while half-open take one probe slot."""
        if not self.would_allow(partner):
            return False
        if self.state(partner) is Circuit.HALF_OPEN:
            self._get(partner).probes.append(self.clock())
        return True

    def observe(self, partner: str, op: str, kind: str) -> None:
        """The call observer hook: ``kind`` is the outcome kind of one partner call."""
        p = self._get(partner)
        if kind == "unknown":
            p.failures += 1
            if self.state(partner) is Circuit.HALF_OPEN or p.failures >= self.settings.failures:
                p.opened_at = self.clock()  # (re)open: the probe failed, or too many in a row
                p.probes.clear()
        else:
            p.failures = 0
            p.opened_at = None
            p.probes.clear()

    def partners(self) -> list[str]:
        return sorted(self._partners)
