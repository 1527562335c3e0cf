"""What follows the live config (``gateway.live``): on every swap, new partner adapters (new
URLs, timeouts, keys, the current signer), the routing table's entries, partners and policy, and
the webhook worker's signer and endpoints take over in the same step as the new key registry
(roles are read from the live settings by their middleware). Circuit-breaker state and settings,
paused flags, rate limits and everything outside keys/partners/routing keep their start-up
values until a restart. A payment step in flight keeps
the adapter it already holds; the old adapters' connection pools are closed once such steps have
had time to finish.

Adapters or a resolver that a test injected (``app[SERVICES]``) are left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gateway.appkeys import SERVICES
from gateway.live import LIVE, Snapshot
from gateway.payments.container import PAYMENTS
from gateway.routing import RoutingTable
from gateway.routing_app import routing_table
from gateway.webhooks.wiring import endpoints_from_settings
from gateway.webhooks.worker import WebhookWorker

_tasks: set[asyncio.Task[None]] = set()


async def _close_later(closers: list[Any], delay_s: float) -> None:
    await asyncio.sleep(delay_s)
    for c in closers:
        with contextlib.suppress(Exception):
            await c.aclose()


def follow_live_config(app: web.Application) -> None:
    if LIVE not in app:
        return
    closers: list[Any] = []  # of the adapters currently in use (the first set is payments_ctx's own)

    def prepare(snap: Snapshot) -> Callable[[], None]:
        from gateway.payments.wiring import _build_partners

        services = app.get(PAYMENTS)
        given = app[SERVICES]
        if services is None:  # not started yet: payments_ctx builds from the current snapshot
            return lambda: None
        new_closers: list[Any] = []
        partners = None if "partners" in given else _build_partners(app, new_closers, snap.settings, snap.registry)
        table = routing_table(app)  # shared by decode, quotes, payments and the metrics collector
        fresh = RoutingTable.from_settings(snap.settings, table.status, table.breaker)

        def commit() -> None:
            if partners is not None:
                live = services.orchestrator.partners  # the one Partners object every service holds
                live.wallets, live.acquirers = partners.wallets, partners.acquirers
                old = closers[:]
                closers[:] = new_closers
                grace = 2 * snap.settings.server.request_timeout_s
                task = asyncio.get_running_loop().create_task(_close_later(old, grace))
                _tasks.add(task)
                task.add_done_callback(_tasks.discard)
            # Updated in place (breaker state and paused flags carry over), so every holder sees it.
            table.entries, table.partners, table.policy = fresh.entries, fresh.partners, fresh.policy
            worker = given.get("webhooks")
            if isinstance(worker, WebhookWorker):
                worker.signer = snap.registry.signer
                worker.endpoints = dict(endpoints_from_settings(snap.settings.partners,
                                                             sandbox=snap.settings.server.sandbox))

        return commit

    async def close_current(_app: web.Application) -> None:
        await _close_later(closers, 0)

    app[LIVE].on_change(prepare)
    app.on_cleanup.append(close_current)
