"""Prometheus metrics of one gateway app, all in ONE registry per app (so several apps in one
process — tests, benchmarks — never collide), served by the operator listener's ``/metrics``
(``gateway.obs.admin``), never on the partner port.

Counted as things happen: HTTP answers (route, status, partner), payments by status and route,
partner calls (the payment core's outcome; the transport's outcome and latency through
``adapters.observe.CallObserver``), quotes issued/redeemed/expired, FX limit refusals by rule.
Sampled at scrape time (``refresh``): payments in flight and the oldest one's age, recovery lag,
FX table age, days until each signing key's ``not_after``. Webhook backlog and dead letters are
the webhook worker's (``gateway.webhooks.worker.WebhookMetrics``, same registry); process
metrics are prometheus_client's collectors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from schemas.payment import PaymentRecord

Refresher = Callable[[], Awaitable[None]]
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_REFRESH_BUDGET_S = 5.0  # a scrape answers even when the store is slow; stale gauges beat none


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None, *, process: bool = True) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        if process:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            if GC_COLLECTOR is not None:
                GCCollector(registry=r)
        self.requests = Counter(
            "qrgw_http_requests", "HTTP requests answered", ["method", "route", "status", "partner"], registry=r
        )
        self.latency = Histogram(
            "qrgw_http_request_duration_seconds", "Time to answer", ["method", "route"],
            registry=r, buckets=LATENCY_BUCKETS,
        )
        self.payments = Counter(
            "qrgw_payments", "Payments reaching a status", ["status", "route", "wallet", "acquirer"], registry=r
        )
        self.partner_calls = Counter(
            "qrgw_partner_calls", "Payment-core partner calls by outcome", ["partner", "op", "outcome"], registry=r
        )
        self.partner_http = Counter(
            "qrgw_partner_http_requests", "Outbound partner HTTP calls by transport outcome",
            ["partner", "op", "outcome"], registry=r,
        )
        self.partner_latency = Histogram(
            "qrgw_partner_call_seconds", "Outbound partner call latency", ["partner", "op"],
            registry=r, buckets=LATENCY_BUCKETS,
        )
        self.partner_outcomes = Counter(
            "qrgw_partner_outcomes", "Adapter outcomes by partner, op and kind", ["partner", "op", "kind"], registry=r
        )
        self.quotes = Counter("qrgw_fx_quotes", "Quotes by event (issued, redeemed, expired)", ["event"], registry=r)
        self.fx_refusals = Counter(
            "qrgw_fx_limit_refusals", "Payments refused by an FX policy rule", ["rule"], registry=r
        )
        self.fx_age = Gauge("qrgw_fx_rate_table_age_seconds", "Age of the FX rate table quoted from", registry=r)
        self.in_flight = Gauge("qrgw_payments_in_flight", "Payments with work left", registry=r)
        self.oldest = Gauge(
            "qrgw_payments_oldest_in_flight_seconds", "Age of the oldest payment with work left", registry=r
        )
        self.recovery_lag = Gauge(
            "qrgw_recovery_lag_seconds", "How long the most overdue payment has waited for recovery", registry=r
        )
        self.key_days = Gauge(
            "qrgw_signing_key_days_left", "Days until a key's not_after", ["owner", "keyid"], registry=r
        )
        self._refreshers: list[Refresher] = []

    # -- counted as it happens ------------------------------------------------------------------
    def observe_call(self, partner: str, op: str, outcome: str) -> None:
        self.partner_calls.labels(partner, op, outcome).inc()

    def observe_payment(self, rec: PaymentRecord) -> None:
        self.payments.labels(str(rec.status), rec.route.kind, rec.route.wallet, rec.route.acquirer).inc()

    def observe_request(self, method: str, route: str, status: int, partner: str, seconds: float) -> None:
        self.requests.labels(method, route, str(status), partner).inc()
        self.latency.labels(method, route).observe(seconds)

    # -- sampled at scrape time -----------------------------------------------------------------
    def add_refresher(self, fn: Refresher) -> None:
        """``fn`` updates gauges from the store or other state before each scrape."""
        self._refreshers.append(fn)

    async def refresh(self) -> None:
        """Run every refresher within a budget; one that fails leaves its gauges as they were."""
        if not self._refreshers:
            return
        tasks = [asyncio.ensure_future(fn()) for fn in self._refreshers]
        done, pending = await asyncio.wait(tasks, timeout=_REFRESH_BUDGET_S)
        for t in pending:
            t.cancel()
        for t in done:
            t.exception()  # retrieved: a store outage is reported by /readyz, not by the scrape

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
