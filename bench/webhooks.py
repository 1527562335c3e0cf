"""The webhook worker at full load and idle, on a private redis-server.

Two phases of ``--events`` payment events (two recipients each, two signature-verifying
loopback receivers): a backlog waiting when the worker starts (its capacity), then events
appended while it runs (it keeps up: the backlog drains as it is produced). Prints events
delivered per second, Redis commands per event (``INFO commandstats``, script-internal commands
included) and, between the phases, the idle worker's commands per second.

    python bench/webhooks.py [--events 3000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry

from gateway.config import WebhookSettings
from gateway.events import payment_event
from gateway.logging import configure_logging
from gateway.loop import run
from gateway.signing import KeyRegistry
from gateway.store.redis import RedisStore
from gateway.testing.redis import REDIS_CLI, redis_server
from gateway.testing.settlement import make_payment
from gateway.testing.signing import entry_for, make_signer
from gateway.testing.webhooks import WebhookReceiver, webhook_endpoints
from gateway.webhooks import WebhookWorker


def commands(port: int) -> dict[str, int]:
    """Calls per command (script-internal ones included), without the measuring commands."""
    out = subprocess.run([REDIS_CLI, "-p", str(port), "INFO", "commandstats"], capture_output=True, text=True,
                         timeout=30).stdout
    calls: dict[str, int] = {}
    for line in out.splitlines():
        name, _, rest = line.partition(":")
        if name.startswith("cmdstat_") and name not in ("cmdstat_info", "cmdstat_client", "cmdstat_hello"):
            calls[name.removeprefix("cmdstat_")] = int(rest.split(",")[0].removeprefix("calls="))
    return calls


async def drain(server_port: int, receivers: list[WebhookReceiver], n: int,
                produce: Callable[[], Awaitable[None]]) -> tuple[float, dict[str, int]]:
    """Run ``produce``, wait until every receiver holds ``n`` events, then the last acks: the
    wall time and the Redis commands spent meanwhile (the producer's XADDs left out)."""
    c0, t0 = commands(server_port), time.perf_counter()
    await produce()
    for _ in range(30_000):  # at most ten minutes
        if all(len(r.event_ids) >= n for r in receivers):
            break
        await asyncio.sleep(0.02)
    wall = time.perf_counter() - t0
    await asyncio.sleep(0.5)  # the last batched acks
    c1 = commands(server_port)
    return wall, {k: v - c0.get(k, 0) for k, v in c1.items() if v != c0.get(k, 0) and k != "xadd"}


def report(name: str, n: int, wall: float, spent: dict[str, int]) -> None:
    total = sum(spent.values())
    print(f"  {name}: {n / wall:.0f} events/s ({2 * n / wall:.0f} POSTs/s), {total / n:.2f} Redis commands/event "
          f"incl. script-internal and housekeeping ({spent.get('xreadgroup', 0) + spent.get('evalsha', 0)} "
          f"round trips): {spent}")


async def main(n: int, concurrency: int) -> None:
    configure_logging("WARNING", "json")
    gw = make_signer("ed25519", "qrgw-gw-bench")
    events = [payment_event(make_payment(f"pay{i:06d}", wallet="alipay-cn", acquirer="kakaopay-kr",
                                         merchant_minor=1000 + i), "payment.succeeded") for i in range(2 * n)]
    view = KeyRegistry([], [entry_for(gw, "qrgw")])
    print(f"webhooks: {n} events x 2 recipients per phase, concurrency {concurrency}")
    with redis_server() as server:
        store = await RedisStore.connect(server.url)
        async with WebhookReceiver(view) as kakao, WebhookReceiver(view) as alipay:
            w = WebhookWorker(store, gw, webhook_endpoints({"kakaopay-kr": kakao.url, "alipay-cn": alipay.url}),
                              WebhookSettings(concurrency=concurrency), registry=CollectorRegistry())
            for i in range(0, n, 50):  # a backlog waiting before the worker starts: its capacity
                await store.append_events(i % store.shards, events[i:i + 50])

            async def start() -> None:
                await w.start()

            wall, spent = await drain(server.port, [kakao, alipay], n, start)
            report("backlog of n", n, wall, spent)
            await asyncio.sleep(1.0)
            idle0 = commands(server.port)
            await asyncio.sleep(5.0)
            idle = sum(v - idle0.get(k, 0) for k, v in commands(server.port).items()) / 5.0
            print(f"  idle worker: {idle:.1f} Redis commands/s")

            async def produce() -> None:  # a producer appending while the worker delivers
                for i in range(n, 2 * n, 10):
                    await store.append_events(i % store.shards, events[i:i + 10])

            wall, spent = await drain(server.port, [kakao, alipay], 2 * n, produce)
            report("while produced", n, wall, spent)
            left = await store.outbox_backlog("webhooks")
            await w.stop()
        await store.aclose()
    assert len(kakao.event_ids) == len(alipay.event_ids) == 2 * n and left == 0, left


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=16)
    a = ap.parse_args()
    run(main(a.events, a.concurrency))
