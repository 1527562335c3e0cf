"""Throughput of the Store on the payment hot path, next to bare Redis in the same run.

    /work/venv/bin/python bench/store.py [--payments 3000] [--concurrency 32] [--cluster] [--aof]

One payment = what a cross-border payment's request path does: ``begin_payment`` (claim + lease +
record, one script), ``reserve_limits``, and two ``update_payment`` transitions (the second appends
its event to the outbox, marks the claim DONE and releases the lease, folded into the same script):
four store calls, each one round trip on Redis.
Runs it on MemoryStore and on RedisStore against a private redis-server it starts (persistence
off, or AOF ``appendfsync everysec`` with ``--aof``; ``--cluster`` adds a local 3-master
Cluster), then a bare redis.asyncio SET/GET loop with the same concurrency and, if installed,
``redis-benchmark``, and prints our store calls/s as a ratio of the bare figures.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import redis.asyncio as aioredis

from gateway.store.base import ClaimStatus, Finish, LimitItem, Store
from gateway.store.memory import MemoryStore
from gateway.store.redis import RedisStore
from gateway.testing.redis import redis_cluster, redis_server
from gateway.testing.settlement import make_payment
from schemas.payment import PaymentStatus

CALLS_PER_PAYMENT = 4


async def run_tasks(n: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> float:
    """Run ``one(0..n-1)`` on ``concurrency`` workers; answer the elapsed seconds."""
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await one(i)

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t


async def hot_path(store: Store, n: int, concurrency: int, tag: str) -> float:
    """Payments per second through the four hot-path store calls."""
    template = make_payment("tmpl", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=15000,
                            status=PaymentStatus.PROCESSING)

    async def one(i: int) -> None:
        key = f"req-{tag}-{i}"
        pid = f"{tag}-{i}"
        while store.shard_of(pid) != store.claim_shard("alipay-cn", key):  # in its claim's shard, as the core draws
            pid += "x"
        rec = template.model_copy(update={"payment_id": pid, "payment_request_id": key})
        begun = await store.begin_payment("alipay-cn", key, "fp", rec, owner="bench", lease_ms=30_000)
        assert begun.created and begun.claim.status is ClaimStatus.NEW
        items = [LimitItem("annual:2026", 15000, 10**15, 86400), LimitItem("daily:2026-03-02", 15000, 10**15, 86400)]
        res = await store.reserve_limits(f"payer-{i % 500}", f"res-{pid}", items)
        assert res.ok
        debited = await store.update_payment(rec.model_copy(update={"stage": "debited"}), expected_version=0,
                                             reason="debit ok")
        await store.update_payment(debited.model_copy(update={"status": PaymentStatus.SUCCEEDED, "stage": "done"}),
                                   expected_version=1, reason="credit ok",
                                   events=[{"event_id": f"ev-{pid}", "type": "payment.succeeded"}],
                                   finish=Finish("alipay-cn", key, {"payment_id": pid}, "bench"))

    return n / await run_tasks(n, concurrency, one)


async def bare_set_get(url: str, n: int, concurrency: int) -> float:
    """Commands per second of a plain redis.asyncio SET + GET loop (the floor of one round trip)."""
    r = aioredis.Redis.from_url(url, max_connections=concurrency)

    async def one(i: int) -> None:
        await r.set(f"bare:{i}", b"x" * 64)
        await r.get(f"bare:{i}")

    try:
        return 2 * n / await run_tasks(n, concurrency, one)
    finally:
        await r.aclose()


def redis_benchmark(port: int, concurrency: int) -> dict[str, float]:
    exe = shutil.which("redis-benchmark")
    if exe is None:
        return {}
    out = subprocess.run([exe, "-p", str(port), "-t", "set,get", "-n", "50000", "-c", str(concurrency), "-q"],
                         capture_output=True, text=True, timeout=120).stdout
    found = re.findall(r"(SET|GET): ([\d.]+) requests per second", out.replace("\r", "\n"))
    return {name: float(v) for name, v in found}


async def measure(label: str, url: str | None, n: int, concurrency: int) -> float:
    store: Store = MemoryStore() if url is None else await RedisStore.connect(url, pool_size=concurrency * 2)
    try:
        await hot_path(store, min(n, 300), concurrency, f"warm-{label}")  # scripts loaded, pools filled
        pps = await hot_path(store, n, concurrency, label)
    finally:
        await store.aclose()
    print(f"{label:<14} {pps:>10,.0f} payments/s {pps * CALLS_PER_PAYMENT:>10,.0f} store calls/s")
    return pps


async def main(n: int, concurrency: int, cluster: bool, aof: bool) -> None:
    print(f"payment hot path: {CALLS_PER_PAYMENT} store calls/payment, {n} payments, concurrency {concurrency}")
    await measure("MemoryStore", None, n, concurrency)
    extra = ["--appendonly", "yes", "--appendfsync", "everysec"] if aof else []
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp), extra=extra) as server:
        pps = await measure("RedisStore", server.url, n, concurrency)
        bare = await bare_set_get(server.url, n * 2, concurrency)
        print(f"{'bare SET/GET':<14} {bare:>10,.0f} commands/s (redis.asyncio, same concurrency)")
        rb = redis_benchmark(server.port, concurrency)
        for name, v in rb.items():
            print(f"{'redis-bench ' + name:<14} {v:>10,.0f} requests/s (C client, -c {concurrency})")
        calls = pps * CALLS_PER_PAYMENT
        print(f"ratio: RedisStore calls/s / bare redis.asyncio commands/s = {calls / bare:.2f}")
        if rb:
            print(f"ratio: RedisStore calls/s / redis-benchmark SET = {calls / rb.get('SET', calls):.3f}")
    if cluster:
        with tempfile.TemporaryDirectory() as tmp, redis_cluster(3, Path(tmp)) as c:
            await measure("RedisCluster", c.url, n, concurrency)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--payments", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--cluster", action="store_true", help="also a local 3-master Redis Cluster")
    ap.add_argument("--aof", action="store_true", help="redis-server with appendonly yes, appendfsync everysec")
    a = ap.parse_args()
    asyncio.run(main(a.payments, a.concurrency, a.cluster, a.aof))
