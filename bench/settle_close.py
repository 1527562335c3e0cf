"""Closing a settlement window of N payments on Redis (PROTOCOL.md §9.1): time and peak memory.

Starts its own redis-server, fills it the way the gateway does (``create_payment``, then the
final ``update_payment`` with its event, which enters the outbox atomically), first with an
earlier window of ``N // 4`` payments that it closes, then with the N payments of the measured
window. The close must read only its own payments: it counts the payments it reads and
compares them with DBSIZE.

    .venv/bin/python bench/settle_close.py [N]      (default 100000)
"""

from __future__ import annotations

import asyncio
import random
import resource
import sys
import time
from typing import Any

from gateway.events import payment_event
from gateway.settlement.fees import FeeSchedule, Rate
from gateway.settlement.windows import GROUP, CloseConfig, close_window
from gateway.store.redis import RedisStore
from gateway.testing.redis import redis_server
from gateway.testing.settlement import PARTNERS, make_payment
from schemas.payment import PaymentStatus

FEES = FeeSchedule({p: {"wallet": Rate(25, 0), "acquirer": Rate(45, 5)} for p in PARTNERS})
CFG = CloseConfig("Asia/Seoul", "24:00", FEES, partners=tuple(sorted(PARTNERS)))


async def fill(store: RedisStore, prefix: str, n: int, rng: random.Random) -> None:
    ids = sorted(PARTNERS)

    async def one(i: int) -> None:
        rec = make_payment(f"{prefix}{i:07d}", wallet=rng.choice(ids), acquirer=rng.choice(ids),
                           merchant_minor=rng.randint(100, 2_000_000), status=PaymentStatus.PROCESSING)
        await store.create_payment(rec)
        done = rec.model_copy(update={"status": PaymentStatus.SUCCEEDED})
        await store.update_payment(done, expected_version=0, reason="bench",
                                   events=[payment_event(done, "payment.succeeded")])

    for start in range(0, n, 500):
        await asyncio.gather(*(one(i) for i in range(start, min(n, start + 500))))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(n: int) -> None:
    rng = random.Random(20)
    with redis_server() as srv:
        store = await RedisStore.connect(srv.url, pool_size=32)
        try:
            await store.open_event_group(GROUP)
            t0 = time.perf_counter()
            await fill(store, "old", n // 4, rng)
            await close_window(store, "2026-03-01", CFG, owner="bench")
            await fill(store, "pay", n, rng)
            t_fill = time.perf_counter() - t0
            reads = 0
            real_get = store.get_payments

            async def counting_get(ids: Any) -> Any:
                nonlocal reads
                reads += len(ids)
                return await real_get(ids)

            store.get_payments = counting_get  # type: ignore[method-assign]
            keys = int(await store._call("DBSIZE"))
            rss0 = rss_mb()
            t1 = time.perf_counter()
            window, closed = await close_window(store, "2026-03-02", CFG, owner="bench")
            t_close = time.perf_counter() - t1
            rss1 = rss_mb()
            assert closed and window["items"] == n, window["items"]
            rows = sum(int(b["rows"]) for b in window["batches"])
            print(f"payments={n} (plus {n // 4} in the earlier, closed window) keys_in_redis={keys} "
                  f"fill={t_fill:.1f}s")
            print(f"close: {t_close:.2f} s ({t_close / n * 1e6:.0f} us/payment), payments read={reads}, "
                  f"batch rows={rows}, peak RSS {rss0:.0f} -> {rss1:.0f} MB (+{rss1 - rss0:.0f} MB)")
        finally:
            await store.aclose()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
