"""Settlement throughput: build a day of N payments (mixed domestic / cross-border, cancels and
partial refunds) in a MemoryStore, then time load_day, the all-partners report, --check and CSV.

    /work/venv/bin/python bench/settle.py [N]
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from datetime import timedelta

from gateway.settlement import check_day, day_report, load_day, to_csv
from gateway.store.memory import MemoryStore
from gateway.testing.settlement import PARTNERS, T0, add_cancel, add_refund, make_payment

DAY = "2026-03-02"


async def main(n: int) -> None:
    rng = random.Random(7)
    store = MemoryStore()
    ids = sorted(PARTNERS)
    for i in range(n):
        rec = make_payment(f"p{i:07d}", wallet=rng.choice(ids), acquirer=rng.choice(ids),
                           merchant_minor=rng.randint(100, 2_000_000), at=T0 + timedelta(seconds=i))
        roll = rng.random()
        if roll < 0.05:
            add_cancel(rec, day=DAY)
        elif roll < 0.15:
            add_refund(rec, max(1, rec.merchant_amount.minor // 3), day=DAY)
        await store.create_payment(rec)
    t0 = time.perf_counter()
    d = await load_day(store, DAY)
    t1 = time.perf_counter()
    report = day_report(d, "Asia/Seoul")
    t2 = time.perf_counter()
    offenses = check_day(d)
    t3 = time.perf_counter()
    text = to_csv(report)
    t4 = time.perf_counter()
    print(f"payments={n} items={len(report['items'])} offenses={len(offenses)} csv_bytes={len(text)}")
    print(f"load_day {1000 * (t1 - t0):.0f} ms; day_report(+check) {1000 * (t2 - t1):.0f} ms; "
          f"check {1000 * (t3 - t2):.0f} ms; csv {1000 * (t4 - t3):.0f} ms; "
          f"total {(t4 - t0) / n * 1e6:.1f} us/payment")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000))
