"""Prometheus metrics of one gateway app (its own registry, so several apps in one process
— tests, benchmarks — never collide): HTTP requests and latencies, payments by status and
route, partner call outcomes. Served unsigned at ``/metrics``."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from schemas.payment import PaymentRecord

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "qrgw_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "qrgw_http_request_duration_seconds",
            "Time to answer",
            ["method", "route"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.payments = Counter(
            "qrgw_payments", "Payments reaching a status", ["status", "route", "wallet", "acquirer"], registry=r
        )
        self.partner_calls = Counter(
            "qrgw_partner_calls", "Calls to partners by outcome", ["partner", "op", "outcome"], registry=r
        )

    def observe_call(self, partner: str, op: str, outcome: str) -> None:
        self.partner_calls.labels(partner, op, outcome).inc()

    def observe_payment(self, rec: PaymentRecord) -> None:
        self.payments.labels(str(rec.status), rec.route.kind, rec.route.wallet, rec.route.acquirer).inc()

    def middleware(self) -> Middleware:
        @web.middleware
        async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            start = time.perf_counter()
            status = 500
            try:
                resp = await handler(request)
                status = resp.status
                return resp
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                info = request.match_info.route.resource
                route = info.canonical if info is not None else "unmatched"
                self.requests.labels(request.method, route, str(status)).inc()
                self.latency.labels(request.method, route).observe(time.perf_counter() - start)

        return metrics_middleware

    async def handler(self, request: web.Request) -> web.Response:
        resp = web.Response(body=generate_latest(self.registry))
        resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        resp.charset = "utf-8"
        return resp
