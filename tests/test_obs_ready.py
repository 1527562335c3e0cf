"""Readiness per component, failing when a payment could not succeed; background loops back off
while the store is down and say so once."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.config import Settings
from gateway.logging import configure_logging, get_logger
from gateway.obs.backoff import Outage
from gateway.payments.recovery import Recovery
from gateway.signing import generate_key, private_pem
from schemas.errors import StoreUnavailable


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


@pytest.fixture
async def rate_source() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A loopback FX source; the test sets the ``as_of`` it publishes."""
    doc: dict[str, Any] = {"as_of": iso(datetime.now(UTC)), "rates": {"USD/KRW": "1385.20", "USD/CNY": "7.10"}}

    async def rates(request: web.Request) -> web.Response:
        return web.json_response(doc)

    app = web.Application()
    app.router.add_get("/rates", rates)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/rates", doc  # type: ignore[union-attr]
    await runner.cleanup()


async def serve(settings: Settings) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]


def settings_for(tmp_path: Path, url: str, *, not_after: datetime | None = None) -> Settings:
    (tmp_path / "gw.pem").write_bytes(private_pem(generate_key("ed25519")))
    key: dict[str, Any] = {"keyid": "qrgw-gw", "alg": "ed25519", "private_key": tmp_path / "gw.pem"}
    if not_after is not None:
        key["not_after"] = not_after
    return Settings(gateway={"keys": [key]},
                    fx={"rates": {"source": "http", "url": url, "max_age_s": 900, "poll_s": 1}})


async def test_stale_fx_rates_make_readyz_503_naming_the_component(
    tmp_path: Path, rate_source: tuple[str, dict[str, Any]]
) -> None:
    url, doc = rate_source
    doc["as_of"] = iso(datetime.now(UTC) - timedelta(hours=2))  # every quote would fail FX_RATE_STALE
    runner, base = await serve(settings_for(tmp_path, url))
    try:
        async with httpx.AsyncClient(base_url=base) as c:
            stale = await c.get("/readyz")
            doc["as_of"] = iso(datetime.now(UTC))  # the source catches up: ready again
            for _ in range(100):  # the source is polled at most once a second without a fresh table
                fresh = await c.get("/readyz")
                if fresh.status_code == 200:
                    break
                await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()
    assert stale.status_code == 503
    body = stale.json()
    assert body["status"] == "unavailable" and body["failing"] == ["fx_rates"]
    assert body["components"]["fx_rates"]["code"] == "FX_RATE_STALE" and body["components"]["store"]["ok"]
    assert fresh.status_code == 200 and fresh.json()["components"]["fx_rates"]["ok"] is True


async def test_no_valid_signing_key_is_not_ready(tmp_path: Path, rate_source: tuple[str, dict[str, Any]]) -> None:
    runner, base = await serve(settings_for(tmp_path, rate_source[0], not_after=datetime.now(UTC) - timedelta(1)))
    try:
        async with httpx.AsyncClient(base_url=base) as c:
            r = await c.get("/readyz")
    finally:
        await runner.cleanup()
    assert r.status_code == 503 and r.json()["failing"] == ["signing_keys"]


def test_outage_backs_off_exponentially_and_says_so_once() -> None:
    logs = io.StringIO()
    configure_logging("INFO", "json", logs)
    outage = Outage(get_logger("t"), "recovery", base_s=0.5, cap_s=4.0, jitter=lambda: 1.0)
    delays = [outage.failed(StoreUnavailable("down")) for _ in range(7)]
    outage.succeeded()
    outage.succeeded()
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    events = [json.loads(x)["event"] for x in logs.getvalue().splitlines()]
    assert events == ["store_unavailable_backing_off", "store_available_again"]
    configure_logging("WARNING", "json")


class DownStore:
    """A store whose every call fails as Redis down does."""

    def __init__(self) -> None:
        self.calls = 0
        self.six = asyncio.Event()

    async def payments_in_progress(self, limit: int = 1000) -> list[str]:
        self.calls += 1
        if self.calls >= 6:
            self.six.set()
        raise StoreUnavailable("connection refused")


class _Orch:
    def __init__(self, store: DownStore) -> None:
        self.store = store


async def test_recovery_logs_one_warning_for_a_whole_outage() -> None:
    logs = io.StringIO()
    configure_logging("INFO", "json", logs)
    store = DownStore()
    recovery = Recovery(_Orch(store), None, interval_s=0.001)  # type: ignore[arg-type]
    recovery.start()
    await store.six.wait()
    await recovery.stop()
    configure_logging("WARNING", "json")
    lines = [json.loads(x) for x in logs.getvalue().splitlines()]
    assert [x["event"] for x in lines] == ["store_unavailable_backing_off"]
    assert lines[0]["loop"] == "recovery"
    assert recovery._outage.failures >= 6  # every sweep failed, each one waited longer than the last
