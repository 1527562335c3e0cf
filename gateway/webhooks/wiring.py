"""The webhook worker's lifetime in the app (a ``cleanup_ctx`` appended after the store's)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from aiohttp import web

from adapters.endpoint import PartnerEndpoint
from adapters.http import check_url
from gateway.appkeys import SERVICES, SETTINGS, STORE
from gateway.config import PartnerSettings
from gateway.keys import registry_from_settings
from gateway.obs.tracing import TRACING
from gateway.payments.container import METRICS
from gateway.webhooks.worker import WebhookWorker


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


def endpoints_from_settings(partners: Sequence[PartnerSettings], *, sandbox: bool) -> dict[str, PartnerEndpoint]:
    """partner id -> its endpoint (``webhook_url`` and TLS policy) from ``Settings.partners``;
    ConfigError for a plain-http ``webhook_url`` outside sandbox mode (the rest of a partner's
    endpoint is the payment wiring's and ``qrgw serve``'s to refuse)."""
    out: dict[str, PartnerEndpoint] = {}
    for p in partners:
        ep = PartnerEndpoint.from_settings(p.model_dump(), sandbox=sandbox, with_secret=False)
        if ep.webhook_url is not None:
            check_url(ep, ep.webhook_url, "webhook_url")
        out[p.id] = ep
    return out
