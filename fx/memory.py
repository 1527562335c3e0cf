"""In-process implementations of the fx ports (quotes, limit counters, blobs).

Semantics follow ``gateway.store.base.Store`` for the same methods; used by fx's own tests and
as a stand-in where no Store is wired. The gateway uses its real stores (Memory/Redis).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MemoryFxStore"]


@dataclass(frozen=True, slots=True)
class _Use:
    status: str
    data: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class _Reservation:
    ok: bool
    denied: Any = None
    used: Mapping[str, int] = field(default_factory=dict)


class MemoryFxStore:
    """QuoteRepository + LimitLedger + BlobCache under one asyncio lock (atomic per call)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = asyncio.Lock()
        self._quotes: dict[str, tuple[float, dict[str, Any], str | None]] = {}  # id -> (deadline, data, consumer)
        self._counters: dict[tuple[str, str], int] = {}
        self._held: dict[tuple[str, str], dict[str, int]] = {}  # (holder, reservation) -> counter -> amount
        self._blobs: dict[str, tuple[float | None, bytes]] = {}

    # -- quotes ---------------------------------------------------------------------------------
    async def put_quote(self, quote_id: str, data: Mapping[str, Any], ttl_s: int) -> None:
        async with self._lock:
            self._quotes[quote_id] = (self.clock() + ttl_s, dict(data), None)

    def _live(self, quote_id: str) -> tuple[float, dict[str, Any], str | None] | None:
        e = self._quotes.get(quote_id)
        if e is None or e[0] <= self.clock():
            self._quotes.pop(quote_id, None)
            return None
        return e

    async def get_quote(self, quote_id: str) -> Mapping[str, Any] | None:
        async with self._lock:
            e = self._live(quote_id)
            return dict(e[1]) if e else None

    async def consume_quote(self, quote_id: str, expect: Mapping[str, str], consumer: str) -> _Use:
        async with self._lock:
            e = self._live(quote_id)
            if e is None:
                return _Use("MISSING")
            deadline, data, used_by = e
            if any(str(data.get(k)) != v for k, v in expect.items()):
                return _Use("MISMATCH")
            if used_by is not None and used_by != consumer:
                return _Use("USED")
            self._quotes[quote_id] = (deadline, data, consumer)
            return _Use("OK", dict(data))

    async def restore_quote(self, quote_id: str, consumer: str) -> None:
        async with self._lock:
            e = self._live(quote_id)
            if e is not None and e[2] == consumer:
                self._quotes[quote_id] = (e[0], e[1], None)

    # -- limit counters -------------------------------------------------------------------------
    async def reserve_limits(self, holder: str, reservation_id: str, items: Sequence[Any]) -> _Reservation:
        async with self._lock:
            if (holder, reservation_id) in self._held:
                return _Reservation(True, used={i.counter: self._counters.get((holder, i.counter), 0) for i in items})
            for i in items:
                now = self._counters.get((holder, i.counter), 0)
                if now + i.amount > i.cap:
                    return _Reservation(False, i, {i.counter: now})
            for i in items:
                self._counters[(holder, i.counter)] = self._counters.get((holder, i.counter), 0) + i.amount
            self._held[(holder, reservation_id)] = {i.counter: i.amount for i in items}
            return _Reservation(True, used={i.counter: self._counters[(holder, i.counter)] for i in items})

    async def release_limits(
        self, holder: str, reservation_id: str, amounts: Mapping[str, int] | None = None
    ) -> None:
        async with self._lock:
            held = self._held.get((holder, reservation_id))
            if held is None:
                return
            for counter, left in list(held.items()):
                give = left if amounts is None else max(0, min(left, amounts.get(counter, 0)))
                held[counter] = left - give
                self._counters[(holder, counter)] = self._counters.get((holder, counter), 0) - give

    async def limit_usage(self, holder: str, counter: str) -> int:
        async with self._lock:
            return self._counters.get((holder, counter), 0)

    # -- blobs ----------------------------------------------------------------------------------
    async def put_blob(self, key: str, value: bytes, ttl_s: int | None = None) -> None:
        async with self._lock:
            self._blobs[key] = (None if ttl_s is None else self.clock() + ttl_s, value)

    async def get_blob(self, key: str) -> bytes | None:
        async with self._lock:
            e = self._blobs.get(key)
            if e is None or (e[0] is not None and e[0] <= self.clock()):
                return None
            return e[1]
