"""Gauges sampled when ``/metrics`` is scraped: payments in flight and the oldest one's age,
recovery lag, FX table age and the days left on every signing key."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiohttp import web

from gateway.appkeys import SERVICES, SETTINGS, STORE
from gateway.metrics import Metrics
from gateway.obs.ready import rates_age

IN_FLIGHT_SCAN = 1000  # payments looked at per scrape; past it the gauges say "at least"


async def _payments(app: web.Application, metrics: Metrics) -> None:
    store = app[STORE]
    ids = await store.payments_in_progress(IN_FLIGHT_SCAN)
    recs = await asyncio.gather(*(store.get_payment(i) for i in ids))
    now = datetime.now(UTC)
    oldest = lag = 0.0
    for rec in recs:
        if rec is None:
            continue
        oldest = max(oldest, (now - rec.created_at).total_seconds())
        # due since its retry time, or since its last write when it is due right away
        due = rec.next_attempt_at or rec.updated_at
        lag = max(lag, (now - due).total_seconds())
    metrics.in_flight.set(len(ids))
    metrics.oldest.set(oldest)
    metrics.recovery_lag.set(lag)


def _keys(app: web.Application, metrics: Metrics) -> None:
    settings, now = app[SETTINGS], datetime.now(UTC)
    owned = [("qrgw", k.keyid, k.not_after) for k in settings.gateway.keys]
    owned += [(p.id, k.keyid, k.not_after) for p in settings.partners for k in p.keys]
    for owner, keyid, not_after in owned:
        if not_after is not None:
            metrics.key_days.labels(owner, keyid).set(round((not_after - now).total_seconds() / 86400, 3))


def install(app: web.Application, metrics: Metrics) -> None:
    """Register the scrape-time refreshers of ``app`` (its store and services once started)."""

    async def refresh() -> None:
        _keys(app, metrics)
        age = rates_age(app[SERVICES].get("rates"))
        if age is not None:
            metrics.fx_age.set(age)
        if STORE in app:
            await _payments(app, metrics)

    metrics.add_refresher(refresh)
