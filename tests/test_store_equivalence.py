"""MemoryStore and RedisStore answer every random sequence of operations identically (Hypothesis)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.store.base import LimitItem, StaleVersion, Store
from gateway.store.memory import MemoryStore
from gateway.store.redis import RedisStore
from gateway.testing.settlement import make_payment
from schemas.errors import ConflictError, InvalidState
from schemas.payment import PaymentStatus

KEYS, FPS, HOLDERS, COUNTERS, QUOTES = ["k1", "k2"], ["fa", "fb"], ["h1", "h2"], ["c1", "c2"], ["q1", "q2"]
PIDS, OWNERS = ["p1", "p2"], ["o1", "o2"]

ops = st.one_of(
    st.tuples(st.just("claim"), st.sampled_from(KEYS), st.sampled_from(FPS), st.sampled_from(["r1", "r2"])),
    st.tuples(st.just("finish"), st.sampled_from(KEYS), st.integers(0, 3)),
    st.tuples(st.just("abandon"), st.sampled_from(KEYS)),
    st.tuples(st.just("reserve"), st.sampled_from(HOLDERS), st.sampled_from(["r1", "r2", "r3"]),
              st.lists(st.tuples(st.sampled_from(COUNTERS), st.integers(0, 60), st.integers(0, 100)),
                       min_size=1, max_size=2, unique_by=lambda t: t[0])),
    st.tuples(st.just("release"), st.sampled_from(HOLDERS), st.sampled_from(["r1", "r2", "r3"]),
              st.none() | st.dictionaries(st.sampled_from([*COUNTERS, "zz"]), st.integers(-5, 70))),
    st.tuples(st.just("usage"), st.sampled_from(HOLDERS), st.sampled_from(COUNTERS)),
    st.tuples(st.just("put_quote"), st.sampled_from(QUOTES), st.sampled_from(["A", "B"]), st.integers(0, 2)),
    st.tuples(st.just("consume"), st.sampled_from(QUOTES), st.sampled_from(["A", "B", None]),
              st.sampled_from(OWNERS)),
    st.tuples(st.just("restore"), st.sampled_from(QUOTES), st.sampled_from(OWNERS)),
    st.tuples(st.just("lease"), st.sampled_from(OWNERS)),
    st.tuples(st.just("unlease"), st.sampled_from(OWNERS)),
    st.tuples(st.just("create"), st.sampled_from(PIDS), st.sampled_from(list(PaymentStatus))),
    st.tuples(st.just("update"), st.sampled_from(PIDS), st.sampled_from(list(PaymentStatus)), st.integers(0, 3)),
    st.tuples(st.just("events"), st.sampled_from(["g1", "g2"]), st.booleans()),
)


async def apply(store: Store, op: tuple[Any, ...]) -> Any:
    """Run one operation; answer a comparable value (exceptions by type)."""
    kind, *a = op
    try:
        if kind == "claim":
            c = await store.claim("s", a[0], a[1], resource_id=a[2])
            return (c.status, c.resource_id, c.answer)
        if kind == "finish":
            return await store.finish_claim("s", a[0], {"n": a[1]})
        if kind == "abandon":
            return await store.abandon_claim("s", a[0])
        if kind == "reserve":
            r = await store.reserve_limits(a[0], a[1], [LimitItem(c, amt, cap, 60) for c, amt, cap in a[2]])
            return (r.ok, r.denied, dict(r.used))
        if kind == "release":
            return await store.release_limits(a[0], a[1], a[2])
        if kind == "usage":
            return await store.limit_usage(a[0], a[1])
        if kind == "put_quote":
            return await store.put_quote(a[0], {"partner_id": a[1], "amount": a[2], "nested": {"x": [1]}}, 60)
        if kind == "consume":
            u = await store.consume_quote(a[0], {} if a[1] is None else {"partner_id": a[1], "amount": "1"}, a[2])
            return (u.status, u.data)
        if kind == "restore":
            return await store.restore_quote(a[0], a[1])
        if kind == "lease":
            return await store.acquire_lease("L", a[0], 60_000)
        if kind == "unlease":
            return await store.release_lease("L", a[0])
        if kind == "create":
            rec = make_payment(a[0], wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=5, status=a[1])
            await store.create_payment(rec, events=[{"id": f"c-{a[0]}"}])
            return None
        if kind == "update":
            cur = await store.get_payment(a[0])
            base = cur or make_payment(a[0], wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=5)
            new = await store.update_payment(base.model_copy(update={"status": a[1]}), expected_version=a[2],
                                             reason="r", events=[{"id": f"u-{a[0]}-{a[2]}"}])
            return (new.status, new.version, len(new.history))
        if kind == "events":
            got = await store.read_events(a[0], "c")
            if a[1]:
                await store.ack_events(a[0], got)
            return ([e.event for e in got], await store.outbox_backlog(a[0]))
    except (StaleVersion, InvalidState, ConflictError, ValueError) as exc:
        return type(exc).__name__
    raise AssertionError(kind)


async def snapshot(store: Store) -> Any:
    pays = [await store.get_payment(p) for p in PIDS]
    return ([None if p is None else (p.status, p.version, len(p.history)) for p in pays],
            await store.payments_in_progress(), await store.payments_of_day("2026-03-02"),
            [await store.limit_usage(h, c) for h in HOLDERS for c in COUNTERS])


async def run_both(url: str, seq: list[tuple[Any, ...]]) -> None:
    mem = MemoryStore()
    red = await RedisStore.connect(url, pool_size=4, timeout_s=5.0, prefix=f"eq{uuid.uuid4().hex[:10]}:")
    try:
        for i, op in enumerate(seq):
            assert await apply(mem, op) == await apply(red, op), f"step {i}: {op}"
        assert await snapshot(mem) == await snapshot(red)
    finally:
        await red.aclose()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seq=st.lists(ops, min_size=1, max_size=25))
def test_memory_and_redis_agree(redis_url: str, seq: list[tuple[Any, ...]]) -> None:
    asyncio.run(run_both(redis_url, seq))
