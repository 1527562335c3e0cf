"""The operator's settlement routes on the admin listener (``gateway.obs.admin``; never the
partner port): close a window, read it, list and resolve reconciliation exceptions — what
``qrgw settle close`` and ``qrgw recon`` do, for an operator console.

    POST /admin/settlement/windows/{window_id}/close     -> the window (201 closed now, 200 already closed)
    GET  /admin/settlement/windows/{window_id}           -> the window, 404 while open
    GET  /admin/recon/exceptions[?window=D&open=true]    -> {"exceptions": [...]}
    POST /admin/recon/exceptions/{exception_id}/resolve  {"note": "..."} -> the exception

Errors answer ``{"code", "detail"}`` with the error's status.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gateway.appkeys import SETTINGS, STORE
from gateway.obs.ready import GATEWAY_APP
from gateway.settlement.day import parse_day
from gateway.settlement.windows import CloseConfig, close_window
from schemas.errors import NotFound, QrgwError, ValidationFailed

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _guarded(fn: Handler) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await fn(request)
        except QrgwError as exc:
            return web.json_response({"code": exc.code, "detail": exc.detail}, status=exc.status)

    return handle


def _gateway(request: web.Request) -> web.Application:
    return request.app.get(GATEWAY_APP) or request.app


async def close(request: web.Request) -> web.StreamResponse:
    gw = _gateway(request)
    wid = parse_day(request.match_info["window_id"])
    doc, closed = await close_window(gw[STORE], wid, CloseConfig.from_settings(gw[SETTINGS]),
                                     owner=f"admin-{uuid.uuid4().hex[:12]}")
    return web.json_response(dict(doc), status=201 if closed else 200)


async def window(request: web.Request) -> web.StreamResponse:
    wid = parse_day(request.match_info["window_id"])
    doc = await _gateway(request)[STORE].get_window(wid)
    if doc is None:
        raise NotFound(f"window {wid} is not closed", code="SETTLEMENT_NOT_FOUND")
    return web.json_response(dict(doc))


async def exceptions(request: web.Request) -> web.StreamResponse:
    wid = request.query.get("window")
    only_open = request.query.get("open") in ("1", "true")
    docs = await _gateway(request)[STORE].recon_exceptions(parse_day(wid) if wid else None)
    return web.json_response({"exceptions": [dict(d) for d in docs if not (only_open and d.get("resolved_at"))]})


async def resolve(request: web.Request) -> web.StreamResponse:
    try:
        body: Any = json.loads(await request.read() or b"{}")
    except ValueError:
        raise ValidationFailed("body: expected JSON {\"note\": \"...\"}") from None
    note = body.get("note") if isinstance(body, dict) else None
    if not isinstance(note, str) or not note.strip() or len(note) > 1000:
        raise ValidationFailed("note: a non-empty string of at most 1000 characters is required")
    at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    doc = await _gateway(request)[STORE].resolve_recon_exception(request.match_info["exception_id"], note, at)
    if doc is None:
        raise NotFound("no such exception")
    return web.json_response(dict(doc))


ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/admin/settlement/windows/{window_id}/close", _guarded(close)),
    ("GET", "/admin/settlement/windows/{window_id}", _guarded(window)),
    ("GET", "/admin/recon/exceptions", _guarded(exceptions)),
    ("POST", "/admin/recon/exceptions/{exception_id}/resolve", _guarded(resolve)),
]
