"""Observing HTTP both ways: the outermost middleware of the partner API (request span, one access
log line, request metrics) and the partner-call observer handed to ``adapters.http.OutboundHttp``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware
from opentelemetry.trace import Span

from gateway.metrics import Metrics
from gateway.obs.tracing import Tracing, trace_ids

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
access_log = structlog.get_logger("gateway.access")


def route_of(request: web.Request) -> str:
    """The route template (``/v1/payments/{payment_id}``): bounded label values, no ids."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _error_code(resp: web.StreamResponse | None) -> str | None:
    """The stable code of a problem+json answer, whoever produced it (handler, signing, edge)."""
    if not isinstance(resp, web.Response) or resp.content_type != "application/problem+json":
        return None
    body = resp.body
    if not isinstance(body, bytes | bytearray):
        return None
    try:
        code = json.loads(body).get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, str) else None


def make_observe_middleware(metrics: Metrics, tracing: Tracing) -> Middleware:
    """Outermost: everything inside (request id, signing, problems) runs in the request's span,
    and the final status — problem answers and signature refusals included — is what is logged."""

    @web.middleware
    async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = route_of(request)
        started = time.perf_counter()
        status, resp = 500, None
        attrs = {"http.request.method": request.method, "http.route": route}
        with tracing.server_span(f"{request.method} {route}", request.headers, attrs) as span:
            ids = trace_ids(span)
            with structlog.contextvars.bound_contextvars(**ids):
                try:
                    resp = await handler(request)
                    status = resp.status
                    return resp
                except web.HTTPException as exc:  # only redirects/200s escape the problem middleware
                    status = exc.status
                    raise
                finally:
                    elapsed = time.perf_counter() - started
                    partner = request.get("partner_id")
                    code = _error_code(resp)
                    metrics.observe_request(request.method, route, status, partner or "", elapsed)
                    if span.is_recording():
                        span.set_attribute("http.response.status_code", status)
                        if partner:
                            span.set_attribute("qrgw.partner", partner)
                        if code:
                            span.set_attribute("qrgw.error_code", code)
                    access_log.info(
                        "request",
                        partner=partner,
                        keyid=request.get("keyid"),
                        method=request.method,
                        route=route,
                        status=status,
                        code=code,
                        latency_ms=round(elapsed * 1000, 2),
                        request_id=request.get("request_id"),
                    )

    return observe_middleware


SERVER_NAME = "qrgw"  # the Server header: no framework, no version


async def hide_server_banner(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: name no framework or version in ``Server:``."""
    response.headers["Server"] = SERVER_NAME


@dataclass(frozen=True)
class _Call:
    partner: str
    op: str
    span: Span


class PartnerCallObserver:
    """``adapters.observe.CallObserver`` over the app's metrics and tracer."""

    def __init__(self, metrics: Metrics, tracing: Tracing) -> None:
        self.metrics, self.tracing = metrics, tracing

    def call_started(self, partner: str, op: str, method: str, path: str, headers: MutableMapping[str, str]) -> object:
        attrs: dict[str, Any] = {"qrgw.partner": partner, "qrgw.op": op, "http.request.method": method,
                                 "url.path": path}
        return _Call(partner, op, self.tracing.start_client(f"partner {partner} {op}", headers, attrs))

    def call_ended(self, token: object, outcome: str, status: int | None, seconds: float) -> None:
        assert isinstance(token, _Call)
        self.metrics.partner_http.labels(token.partner, token.op, outcome).inc()
        self.metrics.partner_latency.labels(token.partner, token.op).observe(seconds)
        Tracing.end(token.span, None if outcome == "ok" else outcome, **{
            "http.response.status_code": status, "qrgw.outcome": outcome})

    def outcome(self, partner: str, op: str, kind: str) -> None:
        self.metrics.partner_outcomes.labels(partner, op, kind).inc()
