"""Which partners are paused: the port routing reads, and its store-backed implementation.

Routing runs synchronously on the request path, so ``paused`` answers from memory; the store-backed
status keeps a snapshot that ``refresh`` re-reads (a background task every
``routing_policy.status_refresh_s``) and that ``set_paused`` updates at once in the calling process.
A partner is paused when its config says ``paused = true`` or its blob in the store says so: the
store flag is what an admin API sets, shared by every gateway process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from gateway.store.base import Store
from schemas.errors import QrgwError

log = structlog.get_logger("gateway.routing")
KEY = "partner-status:"  # + partner id: {"paused": bool, "reason": str, "at": ISO 8601}


class PartnerStatus(Protocol):
    def paused(self, partner: str) -> bool:
        """From the latest snapshot; no I/O."""

    async def set_paused(self, partner: str, paused: bool, reason: str = "") -> None: ...

    async def refresh(self) -> None: ...


class StaticStatus:
    """Config flags only (tests, and apps without a store)."""

    def __init__(self, paused: Iterable[str] = ()) -> None:
        self._paused = set(paused)

    def paused(self, partner: str) -> bool:
        return partner in self._paused

    async def set_paused(self, partner: str, paused: bool, reason: str = "") -> None:
        (self._paused.add if paused else self._paused.discard)(partner)

    async def refresh(self) -> None:
        return None


class StoreStatus:
    """Config flags OR a blob per partner in the store (``partner-status:<id>``)."""

    def __init__(self, store: Store, partners: Iterable[str], config_paused: Iterable[str] = ()) -> None:
        self.store = store
        self.partners = list(partners)
        self.config_paused = frozenset(config_paused)
        self._store_paused: set[str] = set()

    def paused(self, partner: str) -> bool:
        return partner in self.config_paused or partner in self._store_paused

    async def set_paused(self, partner: str, paused: bool, reason: str = "") -> None:
        doc: dict[str, Any] = {"paused": paused, "reason": reason, "at": datetime.now(UTC).isoformat()}
        await self.store.put_blob(KEY + partner, json.dumps(doc).encode())
        (self._store_paused.add if paused else self._store_paused.discard)(partner)

    async def refresh(self) -> None:
        found: set[str] = set()
        for pid in self.partners:
            raw = await self.store.get_blob(KEY + pid)
            if raw is not None and json.loads(raw).get("paused") is True:
                found.add(pid)
        self._store_paused = found

    async def run(self, interval_s: float) -> None:
        """Refresh forever; a store outage keeps the last snapshot (logged), never stops routing."""
        while True:
            try:
                await self.refresh()
            except (QrgwError, ValueError) as exc:
                log.warning("partner_status_refresh_failed", error=repr(exc))
            await asyncio.sleep(interval_s)


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
