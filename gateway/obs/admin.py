"""The operator listener (``[admin] host/port``, off unless enabled): a second aiohttp app that
``qrgw serve`` starts beside the partner API, on its own address, for the operator only.

Today it serves ``GET /metrics`` (the gateway's one registry), ``/healthz``, ``/readyz`` and
``POST /admin/reload`` (as SIGHUP); the admin API is added here too (``ROUTES``) — never on the
partner port, where anything unsigned is public.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.live import reload_handler
from gateway.obs.http import hide_server_banner
from gateway.obs.ready import GATEWAY_APP, healthz, readyz
from gateway.payments.container import METRICS
from gateway.settlement import admin as settlement_admin

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def metrics_handler(request: web.Request) -> web.Response:
    """``GET /metrics``: sample the scrape-time gauges, then the Prometheus text exposition."""
    metrics = request.app[GATEWAY_APP][METRICS]
    await metrics.refresh()
    body, content_type = metrics.render()
    resp = web.Response(body=body)
    resp.content_type = content_type.split(";")[0]
    resp.charset = "utf-8"
    return resp


# (method, path, handler): the operator's routes; the admin API and console add theirs (``install``).
ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/metrics", metrics_handler),
    ("GET", "/healthz", healthz),
    ("GET", "/readyz", readyz),
    *settlement_admin.ROUTES,  # windows and reconciliation exceptions (docs/settlement.md)
    ("POST", "/admin/reload", reload_handler),  # as SIGHUP: keys, partners, routing (docs/keys.md)
]


def create_admin_app(gateway: web.Application) -> web.Application:
    """The operator app observing ``gateway`` (started and stopped with it by ``qrgw serve``)."""
    admin = web.Application()
    admin[GATEWAY_APP] = gateway
    admin.on_response_prepare.append(hide_server_banner)
    for method, path, handler in ROUTES:
        admin.router.add_route(method, path, handler)
    from gateway.admin.api import install  # the admin API and the console (gateway/admin/)

    install(admin)
    return admin
