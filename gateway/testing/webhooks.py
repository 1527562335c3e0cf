"""Test helpers for webhook delivery: a scriptable receiver on a real loopback aiohttp server
that verifies every request's signature, and ``OutboxStore``, a small stand-in with the
outbox / blob / lease semantics of the Store port (Redis-stream-like consumer groups) for
tests that must not depend on a full store."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.signing import KeyRegistry, verify_request
from gateway.store.base import OutboxEntry
from gateway.testing.nonces import MemoryNonces
from schemas.errors import QrgwError


@dataclass
class _Group:
    next: int = 0
    pending: dict[str, tuple[str, float, int]] = field(default_factory=dict)  # id -> (consumer, at, n)


class OutboxStore:
    """Outbox, blobs and leases in memory (one process); time from ``time.monotonic``."""

    shards = 1

    def __init__(self) -> None:
        self.entries: list[OutboxEntry] = []
        self.groups: dict[str, _Group] = {}
        self.blobs: dict[str, tuple[bytes, float | None]] = {}
        self.leases: dict[str, tuple[str, float]] = {}
        self.acked: list[str] = []

    async def append_events(self, shard: int, events: Sequence[Mapping[str, Any]]) -> None:
        for ev in events:
            self.entries.append(OutboxEntry(f"{len(self.entries) + 1}-0", shard, dict(ev), 0))

    def _entry(self, entry_id: str, n: int) -> OutboxEntry:
        e = self.entries[int(entry_id.split("-")[0]) - 1]
        return OutboxEntry(e.entry_id, e.shard, e.event, n)

    async def read_events(self, group: str, consumer: str, count: int = 100) -> list[OutboxEntry]:
        g = self.groups.setdefault(group, _Group())
        out: list[OutboxEntry] = []
        while g.next < len(self.entries) and len(out) < count:
            e = self.entries[g.next]
            g.next += 1
            g.pending[e.entry_id] = (consumer, time.monotonic(), 1)
            out.append(self._entry(e.entry_id, 1))
        return out

    async def reclaim_events(self, group: str, consumer: str, min_idle_ms: int, count: int = 100) -> list[OutboxEntry]:
        g = self.groups.setdefault(group, _Group())
        now, out = time.monotonic(), list[OutboxEntry]()
        for eid, (_, at, n) in sorted(g.pending.items(), key=lambda kv: int(kv[0].split("-")[0])):
            if len(out) >= count:
                break
            if (now - at) * 1000 >= min_idle_ms:
                g.pending[eid] = (consumer, now, n + 1)
                out.append(self._entry(eid, n + 1))
        return out

    async def ack_events(self, group: str, entries: Sequence[OutboxEntry]) -> None:
        g = self.groups.setdefault(group, _Group())
        for e in entries:
            if g.pending.pop(e.entry_id, None) is not None:
                self.acked.append(e.entry_id)

    async def outbox_backlog(self, group: str) -> int:
        g = self.groups.setdefault(group, _Group())
        return len(self.entries) - g.next + len(g.pending)

    async def put_blob(self, key: str, value: bytes, ttl_s: int | None = None) -> None:
        self.blobs[key] = (value, time.monotonic() + ttl_s if ttl_s else None)

    async def get_blob(self, key: str) -> bytes | None:
        v = self.blobs.get(key)
        if v is None or (v[1] is not None and v[1] < time.monotonic()):
            return None
        return v[0]

    async def acquire_lease(self, name: str, owner: str, ttl_ms: int) -> bool:
        cur = self.leases.get(name)
        now = time.monotonic()
        if cur is not None and cur[0] != owner and cur[1] > now:
            return False
        self.leases[name] = (owner, now + ttl_ms / 1000)
        return True

    async def release_lease(self, name: str, owner: str) -> None:
        if self.leases.get(name, ("", 0.0))[0] == owner:
            del self.leases[name]


class WebhookReceiver:
    """A partner's webhook endpoint on loopback. ``script`` is consumed one answer per request:
    an int status, ``"hang"`` (no answer within the caller's timeout) or ``"drop"`` (connection
    reset); once empty every request answers 200. Every request's signature is verified;
    ``events`` holds the verified bodies, ``bad`` the requests that failed verification."""

    def __init__(self, registry: KeyRegistry, script: Sequence[int | str] = (), hang_s: float = 30.0) -> None:
        self.registry = registry
        self.nonces = MemoryNonces()
        self.script: deque[int | str] = deque(script)
        self.hang_s = hang_s
        self.events: list[dict[str, Any]] = []
        self.bad: list[str] = []
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post("/webhooks", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/webhooks"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        body = await request.read()
        try:
            await verify_request(self.registry, self.nonces, method=request.method, url=str(request.url),
                                 headers=request.headers, body=body)
        except QrgwError as exc:
            self.bad.append(exc.code)
            return web.Response(status=401)
        action = self.script.popleft() if self.script else 200
        if action == "hang":
            await asyncio.sleep(self.hang_s)
        if action == "drop":
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=499)
        status = int(action) if isinstance(action, int) else 200
        if 200 <= status < 300:
            self.events.append(json.loads(body))
        return web.Response(status=status)

    @property
    def event_ids(self) -> set[str]:
        return {str(e["event_id"]) for e in self.events}
