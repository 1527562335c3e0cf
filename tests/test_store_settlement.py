"""The Store's settlement section (windows, frozen batches, recon exceptions, the settlement
outbox group), run identically against MemoryStore, RedisStore and RedisStore on a Cluster."""

from __future__ import annotations

from gateway.testing.redis import StoreCase


def window(wid: str, seq: int) -> dict[str, object]:
    return {"window_id": wid, "seq": seq, "cursors": {"0": "5"}, "items": 2}


async def test_window_is_stored_once_with_its_batches(store_case: StoreCase) -> None:
    st = store_case.store
    assert await st.last_window() is None and await st.get_window("2026-03-02") is None
    batches = {"alipay-cn": {"batch_id": "2026-03-02:alipay-cn", "rows": [["a", "1"]]},
               "kakaopay-kr": {"batch_id": "2026-03-02:kakaopay-kr", "rows": []}}
    assert await st.put_window(window("2026-03-02", 1), batches) is True
    assert await st.get_window("2026-03-02") == window("2026-03-02", 1)
    assert await st.get_batch("2026-03-02", "alipay-cn") == batches["alipay-cn"]
    assert await st.get_batch("2026-03-02", "nobody") is None
    # A second close of the same window writes nothing: the first batches stay frozen.
    assert await st.put_window(window("2026-03-02", 9), {"alipay-cn": {"rows": []}}) is False
    assert await st.get_batch("2026-03-02", "alipay-cn") == batches["alipay-cn"]
    assert (await st.last_window() or {})["seq"] == 1
    assert await st.put_window(window("2026-03-03", 2), {}) is True
    assert (await st.last_window() or {})["window_id"] == "2026-03-03"


def exc(eid: str, wid: str = "2026-03-02") -> dict[str, object]:
    return {"exception_id": eid, "window_id": wid, "kind": "duplicate", "resolved_at": None, "note": None}


async def test_recon_exceptions_are_added_once_and_resolved_once(store_case: StoreCase) -> None:
    st = store_case.store
    assert await st.add_recon_exceptions([exc("x1"), exc("x2"), exc("y1", "2026-03-03")]) == 3
    assert await st.resolve_recon_exception("x1", "partner re-sent", "2026-03-03T01:00:00Z") is not None
    # Re-adding (a re-imported file) neither duplicates nor reopens a resolved exception.
    assert await st.add_recon_exceptions([exc("x1"), exc("x2")]) == 0
    got = await st.recon_exceptions("2026-03-02")
    assert [e["exception_id"] for e in got] == ["x1", "x2"]
    assert (got[0]["resolved_at"], got[0]["note"]) == ("2026-03-03T01:00:00Z", "partner re-sent")
    assert got[1]["resolved_at"] is None
    again = await st.resolve_recon_exception("x1", "other note", "2026-03-04T00:00:00Z")
    assert again is not None and again["note"] == "partner re-sent"  # the first resolution stays
    assert await st.resolve_recon_exception("nope", "n", "t") is None
    assert len(await st.recon_exceptions()) == 3


async def test_settlement_group_keeps_entries_other_groups_acknowledged(store_case: StoreCase) -> None:
    st = store_case.store
    await st.open_event_group("settlement")
    await st.append_events(3, [{"event_id": "e1", "type": "payment.succeeded"}])
    hooks = await st.read_events("webhooks", "w1")
    await st.ack_events("webhooks", hooks)
    got = await st.read_events("settlement", "s1")
    assert [e.event["event_id"] for e in got] == ["e1"]  # still there for settlement
    await st.ack_events("settlement", got)
    assert await st.outbox_backlog("settlement") == 0
    await st.open_event_group("settlement")  # idempotent
    assert await st.read_events("settlement", "s1") == []


async def test_get_payments_reads_many_in_order(store_case: StoreCase) -> None:
    from gateway.testing.settlement import make_payment

    st = store_case.store
    recs = [make_payment(f"pay-{n:02d}", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=100 + n)
            for n in range(40)]
    for r in recs:
        await st.create_payment(r)
    ids = [r.payment_id for r in reversed(recs)] + ["nope"]
    got = await st.get_payments(ids)
    assert got == [*reversed(recs), None]
    assert await st.get_payments([]) == []
