"""Throughput of the payment core alone: orchestrator + MemoryStore + in-process fake partners.

    /work/venv/bin/python bench/payments_core.py [--payments 2000] [--concurrency 50]

Prints payments/s and the per-payment latency percentiles of ``Orchestrator.submit`` (the
state machine, persistence and idempotency overhead, with partner latency excluded).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from gateway.store.memory import MemoryStore
from gateway.testing.payments import SEOUL_STATIC, build_harness
from schemas.api import PaymentRequest
from schemas.money import MoneyModel
from schemas.payment import Payer, PaymentStatus


async def main(n: int, concurrency: int) -> None:
    h = build_harness(MemoryStore())
    h.wallets["alipay-cn"].balances["cn-payer"] = 10**15
    h.pricing.cap_per_payer = 10**15
    payer = Payer(id="cn-payer", residency="non-resident", country="CN")
    sem = asyncio.Semaphore(concurrency)
    lat: list[float] = []

    async def one(i: int) -> None:
        req = PaymentRequest(
            payment_request_id=f"b-{i}",
            qr=SEOUL_STATIC,
            amount=MoneyModel.of("KRW", 15000),
            payer=payer,
            payer_currency="CNY",
        )
        async with sem:
            t = time.perf_counter()
            sub = await h.orch.submit("alipay-cn", req)
            lat.append(time.perf_counter() - t)
        assert sub.record.status == PaymentStatus.SUCCEEDED

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    wall = time.perf_counter() - t0
    q = statistics.quantiles(lat, n=100)
    print(
        f"payments={n} concurrency={concurrency} wall={wall:.2f}s rate={n / wall:.0f}/s "
        f"p50={q[49] * 1000:.2f}ms p99={q[98] * 1000:.2f}ms"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--payments", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=50)
    a = ap.parse_args()
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(main(a.payments, a.concurrency))
