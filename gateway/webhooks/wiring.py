"""The webhook worker's lifetime in the app (a ``cleanup_ctx`` appended after the store's)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway.appkeys import SERVICES, SETTINGS, STORE
from gateway.keys import registry_from_settings
from gateway.obs.tracing import TRACING
from gateway.payments.container import METRICS
from gateway.webhooks.worker import WebhookWorker, endpoints_from_settings


async def webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start the delivery worker once the store is open; stop it first at shutdown (what it
    had in flight stays unacknowledged and is reclaimed by the next start)."""
    settings = app[SETTINGS]
    metrics = app.get(METRICS)
    worker = WebhookWorker(
        app[STORE],
        registry_from_settings(settings).signer,
        endpoints_from_settings(settings.partners, sandbox=settings.server.sandbox),
        settings.webhooks,
        registry=metrics.registry if metrics is not None else None,
        tracing=app.get(TRACING),
    )
    app[SERVICES]["webhooks"] = worker
    await worker.start()
    try:
        yield
    finally:
        await worker.stop()
