"""Rate providers: static table lookups, and HttpRates against a real loopback JSON endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import respx
from aiohttp import web

from fx.rates import HttpRates, StaticRates, build_rates, load_table_file
from fx.settings import FXSettings, RateSourceSettings
from gateway.config import load_settings
from gateway.store.memory import MemoryStore
from schemas.errors import ConfigError, FXError, RateStale


def close(x: Decimal, expected: str) -> bool:
    """Equal to 30 significant digits (the inverse and the cross are not finite decimals)."""
    return abs(x - Decimal(expected)) <= abs(Decimal(expected)) * Decimal("1e-30")


async def test_static_direct_inverse_and_cross_through_pivot() -> None:
    r = StaticRates.from_strings({"USD/KRW": "1385.20", "USD/CNY": "7.1850", "CNY/KRW": "192.85"})
    assert await r.mid_rate("USD", "KRW") == Decimal("1385.20")
    assert await r.mid_rate("KRW", "KRW") == 1
    assert await r.mid_rate("CNY", "KRW") == Decimal("192.85")  # direct pair beats the cross
    assert close((await r.mid_rate("KRW", "USD")) * Decimal("1385.20"), "1")
    cross = StaticRates.from_strings({"USD/KRW": "1385.20", "USD/CNY": "7.1850"})
    assert close(await cross.mid_rate("CNY", "KRW"), "192.790535838552540013917884481558803")  # 1385.20 / 7.1850
    with pytest.raises(FXError, match="EUR/KRW"):
        await cross.mid_rate("EUR", "KRW")


def test_tables_refuse_floats_and_unknown_pairs(tmp_path: Path) -> None:
    for bad in ({"USD/KRW": 1385.2}, {"USD/ZZZ": "1"}, {"USDKRW": "1"}, {"USD/KRW": "-1"}, {"USD/USD": "1"}):
        with pytest.raises(ValueError):
            StaticRates.from_strings(bad)  # type: ignore[arg-type]
    f = tmp_path / "rates.toml"
    f.write_text('[rates]\n"USD/KRW" = 1385.2\n')
    with pytest.raises(ConfigError, match=r"rates\.toml.*decimal string"):
        load_table_file(f)


async def test_shipped_config_builds_the_static_table() -> None:
    rates = build_rates(load_settings().fx, MemoryStore())
    assert await rates.mid_rate("USD", "KRW") == Decimal("1385.20")
    assert await rates.mid_rate("KWD", "BHD") > 0


# --- HTTP source over a real loopback server --------------------------------------------------------
@dataclass
class Source:
    status: int = 200
    body: Any = field(default_factory=lambda: {"rates": {"USD/KRW": "1385.20", "USD/CNY": "7.1850"}})
    hits: int = 0
    url: str = ""


@pytest_asyncio.fixture
async def source() -> AsyncIterator[Source]:
    src = Source()

    async def handler(_: web.Request) -> web.Response:
        src.hits += 1
        if src.status != 200:
            return web.Response(status=src.status, text="down")
        return web.json_response(src.body)

    app = web.Application()
    app.router.add_get("/mid.json", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    src.url = f"http://127.0.0.1:{port}/mid.json"
    yield src
    await runner.cleanup()


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


async def test_http_rates_poll_cache_and_refuse_stale(source: Source) -> None:
    cache, clock = MemoryStore(), Clock()
    rates = HttpRates(source.url, cache, max_age_s=300, poll_s=60, clock=clock)
    try:
        assert await rates.mid_rate("USD", "KRW") == Decimal("1385.20")
        assert close(await rates.mid_rate("KRW", "CNY"), "0.00518697660987583020502454519203003")  # 7.1850 / 1385.20
        assert source.hits == 1  # within poll_s: no new request
        assert await cache.get_blob(rates.key) is not None

        source.status = 503  # the source goes down: the last good table serves until max age
        clock.t += 200
        assert await rates.mid_rate("USD", "KRW") == Decimal("1385.20")
        clock.t += 101
        with pytest.raises(RateStale) as err:
            await rates.mid_rate("USD", "KRW")
        assert err.value.code == "FX_RATE_STALE" and err.value.status == 503

        source.status, source.body = 200, {"rates": {"USD/KRW": "1390.00"}}  # back: fresh again
        clock.t += 61
        assert await rates.mid_rate("USD", "KRW") == Decimal("1390.00")
    finally:
        await rates.aclose()


async def test_a_second_process_reads_the_shared_cache(source: Source) -> None:
    cache, clock = MemoryStore(), Clock()
    first = HttpRates(source.url, cache, max_age_s=300, poll_s=60, clock=clock)
    second = HttpRates(source.url, cache, max_age_s=300, poll_s=60, clock=clock)
    try:
        await first.mid_rate("USD", "KRW")
        source.status = 500
        assert await second.mid_rate("USD", "CNY") == Decimal("7.1850")  # from the store, not the source
        assert source.hits == 1
    finally:
        await first.aclose()
        await second.aclose()


async def test_an_old_as_of_or_a_bad_body_is_refused(source: Source) -> None:
    clock = Clock()
    source.body = {"as_of": "2020-01-01T00:00:00Z", "rates": {"USD/KRW": "1385.20"}}
    rates = HttpRates(source.url, MemoryStore(), max_age_s=300, poll_s=60, clock=clock)
    try:
        with pytest.raises(RateStale):
            await rates.mid_rate("USD", "KRW")
        source.body = {"rates": {"USD/KRW": 1385.2}}  # a float: refused, nothing to quote from
        clock.t += 61
        with pytest.raises(RateStale):
            await rates.mid_rate("USD", "KRW")
    finally:
        await rates.aclose()


async def test_connection_fault_without_any_table_is_stale() -> None:
    url = "http://rates.invalid/mid.json"
    with respx.mock:
        respx.get(url).mock(side_effect=httpx.ConnectError("refused"))
        rates = HttpRates(url, MemoryStore(), max_age_s=300, poll_s=60)
        try:
            with pytest.raises(RateStale, match="no table"):
                await rates.mid_rate("USD", "KRW")
        finally:
            await rates.aclose()


def test_http_source_needs_a_url() -> None:
    with pytest.raises(ValueError, match="url"):
        FXSettings(rates=RateSourceSettings(source="http"))
    s = FXSettings(rates=RateSourceSettings(source="http", url="https://rates.example/mid.json"))
    assert isinstance(build_rates(s, MemoryStore()), HttpRates)
