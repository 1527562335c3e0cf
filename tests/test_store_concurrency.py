"""Atomicity under concurrency, for every Store: one winner per key, caps never passed, one CAS winner.

The Redis cases spread the callers over two RedisStore instances (two connection pools, as two
gateway processes would have), so the server, not the client, decides every race.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from gateway.store.base import ClaimStatus, LimitItem, QuoteUseStatus, StaleVersion, Store
from gateway.testing.redis import StoreCase
from gateway.testing.settlement import make_payment
from schemas.errors import InvalidState
from schemas.payment import PaymentStatus

N = 200


async def two_stores(case: StoreCase) -> tuple[Store, Store]:
    return case.store, await case.another()


async def close_other(case: StoreCase, other: Store) -> None:
    if other is not case.store:
        await other.aclose()


async def test_200_concurrent_claims_one_winner(store_case: StoreCase) -> None:
    a, b = await two_stores(store_case)
    try:
        claims = await asyncio.gather(*(
            (a if i % 2 else b).claim("partner", "same-key", "fp", resource_id=f"pay-{i}") for i in range(N)))
    finally:
        await close_other(store_case, b)
    statuses = Counter(c.status for c in claims)
    assert statuses == {ClaimStatus.NEW: 1, ClaimStatus.IN_PROGRESS: N - 1}
    winner = next(c.resource_id for c in claims if c.status is ClaimStatus.NEW)
    assert {c.resource_id for c in claims} == {winner}


async def test_200_concurrent_reservations_never_pass_the_cap(store_case: StoreCase) -> None:
    a, b = await two_stores(store_case)
    cap, amount = 1000, 7
    try:
        results = await asyncio.gather(*(
            (a if i % 2 else b).reserve_limits("payer", f"r{i}", [
                LimitItem("annual:2026", amount, cap, 3600), LimitItem("monthly", amount, 5000, 3600)])
            for i in range(N)))
    finally:
        await close_other(store_case, b)
    granted = sum(r.ok for r in results)
    assert granted == cap // amount
    assert await a.limit_usage("payer", "annual:2026") == granted * amount <= cap
    assert await a.limit_usage("payer", "monthly") == granted * amount  # denied ones touched nothing
    assert all(r.denied is not None and r.denied.counter == "annual:2026" for r in results if not r.ok)
    # release everything concurrently: back to zero, never below
    await asyncio.gather(*(a.release_limits("payer", f"r{i}") for i in range(N)),
                         *(a.release_limits("payer", f"r{i}") for i in range(N)))
    assert await a.limit_usage("payer", "annual:2026") == 0


async def test_two_processes_race_on_one_transition(store_case: StoreCase) -> None:
    a, b = await two_stores(store_case)
    try:
        for round_ in range(10):
            rec = make_payment(f"pay-{round_}", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=5,
                               status=PaymentStatus.PROCESSING)
            await a.create_payment(rec)
            ok = rec.model_copy(update={"status": PaymentStatus.SUCCEEDED})
            failed = rec.model_copy(update={"status": PaymentStatus.FAILED})

            async def attempt(store: Store, new: Any) -> str:
                try:
                    await store.update_payment(new, expected_version=0, reason="race", events=[{"id": new.status}])
                except StaleVersion:
                    return "stale"
                return str(new.status)

            outcomes = await asyncio.gather(attempt(a, ok), attempt(b, failed), attempt(a, failed), attempt(b, ok))
            assert outcomes.count("stale") == 3
            stored = await b.get_payment(rec.payment_id)
            assert stored is not None and stored.version == 1 and len(stored.history) == 1
            assert str(stored.status) == next(o for o in outcomes if o != "stale")
        assert await a.outbox_backlog("g") == 10  # exactly one event per round: the winner's
    finally:
        await close_other(store_case, b)


async def test_concurrent_cas_chain_loses_no_update(store_case: StoreCase) -> None:
    """Writers that re-read on StaleVersion: every one of them lands exactly once."""
    st = store_case.store
    rec = make_payment("pay-chain", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=5,
                       status=PaymentStatus.PROCESSING)
    await st.create_payment(rec)

    async def writer(i: int) -> None:
        while True:
            cur = await st.get_payment("pay-chain")
            assert cur is not None
            try:
                await st.update_payment(cur.model_copy(update={"flags": [*cur.flags, f"w{i}"]}),
                                        expected_version=cur.version, reason=f"w{i}")
                return
            except StaleVersion:
                await asyncio.sleep(0)

    await asyncio.gather(*(writer(i) for i in range(20)))
    final = await st.get_payment("pay-chain")
    assert final is not None and final.version == 20
    assert sorted(final.flags) == sorted(f"w{i}" for i in range(20))
    assert len(final.history) == 20


async def test_concurrent_quote_consumers_and_leases(store_case: StoreCase) -> None:
    a, b = await two_stores(store_case)
    try:
        await a.put_quote("q", {"partner_id": "p"}, ttl_s=60)
        uses = await asyncio.gather(*((a if i % 2 else b).consume_quote("q", {"partner_id": "p"}, f"pay-{i}")
                                      for i in range(50)))
        assert Counter(u.status for u in uses) == {QuoteUseStatus.OK: 1, QuoteUseStatus.USED: 49}
        leases = await asyncio.gather(*((a if i % 2 else b).acquire_lease("L", f"o{i}", 60_000) for i in range(50)))
        assert sum(leases) == 1
        nonces = await asyncio.gather(*((a if i % 2 else b).remember_nonce("k", "n", 60) for i in range(50)))
        assert sum(nonces) == 1
    finally:
        await close_other(store_case, b)


async def test_illegal_transition_racing_a_legal_one(store_case: StoreCase) -> None:
    st = store_case.store
    rec = make_payment("pay-i", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=5)  # SUCCEEDED
    await st.create_payment(rec)
    results = await asyncio.gather(
        st.update_payment(rec.model_copy(update={"status": PaymentStatus.PROCESSING}), expected_version=0, reason="x"),
        st.update_payment(rec.model_copy(update={"status": PaymentStatus.REFUNDED}), expected_version=0, reason="y"),
        return_exceptions=True)
    assert isinstance(results[0], InvalidState | StaleVersion)
    stored = await st.get_payment("pay-i")
    assert stored is not None and stored.status is PaymentStatus.REFUNDED and stored.version == 1


async def test_a_fresh_process_sweeps_every_shard_at_once(store_case: StoreCase) -> None:
    """A new process's first calls are many at once (recovery sweeping 16 shards): the cluster
    client must be initialised once, not by each of them (redis-py then reuses closed sockets)."""
    await store_case.store.create_payment(make_payment("pay-s", wallet="alipay-cn", acquirer="kakaopay-kr",
                                                       merchant_minor=5, status=PaymentStatus.PROCESSING))
    for _ in range(5):
        fresh = await store_case.another()
        try:
            found = await asyncio.gather(fresh.payments_in_progress(), fresh.payments_of_day("2026-03-02"),
                                         fresh.get_payment("pay-s"), fresh.outbox_backlog("g"))
        finally:
            await close_other(store_case, fresh)
        assert found[0] == ["pay-s"] and found[1] == ["pay-s"] and found[2] is not None
