"""An idle webhook worker costs almost nothing: on a private redis-server it issues at most 5
commands a second (counted with INFO commandstats, script-internal commands included), and a
first delivery that succeeds writes no delivery state."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

from gateway.config import WebhookSettings
from gateway.events import payment_event
from gateway.signing import KeyRegistry
from gateway.store.redis import RedisStore
from gateway.testing.redis import REDIS_CLI, redis_server
from gateway.testing.settlement import make_payment
from gateway.testing.signing import entry_for, make_signer
from gateway.testing.webhooks import WebhookReceiver, webhook_endpoints
from gateway.webhooks import WebhookWorker

pytestmark = pytest.mark.redis
_OURS = {"info", "command", "hello", "client", "config"}  # the measuring and connection set-up


def commandstats(port: int) -> dict[str, int]:
    """calls per command since the server started, without the measuring commands themselves."""
    out = subprocess.run([REDIS_CLI, "-p", str(port), "INFO", "commandstats"], capture_output=True, text=True,
                         timeout=30).stdout
    calls: dict[str, int] = {}
    for line in out.splitlines():
        if line.startswith("cmdstat_"):
            name, _, rest = line.partition(":")
            cmd = name.removeprefix("cmdstat_")
            if cmd.split("|")[0] not in _OURS:
                calls[cmd] = int(rest.split(",")[0].removeprefix("calls="))
    return calls


async def until(cond: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_an_idle_worker_issues_at_most_five_commands_a_second() -> None:
    gw = make_signer("ed25519", "qrgw-gw-1")
    with redis_server() as server:
        store = await RedisStore.connect(server.url)
        w = WebhookWorker(store, gw, {}, WebhookSettings(), registry=CollectorRegistry())
        await w.start()
        try:
            # start-up: groups created, the first reclaim and backlog round, the first blocking read
            await until(lambda: commandstats(server.port).get("evalsha", 0) >= 2
                        and commandstats(server.port).get("xreadgroup", 0) >= 1, "the worker to settle")
            before = commandstats(server.port)
            await asyncio.sleep(2.0)
            after = commandstats(server.port)
        finally:
            await w.stop()
            await store.aclose()
    spent = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
    print(f"idle worker, 2 s: {sum(spent.values())} commands {spent}")
    assert sum(spent.values()) <= 10, spent  # ≤ 5 per second (a count over the window, not a timing)
    assert "xreadgroup" in spent  # it is waiting on the server, not asleep


async def test_a_first_delivery_that_succeeds_writes_no_state() -> None:
    gw = make_signer("ed25519", "qrgw-gw-1")
    rec = make_payment("pay-idle-1", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=1000)
    event = payment_event(rec, "payment.succeeded")
    with redis_server() as server:
        store = await RedisStore.connect(server.url)
        async with WebhookReceiver(KeyRegistry([], [entry_for(gw, "qrgw")])) as kakao, \
                WebhookReceiver(KeyRegistry([], [entry_for(gw, "qrgw")])) as alipay:
            w = WebhookWorker(store, gw, webhook_endpoints({"kakaopay-kr": kakao.url, "alipay-cn": alipay.url}),
                              WebhookSettings(), registry=CollectorRegistry())
            await w.start()
            try:
                await until(lambda: commandstats(server.port).get("xreadgroup", 0) >= 1, "the worker to read")
                before = commandstats(server.port)
                await store.append_events(0, [event])
                for _ in range(500):
                    if await store.outbox_backlog("webhooks") == 0:
                        break
                    await asyncio.sleep(0.02)
                after = commandstats(server.port)
            finally:
                await w.stop()
                await store.aclose()
    assert kakao.event_ids == alipay.event_ids == {event["event_id"]}
    spent = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
    assert not {"get", "set", "setex", "del"} & spent.keys(), spent  # no state blob, no lease
    assert spent.get("xack") == 1  # the (batched) ack
