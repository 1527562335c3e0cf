"""The Store contract, run identically against MemoryStore, RedisStore and RedisStore on a Cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.store.base import ClaimStatus, Finish, LimitItem, QuoteUseStatus, StaleVersion, Store, payment_lease
from gateway.testing.redis import StoreCase
from gateway.testing.settlement import make_payment
from schemas.errors import ConflictError, InvalidState
from schemas.payment import CancelRecord, PaymentRecord, PaymentStatus

S = PaymentStatus


def processing(pid: str, day: str = "2026-03-02") -> PaymentRecord:
    return make_payment(pid, wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=15000,
                        status=S.PROCESSING, day=day)


# -- idempotency ---------------------------------------------------------------------------------------
async def test_claim_lifecycle(store_case: StoreCase) -> None:
    st = store_case.store
    first = await st.claim("p1", "k", "fp", resource_id="pay-a")
    assert (first.status, first.resource_id) == (ClaimStatus.NEW, "pay-a")
    again = await st.claim("p1", "k", "fp", resource_id="pay-b")
    assert (again.status, again.resource_id, again.answer) == (ClaimStatus.IN_PROGRESS, "pay-a", None)
    other = await st.claim("p1", "k", "other-fp", resource_id="pay-c")
    assert (other.status, other.resource_id) == (ClaimStatus.CONFLICT, "pay-a")
    assert (await st.claim("p2", "k", "other-fp", resource_id="pay-d")).status is ClaimStatus.NEW  # scoped

    await st.abandon_claim("p1", "missing")  # no-op
    await st.finish_claim("p1", "k", {"payment_id": "pay-a", "n": 1})
    done = await st.claim("p1", "k", "fp", resource_id="pay-e")
    assert (done.status, done.resource_id, done.answer) == (ClaimStatus.DONE, "pay-a", {"payment_id": "pay-a", "n": 1})
    await st.abandon_claim("p1", "k")  # a finished claim is never forgotten
    assert (await st.claim("p1", "k", "fp", resource_id="x")).status is ClaimStatus.DONE


async def test_abandoned_claim_can_be_won_again(store_case: StoreCase) -> None:
    st = store_case.store
    assert (await st.claim("p", "k", "fp", resource_id="a")).status is ClaimStatus.NEW
    await st.abandon_claim("p", "k")
    again = await st.claim("p", "k", "fp2", resource_id="b")
    assert (again.status, again.resource_id) == (ClaimStatus.NEW, "b")


# -- payments ------------------------------------------------------------------------------------------
async def test_create_get_and_indexes(store_case: StoreCase) -> None:
    st = store_case.store
    rec = processing("pay-1")
    await st.create_payment(rec)
    got = await st.get_payment("pay-1")
    assert got == rec
    assert await st.get_payment("nope") is None
    assert await st.payments_of_day("2026-03-02") == ["pay-1"]
    assert await st.payments_of_day("2026-03-03") == []
    assert await st.payments_in_progress() == ["pay-1"]
    with pytest.raises(ConflictError):
        await st.create_payment(rec.model_copy(update={"stage": "again"}))
    done = make_payment("pay-2", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=1)
    await st.create_payment(done)  # SUCCEEDED: indexed by day, not in progress
    assert await st.payments_of_day("2026-03-02") == ["pay-1", "pay-2"]
    assert await st.payments_in_progress() == ["pay-1"]


async def test_update_is_compare_and_set_with_history(store_case: StoreCase) -> None:
    st = store_case.store
    await st.create_payment(processing("pay-1"))
    rec = await st.get_payment("pay-1")
    assert rec is not None
    step = rec.model_copy(update={"stage": "debited"})
    v1 = await st.update_payment(step, expected_version=0, reason="debit ok")
    assert (v1.version, v1.stage, [h.reason for h in v1.history]) == (1, "debited", ["debit ok"])
    assert v1.updated_at >= rec.updated_at
    assert await st.get_payment("pay-1") == v1

    with pytest.raises(StaleVersion):  # a writer that read version 0 lost the race
        await st.update_payment(rec.model_copy(update={"status": S.FAILED}), expected_version=0, reason="late")
    assert await st.get_payment("pay-1") == v1

    v2 = await st.update_payment(v1.model_copy(update={"status": S.SUCCEEDED, "stage": "done"}),
                                 expected_version=1, reason="credit ok")
    assert v2.version == 2
    assert [(h.status, h.stage, h.reason) for h in v2.history] == [
        (S.PROCESSING, "debited", "debit ok"), (S.SUCCEEDED, "done", "credit ok")]
    assert await st.get_payment("pay-1") == v2
    assert await st.payments_in_progress() == []
    with pytest.raises(StaleVersion):
        await st.update_payment(processing("ghost"), expected_version=0, reason="x")


@pytest.mark.parametrize(("start", "to"), [(S.PROCESSING, S.REFUNDED), (S.FAILED, S.SUCCEEDED),
                                           (S.SUCCEEDED, S.PROCESSING), (S.REFUNDED, S.PARTIALLY_REFUNDED)])
async def test_illegal_transition_changes_nothing(store_case: StoreCase, start: PaymentStatus,
                                                  to: PaymentStatus) -> None:
    st = store_case.store
    rec = make_payment("pay-x", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=10, status=start)
    await st.create_payment(rec)
    with pytest.raises(InvalidState):
        await st.update_payment(rec.model_copy(update={"status": to}), expected_version=0, reason="bad",
                                events=[{"event_id": "e1"}])
    assert await st.get_payment("pay-x") == rec
    assert await st.outbox_backlog("g") == 0


async def test_processing_set_follows_refunds_and_cancels(store_case: StoreCase) -> None:
    st = store_case.store
    rec = make_payment("pay-c", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=10)
    await st.create_payment(rec)
    assert await st.payments_in_progress() == []
    cx = CancelRecord(cancel_request_id="c1", status="PROCESSING", created_at=rec.created_at,
                      updated_at=rec.created_at, business_day="2026-03-05")
    v1 = await st.update_payment(rec.model_copy(update={"cancel": cx}), expected_version=0, reason="cancel",
                                 extra_days=["2026-03-05", "2026-03-05"])
    assert await st.payments_in_progress() == ["pay-c"]
    assert await st.payments_of_day("2026-03-05") == ["pay-c"]
    assert await st.payments_of_day("2026-03-02") == ["pay-c"]
    done = v1.model_copy(update={"status": S.CANCELLED, "cancel": cx.model_copy(update={"status": "SUCCEEDED"})})
    await st.update_payment(done, expected_version=1, reason="cancelled")
    assert await st.payments_in_progress() == []


async def test_in_progress_limit_and_order(store_case: StoreCase) -> None:
    st = store_case.store
    ids = [f"pay-{i:02d}" for i in range(12)]
    for pid in ids:
        await st.create_payment(processing(pid))
    assert await st.payments_in_progress(limit=5) == ids[:5]
    assert await st.payments_in_progress() == ids


# -- nonces, blobs, leases, TTLs --------------------------------------------------------------------------
async def test_nonce_blob_and_lease(store_case: StoreCase) -> None:
    st = store_case.store
    assert await st.remember_nonce("k1", "n1", 60) is True
    assert await st.remember_nonce("k1", "n1", 60) is False
    assert await st.remember_nonce("k2", "n1", 60) is True

    assert await st.get_blob("b") is None
    await st.put_blob("b", b"\x00\xffbytes")
    assert await st.get_blob("b") == b"\x00\xffbytes"
    await st.put_blob("b", b"v2", ttl_s=60)
    assert await st.get_blob("b") == b"v2"

    assert await st.acquire_lease("L", "a", 60_000) is True
    assert await st.acquire_lease("L", "b", 60_000) is False
    assert await st.acquire_lease("L", "a", 60_000) is True  # renew
    await st.release_lease("L", "b")  # not the holder: no effect
    assert await st.acquire_lease("L", "b", 60_000) is False
    await st.release_lease("L", "a")
    assert await st.acquire_lease("L", "b", 60_000) is True


async def test_everything_with_a_ttl_expires(store_case: StoreCase) -> None:
    st = store_case.store
    await st.claim("s", "k", "fp", resource_id="r", ttl_s=1)
    assert await st.remember_nonce("k", "n", 1)
    await st.put_quote("q", {"partner_id": "p"}, ttl_s=1)
    await st.put_blob("b", b"x", ttl_s=1)
    assert await st.acquire_lease("L", "a", 300)
    res = await st.reserve_limits("payer", "r1", [LimitItem("annual:2026", 5, 10, ttl_s=1)])
    assert res.ok
    await st.put_blob("forever", b"y")
    await store_case.advance(0.5)
    assert await st.acquire_lease("L", "b", 1000)  # the 300 ms lease is gone
    await store_case.advance(0.7)
    assert (await st.claim("s", "k", "fp2", resource_id="r2")).status is ClaimStatus.NEW
    assert await st.remember_nonce("k", "n", 1) is True
    assert await st.get_quote("q") is None
    assert (await st.consume_quote("q", {}, "c")).status is QuoteUseStatus.MISSING
    assert await st.get_blob("b") is None
    assert await st.get_blob("forever") == b"y"
    assert await st.limit_usage("payer", "annual:2026") == 0
    # the reservation lived as long as its counter: the same id now counts afresh
    assert (await st.reserve_limits("payer", "r1", [LimitItem("annual:2026", 5, 10, ttl_s=60)])).ok
    assert await st.limit_usage("payer", "annual:2026") == 5


# -- quotes ----------------------------------------------------------------------------------------------
async def test_quote_consumed_at_most_once(store_case: StoreCase) -> None:
    st = store_case.store
    data = {"quote_id": "q1", "partner_id": "alipay-cn", "qr_fingerprint": "f1", "merchant_minor": 15000,
            "payer_amount": {"currency": "CNY", "value": "7800"}}
    await st.put_quote("q1", data, ttl_s=60)
    assert await st.get_quote("q1") == data
    assert (await st.consume_quote("nope", {}, "pay-a")).status is QuoteUseStatus.MISSING
    bad = await st.consume_quote("q1", {"partner_id": "alipay-cn", "qr_fingerprint": "other"}, "pay-a")
    assert (bad.status, bad.data) == (QuoteUseStatus.MISMATCH, None)
    assert (await st.consume_quote("q1", {"absent": "x"}, "pay-a")).status is QuoteUseStatus.MISMATCH
    expect = {"partner_id": "alipay-cn", "qr_fingerprint": "f1", "merchant_minor": "15000"}
    ok = await st.consume_quote("q1", expect, "pay-a")
    assert (ok.status, ok.data) == (QuoteUseStatus.OK, data)
    assert (await st.consume_quote("q1", expect, "pay-a")).status is QuoteUseStatus.OK  # same consumer
    assert (await st.consume_quote("q1", expect, "pay-b")).status is QuoteUseStatus.USED
    await st.restore_quote("q1", "pay-b")  # not the consumer: no effect
    assert (await st.consume_quote("q1", expect, "pay-b")).status is QuoteUseStatus.USED
    await st.restore_quote("q1", "pay-a")
    assert (await st.consume_quote("q1", expect, "pay-b")).status is QuoteUseStatus.OK
    await st.restore_quote("missing", "pay-a")  # no-op


# -- limits ----------------------------------------------------------------------------------------------
async def test_limits_all_or_nothing(store_case: StoreCase) -> None:
    st = store_case.store
    items = [LimitItem("annual:2026", 600, 1000, 3600), LimitItem("daily:2026-03-02", 600, 700, 3600)]
    first = await st.reserve_limits("payer-1", "r1", items)
    assert (first.ok, dict(first.used)) == (True, {"annual:2026": 600, "daily:2026-03-02": 600})
    repeat = await st.reserve_limits("payer-1", "r1", items)  # idempotent
    assert repeat.ok and dict(repeat.used) == {"annual:2026": 600, "daily:2026-03-02": 600}
    small = [LimitItem("annual:2026", 300, 1000, 3600), LimitItem("daily:2026-03-02", 300, 700, 3600)]
    denied = await st.reserve_limits("payer-1", "r2", small)
    assert (denied.ok, denied.denied) == (False, small[1])
    assert dict(denied.used) == {"annual:2026": 600, "daily:2026-03-02": 600}
    assert await st.limit_usage("payer-1", "annual:2026") == 600  # the denial left everything unchanged
    assert await st.limit_usage("payer-1", "daily:2026-03-02") == 600
    assert await st.limit_usage("payer-2", "annual:2026") == 0  # per holder
    # r2 never reserved anything: releasing it gives nothing back
    await st.release_limits("payer-1", "r2")
    assert await st.limit_usage("payer-1", "annual:2026") == 600


async def test_limits_partial_release_never_over_releases(store_case: StoreCase) -> None:
    st = store_case.store
    await st.reserve_limits("h", "other", [LimitItem("annual", 100, 10_000, 3600)])
    await st.reserve_limits("h", "r1", [LimitItem("annual", 1000, 10_000, 3600), LimitItem("daily", 1000, 5000, 3600)])
    await st.release_limits("h", "r1", {"annual": 300, "daily": -5, "unknown": 50})
    assert (await st.limit_usage("h", "annual"), await st.limit_usage("h", "daily")) == (800, 1000)
    await st.release_limits("h", "r1", {"annual": 5000})  # capped at what r1 still holds (700)
    assert await st.limit_usage("h", "annual") == 100
    await st.release_limits("h", "r1")  # the rest: daily's 1000
    assert (await st.limit_usage("h", "annual"), await st.limit_usage("h", "daily")) == (100, 0)
    await st.release_limits("h", "r1")  # idempotent once fully released
    await st.release_limits("h", "never")
    assert (await st.limit_usage("h", "annual"), await st.limit_usage("h", "daily")) == (100, 0)
    again = await st.reserve_limits("h", "r1", [LimitItem("annual", 1000, 10_000, 3600)])
    assert again.ok and await st.limit_usage("h", "annual") == 100  # a released id still never counts twice


# -- token bucket ----------------------------------------------------------------------------------------
async def test_token_bucket(store_case: StoreCase) -> None:
    st = store_case.store
    assert [await st.take_token("b", 1.0, 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = await st.take_token("b", 1.0, 3)
    assert 0.0 < wait <= 1.0
    assert await st.take_token("other", 1.0, 1) == 0.0  # buckets are separate
    await store_case.advance(1.1)
    assert await st.take_token("b", 1.0, 3) == 0.0


async def test_a_counter_twice_in_one_reservation_is_refused(store_case: StoreCase) -> None:
    with pytest.raises(ValueError):
        await store_case.store.reserve_limits("h", "r", [LimitItem("c", 1, 9, 60), LimitItem("c", 2, 9, 60)])
    assert await store_case.store.limit_usage("h", "c") == 0


async def test_repeats_of_the_same_call_are_safe(store_case: StoreCase) -> None:
    """What a client retrying after a lost reply sends: the very same call again."""
    st = store_case.store
    assert (await st.claim("s", "k", "fp", resource_id="a")).status is ClaimStatus.NEW
    assert (await st.claim("s", "k", "fp", resource_id="a")).status is ClaimStatus.NEW  # the winner again
    assert (await st.claim("s", "k", "fp", resource_id="b")).status is ClaimStatus.IN_PROGRESS
    await st.finish_claim("s", "k", {"ok": True})
    assert (await st.claim("s", "k", "fp", resource_id="a")).status is ClaimStatus.DONE
    rec = processing("pay-r")
    await st.create_payment(rec, events=[{"id": 1}])
    await st.create_payment(rec, events=[{"id": 1}])  # identical: no effect
    with pytest.raises(ConflictError):
        await st.create_payment(rec.model_copy(update={"stage": "other"}))
    assert await st.outbox_backlog("g") == 1


# -- the payment request path: begin, discard, finish folded into the last write, the due index ------
def in_claim_shard(st: Store, scope: str, key: str, base: str) -> str:
    pid = base
    while st.shard_of(pid) != st.claim_shard(scope, key):
        pid += "x"
    return pid


async def test_begin_payment_claims_leases_and_stores_in_one_call(store_case: StoreCase) -> None:
    st = store_case.store
    pid = in_claim_shard(st, "w", "req-1", "pay-b")
    rec = processing(pid).model_copy(update={"payment_request_id": "req-1"})
    first = await st.begin_payment("w", "req-1", "fp", rec, owner="gw-a", lease_ms=30_000)
    assert first.created and first.claim.status is ClaimStatus.NEW and await st.get_payment(pid) == rec
    again = await st.begin_payment("w", "req-1", "fp", rec, owner="gw-a", lease_ms=30_000)  # a lost reply, repeated
    assert again.created and await st.get_payment(pid) == rec
    other = rec.model_copy(update={"payment_id": in_claim_shard(st, "w", "req-1", "pay-c")})
    late = await st.begin_payment("w", "req-1", "fp", other, owner="gw-b", lease_ms=30_000)
    assert (late.created, late.claim.status, late.claim.resource_id) == (False, ClaimStatus.IN_PROGRESS, pid)
    assert await st.get_payment(other.payment_id) is None
    conflict = await st.begin_payment("w", "req-1", "fp2", other, owner="gw-b", lease_ms=30_000)
    assert conflict.claim.status is ClaimStatus.CONFLICT and not conflict.created
    seen = await st.get_claim("w", "req-1", "fp2")  # read only, as a repeat with another body sees it
    assert seen is not None and (seen.status, seen.resource_id) == (ClaimStatus.CONFLICT, pid)
    mine = await st.get_claim("w", "req-1", "fp")
    assert mine is not None and mine.status is ClaimStatus.NEW
    assert not await st.acquire_lease(payment_lease(pid), "gw-b", 1000)  # gw-a holds it
    wrong = "pay-w"
    while st.shard_of(wrong) == st.claim_shard("w", "req-2"):
        wrong += "x"
    with pytest.raises(ValueError):  # claim, lease and record must share one slot
        await st.begin_payment("w", "req-2", "fp", processing(wrong), owner="gw-a", lease_ms=1000)


async def test_the_last_write_finishes_the_claim_and_releases_the_lease(store_case: StoreCase) -> None:
    st = store_case.store
    pid = in_claim_shard(st, "w", "req-f", "pay-f")
    rec = processing(pid).model_copy(update={"payment_request_id": "req-f"})
    await st.begin_payment("w", "req-f", "fp", rec, owner="gw-a", lease_ms=30_000)
    done = rec.model_copy(update={"status": S.SUCCEEDED, "stage": "succeeded"})
    await st.update_payment(done, expected_version=0, reason="credit ok",
                            finish=Finish("w", "req-f", {"payment_id": pid}, "gw-a"))
    claim = await st.get_claim("w", "req-f")
    assert claim is not None and (claim.status, claim.answer) == (ClaimStatus.DONE, {"payment_id": pid})
    assert await st.acquire_lease(payment_lease(pid), "gw-b", 1000)  # released
    assert await st.payments_in_progress() == []


async def test_discard_deletes_only_a_payment_that_never_moved(store_case: StoreCase) -> None:
    st = store_case.store
    pid = in_claim_shard(st, "w", "req-d", "pay-d")
    rec = processing(pid).model_copy(update={"payment_request_id": "req-d"})
    await st.begin_payment("w", "req-d", "fp", rec, owner="gw-a", lease_ms=30_000)
    await st.discard_payment("w", "req-d", pid, "gw-a")
    await st.discard_payment("w", "req-d", pid, "gw-a")  # repeated: harmless
    assert await st.get_payment(pid) is None and await st.get_claim("w", "req-d") is None
    assert await st.payments_in_progress() == [] and pid not in await st.payments_of_day("2026-03-02")
    assert pid not in [p for _, p in await st.recent_payments(100)]  # nor in the admin's created-time index
    moved = in_claim_shard(st, "w", "req-m", "pay-m")
    rec = processing(moved).model_copy(update={"payment_request_id": "req-m"})
    await st.begin_payment("w", "req-m", "fp", rec, owner="gw-a", lease_ms=30_000)
    await st.update_payment(rec.model_copy(update={"stage": "credit"}), expected_version=0, reason="debited")
    await st.discard_payment("w", "req-m", moved, "gw-a")
    assert await st.get_payment(moved) is not None and await st.get_claim("w", "req-m") is not None


async def test_payments_due_reads_the_index_by_due_time(store_case: StoreCase) -> None:
    st = store_case.store
    t0 = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    for i, offset in enumerate((-10, -5, 30, 60)):
        await st.create_payment(processing(f"pay-due-{i}").model_copy(
            update={"next_attempt_at": t0 + timedelta(seconds=offset)}))
    await st.create_payment(make_payment("pay-final", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=1))
    due, nxt = await st.payments_due(t0)
    assert due == ["pay-due-0", "pay-due-1"] and nxt == t0 + timedelta(seconds=30)
    due, nxt = await st.payments_due(t0 + timedelta(seconds=90))
    assert due == ["pay-due-0", "pay-due-1", "pay-due-2", "pay-due-3"] and nxt is None
    assert (await st.payments_due(t0, limit=1))[0] == ["pay-due-0"]
