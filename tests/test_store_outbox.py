"""The outbox part of the Store contract (memory, redis, cluster): append, read, ack, reclaim, backlog."""

from __future__ import annotations

import pytest

from gateway.store.base import StaleVersion
from gateway.testing.redis import StoreCase
from gateway.testing.settlement import make_payment
from schemas.payment import PaymentRecord, PaymentStatus

# Redis measures idle time on its own clock, so the margin must outlast a slow, shared test machine
IDLE_MS, IDLE_S = 1000, 1.1


def processing(pid: str) -> PaymentRecord:
    return make_payment(pid, wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=100,
                        status=PaymentStatus.PROCESSING)


async def test_events_travel_with_the_payment_change(store_case: StoreCase) -> None:
    st = store_case.store
    rec = processing("pay-1")
    await st.create_payment(rec, events=[{"event_id": "e0", "type": "payment.created"}])
    await st.update_payment(rec.model_copy(update={"status": PaymentStatus.SUCCEEDED}), expected_version=0,
                            reason="ok", events=[{"event_id": "e1", "type": "payment.succeeded"}])
    with pytest.raises(StaleVersion):  # a lost race appends nothing
        await st.update_payment(rec, expected_version=0, reason="late", events=[{"event_id": "lost"}])
    assert await st.outbox_backlog("hooks") == 2
    got = await st.read_events("hooks", "c1")
    assert [(e.event["event_id"], e.shard, e.deliveries) for e in got] == [
        ("e0", st.shard_of("pay-1"), 1), ("e1", st.shard_of("pay-1"), 1)]
    assert got[0].entry_id != got[1].entry_id
    assert await st.read_events("hooks", "c2") == []  # handed out once per group
    assert await st.outbox_backlog("hooks") == 2  # pending until acknowledged
    await st.ack_events("hooks", got[:1])
    assert await st.outbox_backlog("hooks") == 1
    await st.ack_events("hooks", got)
    await st.ack_events("hooks", got)  # repeat ack is harmless
    assert await st.outbox_backlog("hooks") == 0
    assert await st.read_events("hooks", "c1") == []


async def test_read_counts_across_shards(store_case: StoreCase) -> None:
    st = store_case.store
    for shard in range(st.shards):
        await st.append_events(shard, [{"event_id": f"s{shard}-a"}, {"event_id": f"s{shard}-b"}])
    await st.append_events(st.shards + 1, [{"event_id": "wrapped"}])  # shard taken modulo shards
    total = 2 * st.shards + 1
    assert await st.outbox_backlog("g") == total
    first = await st.read_events("g", "c", count=5)
    assert len(first) == 5
    rest = await st.read_events("g", "c", count=1000)
    ids = [e.event["event_id"] for e in first + rest]
    assert len(ids) == total and len(set(ids)) == total
    assert {e.shard for e in first + rest} == set(range(st.shards))
    assert await st.outbox_backlog("g") == total
    await st.ack_events("g", first + rest)
    assert await st.outbox_backlog("g") == 0


async def test_unacknowledged_entries_are_reclaimed_after_idle(store_case: StoreCase) -> None:
    st = store_case.store
    await st.append_events(3, [{"event_id": "a"}, {"event_id": "b"}])
    got = await st.read_events("g", "crashed")
    assert len(got) == 2
    assert await st.reclaim_events("g", "c2", min_idle_ms=60_000) == []  # not idle long enough
    await st.ack_events("g", got[:1])
    await store_case.advance(IDLE_S)
    again = await st.reclaim_events("g", "c2", min_idle_ms=IDLE_MS)
    assert [(e.entry_id, e.event, e.deliveries) for e in again] == [(got[1].entry_id, {"event_id": "b"}, 2)]
    assert await st.reclaim_events("g", "c3", min_idle_ms=IDLE_MS) == []  # just handed out again
    await store_case.advance(IDLE_S)
    third = await st.reclaim_events("g", "c3", min_idle_ms=IDLE_MS, count=10)
    assert [e.deliveries for e in third] == [3]
    await st.ack_events("g", third)
    await store_case.advance(IDLE_S)
    assert await st.reclaim_events("g", "c4", min_idle_ms=IDLE_MS) == []
    assert await st.outbox_backlog("g") == 0
    assert await st.reclaim_events("never-read", "c", min_idle_ms=0) == []


async def test_reclaim_respects_count(store_case: StoreCase) -> None:
    st = store_case.store
    for shard in (1, 2):
        await st.append_events(shard, [{"event_id": f"{shard}-{i}"} for i in range(3)])
    assert len(await st.read_events("g", "c")) == 6
    await store_case.advance(IDLE_S)
    first = await st.reclaim_events("g", "c2", min_idle_ms=IDLE_MS, count=4)
    second = await st.reclaim_events("g", "c2", min_idle_ms=IDLE_MS, count=4)
    assert len(first) == 4 and len(second) == 2  # the 4 just reclaimed are not idle, the other 2 are
    assert {(e.shard, e.entry_id) for e in first}.isdisjoint((e.shard, e.entry_id) for e in second)
    assert await st.reclaim_events("g", "c2", min_idle_ms=IDLE_MS) == []
    await store_case.advance(IDLE_S)
    assert len(await st.reclaim_events("g", "c2", min_idle_ms=IDLE_MS, count=100)) == 6


async def test_groups_are_independent(store_case: StoreCase) -> None:
    st = store_case.store
    assert await st.read_events("B", "c") == []  # a group exists from its first read
    await st.append_events(0, [{"event_id": "x"}])
    a = await st.read_events("A", "c")
    await st.ack_events("A", a)
    assert await st.outbox_backlog("A") == 0
    assert await st.outbox_backlog("B") == 1  # B has not read it yet: still owed
    b = await st.read_events("B", "c")
    assert [e.event for e in b] == [{"event_id": "x"}]
    await st.ack_events("B", b)
    assert await st.outbox_backlog("B") == 0
    await st.append_events(0, [{"event_id": "y"}])
    assert [e.event for e in await st.read_events("A", "c")] == [{"event_id": "y"}]


async def test_entries_every_group_acknowledged_are_gone(store_case: StoreCase) -> None:
    st = store_case.store
    await st.append_events(0, [{"event_id": "x"}])
    a = await st.read_events("A", "c")
    await st.ack_events("A", a)
    # A was the only group: the entry is deleted, a group created later never sees it
    assert await st.outbox_backlog("late") == 0
    assert await st.read_events("late", "c") == []


async def test_a_blocked_read_wakes_up_for_an_append(store_case: StoreCase) -> None:
    """A reader waiting with ``block_ms`` gets an entry appended while it waits (a bound on
    waiting, not a speed assertion: the read may end by its own deadline and then read)."""
    import asyncio

    st = store_case.store
    assert await st.read_events("g", "c", block_ms=1) == []  # nothing: an empty answer after the wait
    reader = asyncio.create_task(st.read_events("g", "c", count=1, block_ms=60_000))
    await asyncio.sleep(0.05)
    await st.append_events(5, [{"event_id": "late"}, {"event_id": "later"}])
    first = await asyncio.wait_for(reader, 120)
    rest = await st.read_events("g", "c", count=10)
    assert [e.event["event_id"] for e in first + rest] == ["late", "later"]  # count holds; nothing lost
    await st.ack_events("g", first + rest)
    assert await st.outbox_backlog("g") == 0
