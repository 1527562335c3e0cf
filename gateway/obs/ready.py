"""Readiness: each component a payment needs, checked for real — the store answers, the FX rates
are fresh enough to quote from, a gateway signing key is valid now. ``/readyz`` is 503 naming the
failing component(s) whenever a payment could not succeed, so a load balancer stops sending
traffic that would only fail (``FX_RATE_STALE``, ``STORE_UNAVAILABLE``, unsigned answers)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gateway.appkeys import SERVICES, SETTINGS, STORE
from gateway.config import Settings
from schemas.errors import QrgwError

Component = dict[str, Any]
# The operator app names the gateway app it observes (gateway.obs.admin).
GATEWAY_APP = web.AppKey("gateway_app", web.Application)


def rates_age(rates: Any) -> float | None:
    """Seconds since the table being quoted from was current; 0 for a static table, None when none."""
    if rates is None or not hasattr(rates, "age_s"):
        return 0.0
    age: float | None = rates.age_s
    return age


async def _store(app: web.Application) -> Component:
    try:
        await app[STORE].ping()
    except QrgwError as exc:
        return {"ok": False, "code": exc.code, "detail": exc.detail}
    return {"ok": True}


async def _fx(app: web.Application) -> Component:
    rates, max_age = app[SERVICES].get("rates"), app[SETTINGS].fx.rates.max_age_s
    age = rates_age(rates)
    if (age is None or age > max_age) and rates is not None and hasattr(rates, "refresh"):
        try:
            await rates.refresh()  # polls at most once a second without a table: cheap to retry here
        except Exception as exc:  # a source fault is the answer, not a crash of the probe
            return {"ok": False, "code": "FX_RATE_STALE", "detail": f"refresh failed: {type(exc).__name__}"}
        age = rates_age(rates)
    if age is None:
        return {"ok": False, "code": "FX_RATE_STALE", "detail": "no rate table"}
    if age > max_age:
        return {"ok": False, "code": "FX_RATE_STALE", "detail": f"table is {int(age)} s old, max {max_age} s"}
    return {"ok": True, "age_s": round(age, 1)}


def valid_signing_keys(settings: Settings, now: datetime) -> list[str]:
    return [
        k.keyid for k in settings.gateway.keys
        if (k.not_before is None or k.not_before <= now) and (k.not_after is None or now < k.not_after)
    ]


def _keys(app: web.Application) -> Component:
    from gateway.live import LIVE  # the keys as last reloaded (SIGHUP), not as at start-up

    settings = app[LIVE].current.settings if LIVE in app else app[SETTINGS]
    valid = valid_signing_keys(settings, datetime.now(UTC))
    if not valid:
        return {"ok": False, "detail": "no gateway signing key is within its validity window"}
    return {"ok": True, "keyids": valid}


async def readiness(app: web.Application) -> tuple[bool, dict[str, Component]]:
    components = {"store": await _store(app), "fx_rates": await _fx(app), "signing_keys": _keys(app)}
    return all(c["ok"] for c in components.values()), components


async def readyz(request: web.Request) -> web.Response:
    """``GET /readyz``: 200 ready, or 503 with every component's state."""
    app = request.app.get(GATEWAY_APP) or request.app
    ok, components = await readiness(app)
    failing = sorted(name for name, c in components.items() if not c["ok"])
    body: dict[str, Any] = {"status": "ready" if ok else "unavailable", "components": components}
    if failing:
        body["failing"] = failing
    return web.json_response(body, status=200 if ok else 503)


async def healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: the process answers (liveness; says nothing about dependencies)."""
    return web.json_response({"status": "ok"})
