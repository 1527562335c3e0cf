"""The composition root: config -> store -> keys -> adapters -> services -> routes.

``create_app(settings)`` builds the aiohttp application; its ``cleanup_ctx`` owns every
resource with a lifetime (the store's pool, the outbound httpx clients, background workers),
so start-up and graceful shutdown happen in one place. Its metrics are served by the operator
app (``gateway.obs.admin``), never on this, the partner port.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway.api import qr as qr_api
from gateway.api import settlements
from gateway.api.problems import problem_middleware, problem_response, request_id_middleware
from gateway.api.roles import make_roles_middleware
from gateway.appkeys import KEYS, SERVICES, SETTINGS, STORE
from gateway.config import Settings
from gateway.keys import AppNonceStore
from gateway.live import LIVE, Live, LiveRegistry, live_ctx, make_unknown_keyid_middleware
from gateway.livewiring import follow_live_config
from gateway.metrics import Metrics
from gateway.obs import gauges
from gateway.obs.http import hide_server_banner, make_observe_middleware
from gateway.obs.ready import healthz, readyz
from gateway.obs.tracing import TRACING, Tracing
from gateway.payments import wiring as payment_wiring
from gateway.payments.container import METRICS
from gateway.settlement.closer import settlement_ctx
from gateway.signing import UNSIGNED_PATHS, make_jwks_handler, make_signing_middleware
from gateway.store.factory import open_store
from gateway.webhooks.wiring import webhooks_ctx


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = await open_store(app[SETTINGS].store)
    app[STORE] = app[TRACING].wrap_store(store)  # a span per store call when tracing is on
    yield
    await store.aclose()
    app[TRACING].shutdown()  # flush the last spans


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[request_id_middleware, problem_middleware],
        client_max_size=settings.server.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[SERVICES] = {}
    # Keys (and partners, routing) live in one snapshot that SIGHUP, key windows and partner JWKS
    # swap whole (gateway.live). ConfigError naming a bad key, or no signing key: fail at start-up.
    live = app[LIVE] = Live(settings)
    app[KEYS] = LiveRegistry(live)  # for what holds a registry for long (the server's protocol errors)
    # Signing sits inside request_id and outside problem_middleware, so problem answers are signed too.
    signing = make_signing_middleware(
        live.registry, AppNonceStore(app, settings), problem_response, UNSIGNED_PATHS,
        public_base_url=settings.server.public_url, local_hosts=(settings.server.host,),
    )
    app.middlewares.insert(1, signing)
    app.middlewares.insert(1, make_unknown_keyid_middleware(live))  # may fetch a partner's JWKS first
    app.cleanup_ctx.append(live_ctx)
    # Outermost: the request's span, its access line and metrics see every final answer.
    metrics, tracing = Metrics(), Tracing(settings.tracing)
    app[METRICS], app[TRACING] = metrics, tracing
    app.middlewares.insert(0, make_observe_middleware(metrics, tracing))
    app.on_response_prepare.append(hide_server_banner)
    gauges.install(app, metrics)
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(settlement_ctx)  # before any outbox consumer: the settlement group keeps entries
    payment_wiring.install(app)  # metrics, rate limits, payment services + recovery, /v1 routes
    app.cleanup_ctx.append(webhooks_ctx)  # outbox -> signed partner webhooks (after the store)
    follow_live_config(app)  # adapters, routing, webhook signer swap with the keys (SIGHUP etc.)
    settlements.add_routes(app)
    qr_api.add_routes(app)  # POST /v1/qr/decode
    # Innermost: after signature and rate limit; roles follow the live settings (SIGHUP).
    app.middlewares.append(make_roles_middleware(lambda: live.current.settings))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/.well-known/jwks.json", make_jwks_handler(live.registry))
    return app
