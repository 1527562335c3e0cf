"""Payment wiring of the composition root: adapters → pricing → resolver → services → routes,
and the recovery task's lifetime (``cleanup_ctx``).

Tests inject fakes by putting ``partners`` / ``pricing`` / ``resolver`` / ``policy`` /
``clock`` into ``app[SERVICES]`` before the app starts; anything absent is built from the
settings.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from aiohttp import web

from gateway.api import limits, openapi, payments, quotes
from gateway.api.edge import make_rate_limit_middleware
from gateway.appkeys import SERVICES, SETTINGS, STORE
from gateway.config import Settings
from gateway.payments.container import METRICS, PAYMENTS, PaymentServices
from gateway.payments.orchestrator import Orchestrator
from gateway.payments.ports import Partners, Pricing, QrResolver
from gateway.payments.recovery import Recovery
from gateway.payments.service import ReversalService
from gateway.payments.state import RetryPolicy
from gateway.payments.steps import new_id
from gateway.routing_app import call_observer, routing_table
from gateway.signing import KeyRegistry
from schemas.errors import ConfigError

log = structlog.get_logger("gateway.payments")


def _build_partners(
    app: web.Application, closers: list[Any], settings: Settings | None = None, registry: KeyRegistry | None = None
) -> Partners:
    """Adapters of every configured partner (``gateway.livewiring`` passes a new snapshot)."""
    from adapters.endpoint import PartnerEndpoint
    from adapters.factory import build_adapters
    from adapters.http import OutboundHttp
    from gateway.keys import registry_from_settings
    from gateway.live import LIVE
    from gateway.obs.http import PartnerCallObserver
    from gateway.obs.tracing import TRACING

    settings = settings or app[SETTINGS]
    registry = registry or (app[LIVE].registry() if LIVE in app else registry_from_settings(settings))
    http = OutboundHttp(observer=PartnerCallObserver(app[METRICS], app[TRACING]))
    closers.append(http)
    out = Partners()
    for p in settings.partners:
        try:
            ep = PartnerEndpoint.from_settings(p.model_dump(), sandbox=settings.server.sandbox)
            wallet, acquirer = build_adapters(ep, registry, http)
        except ConfigError as exc:
            # `qrgw serve` refuses such a config before starting (check_startup); an app built
            # directly (tests of other areas) keeps running without this partner's adapters.
            log.error("partner_adapters_unavailable", partner=p.id, detail=exc.detail)
            continue
        if wallet is not None:
            out.wallets[p.id] = wallet
        if acquirer is not None:
            out.acquirers[p.id] = acquirer
    return out


def _build_pricing(app: web.Application, closers: list[Any]) -> Pricing:
    from functools import partial

    from gateway.obs.fxmetrics import MeteredFxBridge
    from gateway.payments.fxbridge import build_fx_bridge

    bridge = build_fx_bridge(app[SETTINGS], app[STORE], app[METRICS].registry, closers,
                             cls=partial(MeteredFxBridge, metrics=app[METRICS]))
    app[SERVICES]["rates"] = bridge.quotes.rates  # readiness and the FX age gauge look at it
    return bridge


def _build_resolver(app: web.Application) -> QrResolver:
    from gateway.payments.qrbridge import RoutingResolver

    return RoutingResolver(app[SETTINGS], routing_table(app))


async def payments_ctx(app: web.Application) -> AsyncIterator[None]:
    """Build the payment services once the store is open; start recovery; stop it cleanly."""
    settings, store, given = app[SETTINGS], app[STORE], app[SERVICES]
    closers: list[Any] = []
    partners: Partners = given.get("partners") or _build_partners(app, closers)
    pricing: Pricing = given.get("pricing") or _build_pricing(app, closers)
    resolver: QrResolver = given.get("resolver") or _build_resolver(app)
    ps = settings.payments
    policy: RetryPolicy = given.get("policy") or RetryPolicy(
        call_attempts=ps.call_attempts,
        backoff_base_s=ps.backoff_base_s,
        backoff_cap_s=ps.backoff_cap_s,
        inquiry_intervals_s=tuple(ps.inquiry_intervals_s),
        retry_cap_s=ps.retry_cap_s,
        lease_s=ps.lease_s,
    )
    metrics = app[METRICS]
    observe_call = call_observer(app, metrics.observe_call)  # feeds the routing circuit breaker too
    clock_kw: dict[str, Any] = {"clock": given["clock"]} if "clock" in given else {}
    owner = new_id("gw")
    orch = Orchestrator(
        store,
        partners,
        resolver,
        pricing,
        zone=settings.business_day.zone,
        policy=policy,
        owner=owner,
        observe_call=observe_call,
        observe_status=metrics.observe_payment,
        claim_wait_s=settings.server.request_timeout_s / 2,
        inline_budget_s=settings.server.request_timeout_s / 3,  # then 202 and the recovery task goes on
        **clock_kw,
    )
    rev = ReversalService(
        store,
        partners,
        pricing,
        zone=settings.business_day.zone,
        cancel_cutoff=settings.business_day.cancel_cutoff,
        policy=policy,
        owner=owner,
        observe_call=observe_call,
        **clock_kw,
    )
    recovery = Recovery(
        orch, rev, interval_s=float(given.get("recovery_interval_s", ps.recovery_interval_s)), **clock_kw
    )
    orch.on_due = recovery.wake
    app[PAYMENTS] = PaymentServices(orch, rev, recovery, resolver, pricing)
    recovery.start()
    try:
        yield
    finally:
        await recovery.stop()  # finishes the step in flight: nothing left half-done
        for c in closers:
            with contextlib.suppress(Exception):
                await c.aclose()


def install(app: web.Application) -> None:
    """Routes and rate limiting; called by ``create_app`` after the store context (metrics are
    the app's, ``app[METRICS]``, served by the operator listener)."""
    app.middlewares.append(make_rate_limit_middleware(app[SETTINGS]))  # inside: partner_id is known
    app.cleanup_ctx.append(payments_ctx)
    payments.add_routes(app)
    quotes.add_routes(app)
    limits.add_routes(app)
    openapi.add_routes(app)
