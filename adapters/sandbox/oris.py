"""Sandbox national limit registry (ORIS-style): the server ``adapters.oris`` talks to.

Keeps per person and year the USD cents counted, and per report id what it still holds, so a
repeated report counts nothing and a release never gives back more than was reported. The
allowance is ``limit_usd_cents`` per person per year (USD 100,000 by default, Korea 2026).

Control API (sandbox only): ``POST /sandbox/mode`` ``{"mode": "up" | "down" | "slow"}`` —
``down`` answers 503 to everything, ``slow`` answers after ``slow_s`` (past the client's
timeout); ``POST /sandbox/used`` ``{"person", "year", "used": cents}`` plays another channel's
payments; ``GET /sandbox/state``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from adapters.sandbox.server import Loopback

__all__ = ["OrisSandbox"]


def _money(cents: int) -> dict[str, str]:
    return {"currency": "USD", "value": str(max(0, cents))}


@dataclass
class _Report:
    person: str
    year: int
    held: int


@dataclass
class OrisSandbox(Loopback):
    limit_usd_cents: int = 10_000_000
    slow_s: float = 5.0
    mode: str = "up"
    used: dict[tuple[str, int], int] = field(default_factory=dict)
    reports: dict[str, _Report] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    url: str | None = None
    _runner: web.AppRunner | None = None

    def _allowance(self, person: str, year: int, **extra: Any) -> dict[str, Any]:
        used = self.used.get((person, year), 0)
        return {"person": person, "year": year, "limit": _money(self.limit_usd_cents), "used": _money(used),
                "remaining": _money(self.limit_usd_cents - used), **extra}

    @web.middleware
    async def _faults(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/sandbox/"):
            return await handler(request)  # type: ignore[no-any-return]
        self.calls.append(f"{request.method} {request.path.split('/')[2]}")
        if self.mode == "down":
            return web.json_response({"error": "unavailable"}, status=503)
        if self.mode == "slow":
            await asyncio.sleep(self.slow_s)
        return await handler(request)  # type: ignore[no-any-return]

    async def _get(self, request: web.Request) -> web.Response:
        return web.json_response(self._allowance(request.match_info["person"], int(request.query["year"])))

    async def _report(self, request: web.Request) -> web.Response:
        rid, body = request.match_info["report_id"], await request.json()
        person, year, amount = str(body["person"]), int(body["year"]), int(body["amount"]["value"])
        if rid in self.reports:  # a repeat: counted once
            r = self.reports[rid]
            return web.json_response(self._allowance(r.person, r.year, accepted=True))
        used = self.used.get((person, year), 0)
        if used + amount > self.limit_usd_cents and not body.get("late"):
            return web.json_response(self._allowance(person, year, accepted=False), status=409)
        self.used[(person, year)] = used + amount
        self.reports[rid] = _Report(person, year, amount)
        return web.json_response(self._allowance(person, year, accepted=True))

    async def _release(self, request: web.Request) -> web.Response:
        rid, body = request.match_info["report_id"], await request.json()
        r = self.reports.get(rid)
        if r is not None:
            amount = r.held if body.get("amount") is None else min(r.held, int(body["amount"]["value"]))
            r.held -= amount
            self.used[(r.person, r.year)] = self.used.get((r.person, r.year), 0) - amount
        return web.json_response({"released": r is not None})

    async def _mode(self, request: web.Request) -> web.Response:
        self.mode = str((await request.json())["mode"])
        return web.json_response({"mode": self.mode})

    async def _set_used(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.used[(str(body["person"]), int(body["year"]))] = int(body["used"])
        return web.json_response({"ok": True})

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response({"mode": self.mode, "calls": self.calls,
                                  "used": {f"{p}:{y}": v for (p, y), v in self.used.items()}},
                                 dumps=lambda o: json.dumps(o, sort_keys=True))

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._faults])
        app.router.add_get("/v1/allowances/{person}", self._get)
        app.router.add_put("/v1/reports/{report_id}", self._report)
        app.router.add_post("/v1/reports/{report_id}/release", self._release)
        app.router.add_post("/sandbox/mode", self._mode)
        app.router.add_post("/sandbox/used", self._set_used)
        app.router.add_get("/sandbox/state", self._state)
        return app
