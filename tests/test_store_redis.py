"""RedisStore specifics: outages surface as StoreUnavailable, scripts survive a lost cache, one slot per payment."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis import exceptions as rex
from redis.crc import key_slot

from gateway.config import StoreSettings
from gateway.store.base import ClaimStatus, LimitItem
from gateway.store.factory import open_store
from gateway.store.redis import RedisStore, unavailable
from gateway.testing.redis import redis_server
from gateway.testing.settlement import make_payment
from schemas.errors import StoreUnavailable
from schemas.payment import PaymentStatus


async def test_outage_is_store_unavailable_and_nothing_half_written(tmp_path: Path) -> None:
    with redis_server(tmp_path / "r") as server:
        store = await RedisStore.connect(server.url, pool_size=4, timeout_s=1.0)
        rec = make_payment("pay-1", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=5,
                           status=PaymentStatus.PROCESSING)
        await store.create_payment(rec)
        await store.ping()
        server.stop()
        with pytest.raises(StoreUnavailable) as info:
            await store.update_payment(rec.model_copy(update={"status": PaymentStatus.SUCCEEDED}),
                                       expected_version=0, reason="x", events=[{"e": 1}])
        assert isinstance(info.value.__cause__, rex.ConnectionError)
        for call in (store.ping(), store.claim("s", "k", "fp", resource_id="r"), store.get_payment("pay-1"),
                     store.reserve_limits("h", "r", [LimitItem("c", 1, 2, 60)]), store.read_events("g", "c"),
                     store.payments_in_progress(), store.outbox_backlog("g")):
            with pytest.raises(StoreUnavailable):
                await call
        await store.aclose()


async def test_pooled_connections_survive_a_redis_restart(tmp_path: Path) -> None:
    with redis_server(tmp_path / "r", extra=["--appendonly", "yes"]) as server:
        store = await RedisStore.connect(server.url, pool_size=4, timeout_s=1.0)
        try:
            assert (await store.claim("s", "k", "fp", resource_id="a")).status is ClaimStatus.NEW
            server.stop()
            server.start()  # same port, state back from the AOF, script cache empty
            # the dead pooled connection is replaced once, the scripts reloaded: no 503
            assert (await store.claim("s", "k", "fp", resource_id="b")).resource_id == "a"
        finally:
            await store.aclose()


async def test_unreachable_at_start_is_store_unavailable() -> None:
    from gateway.testing.redis import free_port

    for url in (f"redis://127.0.0.1:{free_port()}/0", f"redis+cluster://127.0.0.1:{free_port()}"):
        store = await RedisStore.connect(url, pool_size=2, timeout_s=0.5)
        with pytest.raises(StoreUnavailable):
            await store.claim("s", "k", "fp", resource_id="r")
        await store.aclose()


def test_only_transient_replies_are_unavailable() -> None:
    for reply in ("LOADING Redis is loading", "READONLY You can't write", "CLUSTERDOWN down", "OOM command"):
        with pytest.raises(StoreUnavailable), unavailable("op"):
            raise rex.ResponseError(reply)
    with pytest.raises(rex.ResponseError), unavailable("op"):  # a bug stays a bug, not a 503
        raise rex.ResponseError("ERR wrong number of arguments")


async def test_scripts_reload_after_the_cache_is_flushed(redis_url: str) -> None:
    store = await RedisStore.connect(redis_url, pool_size=4, timeout_s=2.0, prefix="flush:")
    raw = aioredis.Redis.from_url(redis_url)
    try:
        assert (await store.claim("s", "k1", "fp", resource_id="a")).status is ClaimStatus.NEW
        await raw.script_flush()  # as after a restart without the script cache
        assert (await store.claim("s", "k2", "fp", resource_id="b")).status is ClaimStatus.NEW
        assert (await store.claim("s", "k1", "fp", resource_id="c")).resource_id == "a"
    finally:
        await raw.aclose()
        await store.aclose()


async def test_payment_keys_share_one_cluster_slot() -> None:
    store = RedisStore(aioredis.Redis(), pool_size=1, prefix="qrgw:")
    for pid in ("pay-1", "01J9ZK3X7", "x{y}z"):
        shard = store.shard_of(pid)
        slots = {key_slot(k.encode()) for k in (store._pay(pid), store._due(shard), store._outbox(shard),
                                                store._day(shard, "2026-03-02"), store._day(shard, "2026-12-31"))}
        assert len(slots) == 1
    tag = store._limit("payer}x")
    assert key_slot(f"{tag}:res:r1".encode()) == key_slot(f"{tag}:cnt:annual:2026".encode())
    with pytest.raises(ValueError):
        RedisStore(aioredis.Redis(), pool_size=1, prefix="{bad}")


async def test_factory_opens_single_and_cluster(redis_url: str, redis_cluster_url: str) -> None:
    for url in (redis_url, redis_cluster_url):
        store = await open_store(StoreSettings(url=url, pool_size=4, timeout_s=2.0))
        try:
            assert isinstance(store, RedisStore)
            await store.ping()
            assert await store.remember_nonce("factory", url, 5)
        finally:
            await store.aclose()


async def test_a_retried_update_whose_reply_was_lost_succeeds(redis_url: str) -> None:
    """The UPDATE script recognises its own repeat (same new record) instead of answering stale."""
    store = await RedisStore.connect(redis_url, pool_size=2, timeout_s=2.0, prefix="retry:")
    try:
        rec = make_payment("pay-1", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=5,
                           status=PaymentStatus.PROCESSING)
        await store.create_payment(rec)
        new = rec.model_copy(update={"status": PaymentStatus.SUCCEEDED, "version": 1})
        shard = store.shard_of("pay-1")
        pay = store._pay("pay-1")
        keys = [pay, store._due(shard), store._outbox(shard), pay, pay]  # not finishing: claim/lease unused
        args = ["pay-1", 0, "SUCCEEDED", new.model_dump_json(), 0, "0", 0, "", "", 1, '{"id": 1}']
        assert await store._eval("UPDATE_PAYMENT", keys, args) == [0]
        assert await store._eval("UPDATE_PAYMENT", keys, args) == [0]  # the retry: same answer, no effect
        assert await store.outbox_backlog("g") == 1
        other = [*args[:3], new.model_copy(update={"stage": "x"}).model_dump_json(), *args[4:]]
        assert (await store._eval("UPDATE_PAYMENT", keys, other))[0] == 1  # a different writer: stale
    finally:
        await store.aclose()


async def test_a_second_process_joins_an_existing_consumer_group(redis_url: str) -> None:
    # The group's creator and every later worker (a restart, a second gateway) share the outbox.
    first = await RedisStore.connect(redis_url, pool_size=2, timeout_s=2.0, prefix="joins:")
    second = await RedisStore.connect(redis_url, pool_size=2, timeout_s=2.0, prefix="joins:")
    try:
        assert await first.read_events("webhooks", "gw-a") == []
        await second.append_events(3, [{"event_id": "evt-1"}])
        got = await second.read_events("webhooks", "gw-b")
        assert [dict(e.event) for e in got] == [{"event_id": "evt-1"}]
    finally:
        await first.aclose()
        await second.aclose()
