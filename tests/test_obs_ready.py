"""Readiness per component, failing when a payment could not succeed; background loops back off
while the store is down and say so once."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from jsonlogs import json_logs
from loopback import start
from test_fx_rates import Source, source  # noqa: F401  (the loopback FX source fixture)

from gateway.app import create_app
from gateway.config import Settings
from gateway.logging import get_logger
from gateway.obs.backoff import Outage
from gateway.payments.recovery import Recovery
from gateway.signing import generate_key, private_pem
from schemas.errors import StoreUnavailable


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def stale(src: Source, age: timedelta) -> None:
    """The loopback FX source publishes a table of that age."""
    src.body = {**src.body, "as_of": iso(datetime.now(UTC) - age)}


async def serve(settings: Settings) -> tuple[web.AppRunner, str]:
    return await start(create_app(settings))


def settings_for(tmp_path: Path, url: str, *, not_after: datetime | None = None) -> Settings:
    (tmp_path / "gw.pem").write_bytes(private_pem(generate_key("ed25519")))
    key: dict[str, Any] = {"keyid": "qrgw-gw", "alg": "ed25519", "private_key": tmp_path / "gw.pem"}
    if not_after is not None:
        key["not_after"] = not_after
    return Settings(gateway={"keys": [key]},
                    fx={"rates": {"source": "http", "url": url, "max_age_s": 900, "poll_s": 1}})


async def test_stale_fx_rates_make_readyz_503_naming_the_component(tmp_path: Path, source: Source) -> None:  # noqa: F811
    stale(source, timedelta(hours=2))  # every quote would fail FX_RATE_STALE
    runner, base = await serve(settings_for(tmp_path, source.url))
    try:
        async with httpx.AsyncClient(base_url=base) as c:
            refused = await c.get("/readyz")
            stale(source, timedelta(0))  # the source catches up: ready again
            for _ in range(100):  # the source is polled at most once a second without a fresh table
                fresh = await c.get("/readyz")
                if fresh.status_code == 200:
                    break
                await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()
    assert refused.status_code == 503
    body = refused.json()
    assert body["status"] == "unavailable" and body["failing"] == ["fx_rates"]
    assert body["components"]["fx_rates"]["code"] == "FX_RATE_STALE" and body["components"]["store"]["ok"]
    assert fresh.status_code == 200 and fresh.json()["components"]["fx_rates"]["ok"] is True


async def test_no_valid_signing_key_is_not_ready(tmp_path: Path, source: Source) -> None:  # noqa: F811
    stale(source, timedelta(0))
    runner, base = await serve(settings_for(tmp_path, source.url, not_after=datetime.now(UTC) - timedelta(1)))
    try:
        async with httpx.AsyncClient(base_url=base) as c:
            r = await c.get("/readyz")
    finally:
        await runner.cleanup()
    assert r.status_code == 503 and r.json()["failing"] == ["signing_keys"]


def test_outage_backs_off_exponentially_and_says_so_once() -> None:
    with json_logs() as logs:
        outage = Outage(get_logger("t"), "recovery", base_s=0.5, cap_s=4.0, jitter=lambda: 1.0)
        delays = [outage.failed(StoreUnavailable("down")) for _ in range(7)]
        outage.succeeded()
        outage.succeeded()
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    events = [json.loads(x)["event"] for x in logs.getvalue().splitlines()]
    assert events == ["store_unavailable_backing_off", "store_available_again"]


class DownStore:
    """A store whose every call fails as Redis down does."""

    def __init__(self) -> None:
        self.calls = 0
        self.six = asyncio.Event()

    async def payments_due(self, now: datetime, limit: int = 500) -> tuple[list[str], datetime | None]:
        self.calls += 1
        if self.calls >= 6:
            self.six.set()
        raise StoreUnavailable("connection refused")


class _Orch:
    def __init__(self, store: DownStore) -> None:
        self.store = store


async def test_recovery_logs_one_warning_for_a_whole_outage() -> None:
    store = DownStore()
    with json_logs() as logs:
        recovery = Recovery(_Orch(store), None, interval_s=0.001)  # type: ignore[arg-type]
        recovery.start()
        await store.six.wait()
        await recovery.stop()
    lines = [json.loads(x) for x in logs.getvalue().splitlines()]
    assert [x["event"] for x in lines] == ["store_unavailable_backing_off"]
    assert lines[0]["loop"] == "recovery"
    assert recovery._outage.failures >= 6  # every sweep failed, each one waited longer than the last
