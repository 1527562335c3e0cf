"""The national limit registry (ORIS-style) end to end: the HTTP adapter against the sandbox
registry on loopback, behind the policy's RegistryGuard — counted payments reported, another
channel's spending refusing ours, releases on cancel/refund, the registry refusing, timing out
and recovering, under both fallbacks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fx_kit import NID, kr_payer, make_policy, pay_abroad

from adapters.oris import OrisRegistry
from adapters.sandbox.oris import OrisSandbox
from fx.identity import holder_of
from fx.ports import Allowance
from fx.registry import PENDING_FLAG, RegistryGuard
from gateway.store.memory import MemoryStore
from schemas.errors import LimitExceeded, RegistryUnavailable, StoreUnavailable

KIM = kr_payer(national_id_hash=NID)
HOLDER = holder_of(KIM, "kakaopay-kr")


class Registry:
    def __init__(self, sandbox: OrisSandbox, client: OrisRegistry) -> None:
        self.sandbox, self.client = sandbox, client
        self.seen: list[tuple[str, str]] = []

    def guard(self, fallback: Any = "refuse") -> RegistryGuard:
        return RegistryGuard(self.client, fallback, lambda op, outcome: self.seen.append((op, outcome)))

    def used(self, person: str = NID, year: int = 2026) -> int:
        return self.sandbox.used.get((person, year), 0)


@pytest.fixture
async def oris() -> AsyncIterator[Registry]:
    sandbox = OrisSandbox(slow_s=3.0)
    url = await sandbox.start()
    client = OrisRegistry(url, timeout_s=0.3)
    yield Registry(sandbox, client)
    await client.aclose()
    await sandbox.stop()


async def test_each_counted_payment_is_reported_and_released(oris: Registry) -> None:
    store = MemoryStore()
    policy = make_policy(store, oris.guard())
    d = await pay_abroad(policy, "p1", "4000", payer=KIM)
    assert d.reservation is not None and d.reservation["registry"]["reported"] is True
    assert PENDING_FLAG not in d.flags and oris.used() == 400_000
    again = await pay_abroad(policy, "p1", "4000", payer=KIM)  # a repeat of the same payment counts once
    assert again.reservation is not None and oris.used() == 400_000
    await policy.release(d.reservation, fraction=(1, 4))  # a refund of a quarter
    assert oris.used() == 300_000
    await policy.release(d.reservation)  # the cancel of the rest
    assert oris.used() == 0
    assert ("allowance", "ok") in oris.seen and ("report", "ok") in oris.seen


async def test_what_another_channel_spent_refuses_the_payment_before_anything_is_counted(oris: Registry) -> None:
    store = MemoryStore()
    policy = make_policy(store, oris.guard())
    async with httpx.AsyncClient(base_url=oris.sandbox.url) as c:  # USD 98,000 sent through a bank this year
        await c.post("/sandbox/used", json={"person": NID, "year": 2026, "used": 9_800_000})
    with pytest.raises(LimitExceeded) as err:
        await pay_abroad(policy, "p1", "5000", payer=KIM)
    assert err.value.extra["limit"] == "national_annual"
    assert err.value.extra["remaining"] == {"currency": "USD", "value": "200000"}
    assert await store.limit_usage(HOLDER, "KR:annual:2026") == 0 and oris.used() == 9_800_000
    await pay_abroad(policy, "p2", "2000", payer=KIM)  # exactly what remains
    assert oris.used() == 10_000_000


class RacedRegistry:
    """Answers the allowance, then refuses the report: another channel spent in between."""

    async def allowance(self, person: str, year: int) -> Allowance:
        return Allowance(limit=10_000_000, used=0)

    async def report(self, person: str, report_id: str, year: int, amount: int, *, late: bool = False) -> Allowance:
        return Allowance(limit=10_000_000, used=9_900_000, accepted=False)

    async def release(self, person: str, report_id: str, amount: int | None) -> None:
        raise AssertionError("nothing was reported")


async def test_a_report_refused_after_the_check_undoes_the_local_counters() -> None:
    store = MemoryStore()
    policy = make_policy(store, RegistryGuard(RacedRegistry()))
    with pytest.raises(LimitExceeded) as err:
        await pay_abroad(policy, "p1", "5000", payer=KIM)
    assert err.value.extra["limit"] == "national_annual"
    assert await store.limit_usage(HOLDER, "KR:annual:2026") == 0


@pytest.mark.parametrize("mode", ["down", "slow"])
async def test_unreachable_registry_with_fallback_refuse(oris: Registry, mode: str) -> None:
    store = MemoryStore()
    policy = make_policy(store, oris.guard("refuse"))
    oris.sandbox.mode = mode  # 503, or an answer after the client's timeout
    with pytest.raises(RegistryUnavailable) as err:
        await pay_abroad(policy, "p1", "100", payer=KIM)
    assert err.value.status == 503 and err.value.code == "FX_REGISTRY_UNAVAILABLE"
    assert await store.limit_usage(HOLDER, "KR:annual:2026") == 0  # nothing counted
    assert oris.seen == [("allowance", "unavailable_refused")]


async def test_count_locally_then_report_when_the_registry_recovers(oris: Registry) -> None:
    store = MemoryStore()
    guard = oris.guard("count_locally")
    policy = make_policy(store, guard)
    oris.sandbox.mode = "slow"
    d = await pay_abroad(policy, "p1", "3000", payer=KIM)  # times out: counted locally, flagged
    assert PENDING_FLAG in d.flags and d.reservation is not None
    assert d.reservation["registry"]["reported"] is False
    assert await store.limit_usage(HOLDER, "KR:annual:2026") == 300_000
    cancelled = await pay_abroad(policy, "p2", "1000", payer=KIM)  # another, cancelled while the registry is down
    assert cancelled.reservation is not None
    await policy.release(cancelled.reservation)
    assert set(guard.pending) == {"p1"}  # the cancelled one will never be reported
    assert await guard.flush() == 0  # still down: kept
    oris.sandbox.mode = "up"
    d3 = await pay_abroad(policy, "p3", "500", payer=KIM)  # the next call sends what waited, then its own
    assert PENDING_FLAG not in d3.flags and guard.pending == {}
    assert oris.used() == 350_000  # p1 (late) + p3; never p2
    assert ("report_later", "ok") in oris.seen and ("allowance", "unavailable_counted_locally") in oris.seen


async def test_the_flusher_reports_what_waited_without_another_payment(oris: Registry) -> None:
    store = MemoryStore()
    guard = oris.guard("count_locally")
    policy = make_policy(store, guard)
    oris.sandbox.mode = "down"
    d = await pay_abroad(policy, "p1", "3000", payer=KIM)
    assert PENDING_FLAG in d.flags and set(guard.pending) == {"p1"}
    oris.sandbox.mode = "up"
    flusher = guard.start_flusher(0.02)
    try:
        for _ in range(500):  # wait for the condition, bounded; no assertion on how long it took
            if not guard.pending:
                break
            await asyncio.sleep(0.01)
    finally:
        await flusher.aclose()
    assert guard.pending == {} and oris.used() == 300_000


class BlobOutage(MemoryStore):
    async def put_blob(self, key: str, value: bytes, ttl_s: int | None = None) -> None:
        raise StoreUnavailable("store down")


async def test_a_failure_after_reporting_gives_back_both_counters(oris: Registry) -> None:
    store = BlobOutage()
    policy = make_policy(store, oris.guard())
    with pytest.raises(StoreUnavailable):  # the national-id binding cannot be written
        await pay_abroad(policy, "p1", "4000", payer=KIM)
    assert await store.limit_usage(HOLDER, "KR:annual:2026") == 0 and oris.used() == 0
