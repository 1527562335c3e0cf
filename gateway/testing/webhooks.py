"""Test helper for webhook delivery: a scriptable partner receiver on a real loopback aiohttp
server that verifies every request's signature (PROTOCOL.md §2)."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from adapters.endpoint import PartnerEndpoint
from gateway.signing import KeyRegistry, verify_request
from gateway.testing.nonces import MemoryNonces
from schemas.errors import QrgwError


def webhook_endpoints(urls: Mapping[str, str | None]) -> dict[str, PartnerEndpoint]:
    """Sandbox endpoints (loopback http allowed) for partner id -> webhook_url."""
    return {
        pid: PartnerEndpoint(id=pid, family="qrgw", roles=("wallet", "acquirer"), country="KR", currency="KRW",
                             base_url=url or "http://127.0.0.1:9", webhook_url=url, sandbox=True)
        for pid, url in urls.items()
    }


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
