"""The admin API (``/admin/v1``) on the operator listener: JSON in and out, problem+json errors,
``Authorization: Bearer`` with roles (docs/admin.md). ``ROUTES`` lists every route with the role
it needs; ``install(admin_app)`` adds them (and the console) to the operator app that
``gateway.obs.admin.create_admin_app`` builds and ``qrgw serve`` starts on ``[admin] host:port``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web

from gateway.admin import actions, audit, queries
from gateway.admin.auth import Operator, Role, authenticate, require
from gateway.appkeys import SETTINGS, STORE
from gateway.breaker import Circuit
from gateway.config import Settings
from gateway.obs.ready import GATEWAY_APP
from gateway.partner_status import KEY as STATUS_KEY
from gateway.payments.container import PAYMENTS
from gateway.payments.ports import REVIEW_FLAG, REVIEW_STAGE
from gateway.routing import RoutingTable
from gateway.routing_app import routing_table
from gateway.store.base import Store
from gateway.webhooks.state import dead_letters
from schemas.errors import InvalidJSON, NotFound, PayloadTooLarge, ValidationFailed
from schemas.payment import PaymentStatus

OPERATOR_KEY = "admin_operator"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_MAX_BODY = 16 * 1024


# -- plumbing -----------------------------------------------------------------------------------------
def gw(request: web.Request) -> web.Application:
    """The partner-facing app whose state the operator app shows (``gateway.obs.admin``)."""
    return request.app[GATEWAY_APP]


def store_of(request: web.Request) -> Store:
    return gw(request)[STORE]


def settings_of(request: web.Request) -> Settings:
    return gw(request)[SETTINGS]


def table_of(request: web.Request) -> RoutingTable:
    return routing_table(gw(request))


async def operator(request: web.Request, role: Role) -> Operator:
    """Authenticate (401) and check the role (403); cached on the request."""
    op: Operator | None = request.get(OPERATOR_KEY)
    if op is None:
        op = await authenticate(request, store_of(request), settings_of(request).admin.operators)
        request[OPERATOR_KEY] = op
    require(op, role)
    return op


def needs(role: Role) -> Callable[[Handler], Handler]:
    def wrap(fn: Handler) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            await operator(request, role)
            return await fn(request)

        handler.__name__ = handler.__qualname__ = fn.__name__
        handler.__doc__ = fn.__doc__
        return handler

    return wrap


async def body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > _MAX_BODY:
        raise PayloadTooLarge("admin bodies are small JSON objects")
    raw = await request.content.read(_MAX_BODY + 1)
    if len(raw) > _MAX_BODY:
        raise PayloadTooLarge("admin bodies are small JSON objects")
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except ValueError:
        raise InvalidJSON("the body is not JSON") from None
    if not isinstance(doc, dict):
        raise InvalidJSON("the body must be a JSON object")
    return doc


def text_field(doc: dict[str, Any], name: str, max_len: int = 500) -> str:
    v = doc.get(name, "")
    if not isinstance(v, str) or len(v) > max_len:
        raise ValidationFailed(f"{name}: a string of at most {max_len} characters", field=name)
    return v


def _param(request: web.Request, name: str, max_len: int = 128) -> str | None:
    v = request.query.get(name)
    if v is None or v == "":
        return None
    if len(v) > max_len or any(ord(c) < 32 for c in v):
        raise ValidationFailed(f"{name}: at most {max_len} printable characters", field=name)
    return v


def _when(request: web.Request, name: str) -> datetime | None:
    v = _param(request, name, 40)
    if v is None:
        return None
    try:
        at = datetime.fromisoformat(v.replace("Z", "+00:00")) if "T" in v else datetime.combine(
            date.fromisoformat(v), datetime.min.time())
    except ValueError:
        raise ValidationFailed(f"{name}: an ISO 8601 date or date-time", field=name) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def limit_param(request: web.Request, default: int = 50, most: int = 200) -> int:
    v = _param(request, "limit", 4)
    if v is None:
        return default
    if not v.isdigit() or not 1 <= int(v) <= most:
        raise ValidationFailed(f"limit: 1 to {most}", field="limit")
    return int(v)


def filters_of(request: web.Request) -> queries.Filters:
    status = _param(request, "status", 24)
    if status is not None and status not in PaymentStatus.__members__:
        raise ValidationFailed(f"status: one of {', '.join(PaymentStatus)}", field="status")
    return queries.Filters(
        partner=_param(request, "partner", 32), status=PaymentStatus(status) if status else None,
        since=_when(request, "from"), until=_when(request, "to"),
        request_id=_param(request, "request_id"), payer=_param(request, "payer"),
    )


# -- reads --------------------------------------------------------------------------------------------
async def search_payments(request: web.Request) -> dict[str, Any]:
    recs, nxt = await queries.search(store_of(request), filters_of(request), limit_param(request),
                                     _param(request, "cursor", 200))
    return {"items": [queries.summary(r) for r in recs], "next_cursor": nxt}


async def payment_detail(request: web.Request, payment_id: str) -> dict[str, Any]:
    store = store_of(request)
    rec = await store.get_payment(payment_id)
    if rec is None:
        raise NotFound(f"no payment {payment_id}", code="PAYMENT_NOT_FOUND")
    return {"payment": rec.model_dump(mode="json"), "timeline": await queries.timeline(store, rec)}


async def list_dead_letters(request: web.Request) -> dict[str, Any]:
    items = [{"event_id": d["event"].get("event_id"), "type": d["event"].get("type"),
              "payment_id": d["event"].get("payment_id"), "recipients": d["event"].get("recipients"),
              "reason": d.get("reason"), "attempts": d.get("attempts"), "gave_up_at": d.get("gave_up_at"),
              "delivered": d.get("delivered"), "last_error": d.get("last_error")}
             for d in await dead_letters(store_of(request))]
    return {"items": items}


async def review_queue(request: web.Request) -> dict[str, Any]:
    store = store_of(request)
    ids = await store.payments_in_progress(1000)
    recs = [r for r in await queries._load(store, ids) if r is not None]
    held = [r for r in recs if r.stage == REVIEW_STAGE or REVIEW_FLAG in r.flags]
    held.sort(key=lambda r: r.created_at)
    return {"items": [queries.summary(r) for r in held]}


async def partners_view(request: web.Request) -> dict[str, Any]:
    settings, store, table = settings_of(request), store_of(request), table_of(request)
    ids = [p.id for p in settings.partners]
    stats = queries.partner_calls(await queries.recent(store, queries.WINDOW_MIN), ids)
    items = []
    for p in settings.partners:
        raw = await store.get_blob(STATUS_KEY + p.id)
        flag = json.loads(raw) if raw else {}
        items.append({
            "id": p.id, "roles": list(p.roles), "family": p.family, "country": p.country, "currency": p.currency,
            "paused": table.status.paused(p.id), "paused_in_config": p.paused,
            "pause_reason": flag.get("reason", "") if flag.get("paused") else "", "changed_at": flag.get("at"),
            "circuit": Circuit(table.breaker.state(p.id)).name.lower(),
            "calls": stats.get(p.id, {}).get("calls", 0), "errors": stats.get(p.id, {}).get("errors", 0),
            "error_rate": stats.get(p.id, {}).get("error_rate"),
        })
    return {"window_min": queries.WINDOW_MIN, "items": items}


# -- HTTP handlers ----------------------------------------------------------------------------------
def _json(doc: Any, status: int = 200) -> web.Response:
    return web.json_response(doc, status=status, dumps=lambda d: json.dumps(d, default=str))


@needs("viewer")
async def get_payments(request: web.Request) -> web.Response:
    return _json(await search_payments(request))


@needs("viewer")
async def get_payment(request: web.Request) -> web.Response:
    return _json(await payment_detail(request, request.match_info["payment_id"]))


@needs("viewer")
async def get_dead_letters(request: web.Request) -> web.Response:
    return _json(await list_dead_letters(request))


@needs("operator")
async def post_replay(request: web.Request) -> web.Response:
    op = await operator(request, "operator")
    return _json(await actions.replay(store_of(request), op, request.match_info["event_id"]))


@needs("viewer")
async def get_review(request: web.Request) -> web.Response:
    return _json(await review_queue(request))


@needs("admin")
async def post_resolve(request: web.Request) -> web.Response:
    op, doc = await operator(request, "admin"), await body(request)
    new = await actions.resolve(store_of(request), gw(request)[PAYMENTS].pricing, op,
                                request.match_info["payment_id"], text_field(doc, "resolution", 16),
                                text_field(doc, "note"))
    return _json(queries.summary(new))


@needs("viewer")
async def get_partners(request: web.Request) -> web.Response:
    return _json(await partners_view(request))


async def _pause(request: web.Request, paused: bool) -> web.Response:
    op, doc = await operator(request, "operator"), await body(request)
    table = table_of(request)
    out = await actions.set_paused(store_of(request), table.status, [p.id for p in settings_of(request).partners],
                                   op, request.match_info["partner_id"], paused, text_field(doc, "reason"))
    return _json(out)


@needs("operator")
async def post_pause(request: web.Request) -> web.Response:
    return await _pause(request, True)


@needs("operator")
async def post_resume(request: web.Request) -> web.Response:
    return await _pause(request, False)


@needs("viewer")
async def get_audit(request: web.Request) -> web.Response:
    items, nxt = await audit.page(store_of(request), limit_param(request), _param(request, "cursor", 64))
    return _json({"items": items, "next_cursor": nxt})


@needs("viewer")
async def get_overview(request: web.Request) -> web.Response:
    return _json(await queries.overview(store_of(request), [p.id for p in settings_of(request).partners]))


@needs("viewer")
async def get_whoami(request: web.Request) -> web.Response:
    op = await operator(request, "viewer")
    return _json({"name": op.name, "role": op.role})


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/admin/v1/payments", get_payments),
    ("GET", "/admin/v1/payments/{payment_id}", get_payment),
    ("POST", "/admin/v1/payments/{payment_id}/resolve", post_resolve),
    ("GET", "/admin/v1/review", get_review),
    ("GET", "/admin/v1/dead-letters", get_dead_letters),
    ("POST", "/admin/v1/dead-letters/{event_id}/replay", post_replay),
    ("GET", "/admin/v1/partners", get_partners),
    ("POST", "/admin/v1/partners/{partner_id}/pause", post_pause),
    ("POST", "/admin/v1/partners/{partner_id}/resume", post_resume),
    ("GET", "/admin/v1/audit", get_audit),
    ("GET", "/admin/v1/overview", get_overview),
    ("GET", "/admin/v1/whoami", get_whoami),
]


def install(admin: web.Application) -> None:
    """Add the admin API and the console to the operator app (``gateway.obs.admin.create_admin_app``)."""
    from gateway.admin import console
    from gateway.api.problems import problem_middleware, request_id_middleware

    admin.middlewares.extend([request_id_middleware, problem_middleware])
    for method, path, handler in ROUTES:
        admin.router.add_route(method, path, handler)
    console.install(admin)
