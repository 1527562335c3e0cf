"""Webhook delivery: real loopback receivers that fail, time out, drop and recover; restarts;
the retry horizon; the event shape. Signatures checked by the receivers with verify_request.
The fail/timeout/recover and the restart-mid-backlog tests run on MemoryStore and RedisStore."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from gateway.config import WebhookSettings
from gateway.events import event_id, payment_event, wire_body
from gateway.signing import KeyRegistry, Signer
from gateway.store.base import Store
from gateway.store.memory import MemoryStore
from gateway.testing.redis import open_case
from gateway.testing.settlement import add_refund, make_payment
from gateway.testing.signing import entry_for, make_signer
from gateway.testing.webhooks import WebhookReceiver, webhook_endpoints
from gateway.webhooks import WebhookWorker, dead_letters

FAST = WebhookSettings(horizon_s=60.0, base_delay_s=0.02, max_delay_s=0.1, concurrency=4, timeout_s=1.0)


@pytest_asyncio.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """MemoryStore on the real monotonic clock (redelivery waits on the store's clock), then
    RedisStore on the session's redis-server under a fresh key prefix."""
    if request.param == "memory":
        yield MemoryStore()
        return
    async with open_case(request.param, request) as case:
        yield case.store


@pytest.fixture
def gw() -> Signer:
    return make_signer("ed25519", "qrgw-gw-1")


@pytest.fixture
def partner_registry(gw: Signer) -> KeyRegistry:
    """What a partner knows: the gateway's public key."""
    return KeyRegistry([], [entry_for(gw, "qrgw")])


def events(n: int, start: int = 0) -> list[dict[str, Any]]:
    out = []
    for i in range(start, start + n):
        rec = make_payment(f"pay{i:03d}", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=1000 + i)
        out.append(payment_event(rec, "payment.succeeded"))
    return out


async def drained(store: Store) -> bool:
    return await store.outbox_backlog("webhooks") == 0


async def until(cond: Callable[[], Any], what: str, limit_s: float = 15.0) -> None:
    """Wait for ``cond`` (a bound on waiting, not a speed assertion)."""
    for _ in range(int(limit_s / 0.02)):
        got = cond()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def worker(store: Store, gw: Signer, urls: dict[str, str | None], s: WebhookSettings = FAST,
           **kw: Any) -> WebhookWorker:
    """A worker whose housekeeping runs often and reclaims what a stopped worker left after 0.3 s."""
    return WebhookWorker(store, gw, webhook_endpoints(urls), s, housekeeping_s=0.05, reclaim_idle_s=0.3,
                         registry=kw.pop("registry", CollectorRegistry()), **kw)


async def test_failing_then_recovering_receiver_gets_every_event_signed(
    store: Store, gw: Signer, partner_registry: KeyRegistry
) -> None:
    evs = events(12)
    await store.append_events(0, evs)
    registry = CollectorRegistry()
    script: list[int | str] = [500, "hang", "drop", 503, 500, "hang", 502]
    async with WebhookReceiver(partner_registry, script, hang_s=5) as kakao, \
            WebhookReceiver(partner_registry) as alipay:
        w = worker(store, gw, {"kakaopay-kr": kakao.url, "alipay-cn": alipay.url}, registry=registry)
        await w.start()
        try:
            await until(lambda: kakao.event_ids == {e["event_id"] for e in evs}, "kakao to get every event")
            await until(lambda: drained(store), "every entry acknowledged")
            assert await w.refresh_backlog(force=True) == 0
        finally:
            await w.stop()
    ids = {e["event_id"] for e in evs}
    assert kakao.bad == [] and alipay.bad == []
    assert alipay.event_ids == ids
    # Per-recipient tracking: the healthy partner got each event exactly once.
    assert sorted(e["event_id"] for e in alipay.events) == sorted(ids)
    assert kakao.requests >= len(evs) + len(script)
    assert registry.get_sample_value("qrgw_webhook_backlog") == 0
    assert registry.get_sample_value("qrgw_webhook_deliveries_total", {"partner": "kakaopay-kr",
                                                                       "outcome": "error"}) == len(script)
    assert "recipients" not in kakao.events[0] and kakao.events[0]["type"] == "payment.succeeded"


async def test_restart_mid_backlog_loses_and_invents_nothing(
    store: Store, gw: Signer, partner_registry: KeyRegistry
) -> None:
    first = events(8)
    await store.append_events(0, first)
    # Every first request hangs: the first worker is stopped with entries handed out, unacknowledged.
    async with WebhookReceiver(partner_registry, ["hang"] * 4, hang_s=5) as kakao, \
            WebhookReceiver(partner_registry) as alipay:
        urls: dict[str, str | None] = {"kakaopay-kr": kakao.url, "alipay-cn": alipay.url}
        w1 = worker(store, gw, urls, WebhookSettings(horizon_s=60, base_delay_s=0.02, max_delay_s=0.1,
                                                      concurrency=4, timeout_s=3.0), consumer="gw-a")
        await w1.start()
        await until(lambda: kakao.requests >= 4, "the first worker to be mid-delivery")
        await w1.stop()
        assert await store.outbox_backlog("webhooks") > 0
        late = events(5, start=100)
        await store.append_events(0, late)  # events written while no worker runs
        w2 = worker(store, gw, urls, consumer="gw-b")
        await w2.start()
        try:
            await until(lambda: drained(store), "the second worker to drain")
        finally:
            await w2.stop()
    ids = {e["event_id"] for e in first + late}
    assert kakao.event_ids == ids and alipay.event_ids == ids  # nothing lost, nothing invented
    assert kakao.bad == [] and alipay.bad == []
    assert await store.outbox_backlog("webhooks") == 0


async def test_horizon_dead_letters_and_healthy_partner_unaffected(
    gw: Signer, partner_registry: KeyRegistry
) -> None:
    store = MemoryStore()
    evs = events(3)
    await store.append_events(0, evs)
    s = WebhookSettings(horizon_s=0.3, base_delay_s=0.02, max_delay_s=0.05, concurrency=4, timeout_s=0.5)
    registry = CollectorRegistry()
    async with WebhookReceiver(partner_registry, [500] * 10_000) as kakao, \
            WebhookReceiver(partner_registry) as alipay:
        w = worker(store, gw, {"kakaopay-kr": kakao.url, "alipay-cn": alipay.url}, s, registry=registry)
        await w.start()
        try:
            await until(lambda: drained(store), "the events to be given up")
        finally:
            await w.stop()
    dead = await dead_letters(store)
    assert sorted(d["event"]["event_id"] for d in dead) == sorted(e["event_id"] for e in evs)
    for d in dead:
        assert d["reason"] == "retry horizon passed"
        assert d["delivered"] == ["alipay-cn"] and d["last_error"] == {"kakaopay-kr": "HTTP 500"}
        assert d["attempts"] >= 2
    assert sorted(e["event_id"] for e in alipay.events) == sorted(e["event_id"] for e in evs)
    assert kakao.events == []
    assert registry.get_sample_value("qrgw_webhook_dead_letters_total") == 3


async def test_duplicate_outbox_entry_is_delivered_once(gw: Signer, partner_registry: KeyRegistry) -> None:
    store = MemoryStore()
    (ev,) = events(1)
    await store.append_events(0, [ev])
    async with WebhookReceiver(partner_registry) as kakao:
        w = worker(store, gw, {"kakaopay-kr": kakao.url, "alipay-cn": None})
        await w.start()
        try:
            await until(lambda: drained(store), "the first copy")
            await store.append_events(0, [ev])  # the same change recorded twice
            await until(lambda: drained(store), "the second copy")
        finally:
            await w.stop()
    assert len(kakao.events) == 1  # alipay-cn has no webhook_url: counted and logged, not retried


async def test_malformed_event_is_dead_lettered_not_dropped(gw: Signer) -> None:
    store = MemoryStore()
    await store.append_events(0, [{"type": "payment.succeeded"}])
    w = worker(store, gw, {})
    await w.start()
    try:
        await until(lambda: drained(store), "the malformed entry to be handled")
    finally:
        await w.stop()
    (dead,) = await dead_letters(store)
    assert dead["reason"].startswith("malformed")


def test_backoff_is_exponential_capped_with_jitter(gw: Signer) -> None:
    s = WebhookSettings(horizon_s=60, base_delay_s=1.0, max_delay_s=300.0, concurrency=1, timeout_s=1)
    lo = WebhookWorker(MemoryStore(), gw, {}, s, jitter=lambda: 0.0, registry=CollectorRegistry())
    hi = WebhookWorker(MemoryStore(), gw, {}, s, jitter=lambda: 1.0, registry=CollectorRegistry())
    assert [lo.backoff(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert [hi.backoff(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert hi.backoff(30) == 300.0 and lo.backoff(30) == 150.0


def test_event_shape_and_stable_ids() -> None:
    rec = make_payment("pay-x", wallet="kakaopay-kr", acquirer="alipay-cn", merchant_minor=12345)
    add_refund(rec, 2345, day=rec.business_day)
    rid = rec.refunds[0].refund_id
    a = payment_event(rec, "payment.refunded", refund_id=rid)
    b = payment_event(rec, "payment.refunded", refund_id=rid)
    assert a["event_id"] == b["event_id"] == event_id("pay-x", "payment.refunded", rid)
    assert a["event_id"] != payment_event(rec, "payment.succeeded")["event_id"]
    assert a["recipients"] == ["alipay-cn", "kakaopay-kr"]
    assert a["data"]["refund"]["amount"] == {"currency": "CNY", "value": "2345"}
    assert a["data"]["quote"]["mid_rate"] == rec.quote["mid_rate"]  # type: ignore[index]
    body = json.loads(wire_body(a))
    assert "recipients" not in body and body["event_id"] == a["event_id"]
    with pytest.raises(ValueError):
        payment_event(rec, "payment.refunded")
    with pytest.raises(ValueError):
        payment_event(rec, "payment.refunded", refund_id="nope")
    with pytest.raises(ValueError):
        payment_event(rec, "payment.exploded")
