"""Routing inside the app: one ``RoutingTable`` per app (shared by decode, quotes and payments), its
paused-flag refresh task, the breaker fed by the payment core's call observer, and their gauges."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator

from aiohttp import web
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.appkeys import SERVICES, SETTINGS, STORE
from gateway.breaker import CircuitBreaker
from gateway.partner_status import StaticStatus, StoreStatus, stop
from gateway.payments.container import METRICS
from gateway.routing import RoutingTable
from gateway.store.base import in_background
from schemas.errors import QrgwError

CallObserver = Callable[[str, str, str], None]


class RoutingCollector(Collector):
    """``qrgw_partner_circuit_state{partner}`` (0 closed, 1 half-open, 2 open) and
    ``qrgw_partner_paused{partner}``, read at scrape time: the time-driven open -> half-open change
    shows without a call."""

    def __init__(self, table: RoutingTable) -> None:
        self.table = table

    def collect(self) -> Iterator[GaugeMetricFamily]:
        circuit = GaugeMetricFamily(
            "qrgw_partner_circuit_state", "Circuit of each partner: 0 closed, 1 half-open, 2 open", labels=["partner"]
        )
        paused = GaugeMetricFamily("qrgw_partner_paused", "1 when routing skips the partner", labels=["partner"])
        for pid in sorted({*self.table.partners, *self.table.breaker.partners()}):
            circuit.add_metric([pid], float(self.table.breaker.state(pid)))
            paused.add_metric([pid], 1.0 if self.table.status.paused(pid) else 0.0)
        yield circuit
        yield paused


def routing_table(app: web.Application) -> RoutingTable:
    """The app's routing table (``app[SERVICES]["routing"]``), built on first use: tests may put
    their own there before the app starts. ``app[SERVICES]["monotonic"]`` is the breaker's clock."""
    services = app[SERVICES]
    table = services.get("routing")
    if isinstance(table, RoutingTable):
        return table
    settings = app[SETTINGS]
    config_paused = [p.id for p in settings.partners if p.paused]
    store = app.get(STORE)
    status = (StoreStatus(store, [p.id for p in settings.partners], config_paused) if store is not None
              else StaticStatus(config_paused))
    breaker = CircuitBreaker(settings.routing_policy.breaker, clock=services.get("monotonic", time.monotonic))
    table = services["routing"] = RoutingTable.from_settings(settings, status, breaker)
    metrics = app.get(METRICS)
    if metrics is not None:
        metrics.registry.register(RoutingCollector(table))
    return table


def call_observer(app: web.Application, then: CallObserver) -> CallObserver:
    """The payment core's call observer: feeds the breaker, then ``then`` (the metrics)."""
    breaker = routing_table(app).breaker

    def observe(partner: str, op: str, kind: str) -> None:
        breaker.observe(partner, op, kind)
        then(partner, op, kind)

    return observe


async def routing_ctx(app: web.Application) -> AsyncIterator[None]:
    """Read the paused flags once before serving, then keep them fresh until shutdown."""
    table = routing_table(app)
    task: asyncio.Task[None] | None = None
    if isinstance(table.status, StoreStatus):
        with contextlib.suppress(QrgwError):  # a store outage must not stop start-up; run() retries and logs
            await table.status.refresh()
        task = asyncio.create_task(in_background(table.status.run(app[SETTINGS].routing_policy.status_refresh_s)))
    yield
    if task is not None:
        await stop(task)
