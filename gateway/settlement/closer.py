"""The settlement side of a gateway server (a ``cleanup_ctx``): opens the outbox's ``settlement``
group before anything is delivered (so the outbox keeps every final change until a close took
it), and closes each window once its cut-off passed. Every server runs the loop; the store lease
in ``close_window`` lets one of them do it, and a closed window is never closed twice."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import structlog
from aiohttp import web

from gateway.appkeys import SERVICES, SETTINGS, STORE
from gateway.payments.container import METRICS
from gateway.settlement.metrics import SettlementMetrics
from gateway.settlement.windows import GROUP, CloseConfig, close_window, due_window
from gateway.store.base import Store, in_background
from schemas.errors import QrgwError

log = structlog.get_logger("qrgw.settlement")


async def close_if_due(store: Store, cfg: CloseConfig, owner: str, now: datetime | None = None) -> str | None:
    """Close the window whose cut-off passed last, unless it (or a later one) is closed: the id
    closed by this call, else None."""
    at = now or datetime.now(UTC)
    due = due_window(at, cfg)
    last = await store.last_window()
    if last is not None and str(last["window_id"]) >= due:
        return None
    _window, closed = await close_window(store, due, cfg, owner=owner, due=True, now=at)
    return due if closed else None


async def _loop(store: Store, cfg: CloseConfig, owner: str, interval_s: float) -> None:
    while True:
        # First wait: a server starting (or a test) does not close a window in its first moments.
        await asyncio.sleep(interval_s)
        try:
            await close_if_due(store, cfg, owner)
        except QrgwError as exc:  # another process closing, store down: try again next tick
            log.info("settlement_close_deferred", code=exc.code, detail=str(exc))
        except Exception:  # never let the loop die silently
            log.exception("settlement_close_failed")


async def settlement_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = app[STORE]
    await store.open_event_group(GROUP)
    if METRICS in app:  # gauges sampled from the store at each scrape (shared by every process)
        gauges = SettlementMetrics(app[METRICS].registry)
        app[METRICS].add_refresher(lambda: gauges.refresh(store))
    task: asyncio.Task[None] | None = None
    if settings.settlement.auto_close:
        owner = f"closer-{uuid.uuid4().hex[:12]}"
        task = asyncio.create_task(in_background(_loop(store, CloseConfig.from_settings(settings), owner,
                                                       settings.settlement.check_interval_s)))
        app[SERVICES]["settlement_closer"] = task
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
