"""Closing windows on every Store (memory, Redis, Cluster), fed the way the orchestrator feeds
it: each final change is a ``update_payment`` with its event. Covers what a window takes, fees
and their proportional return, the balance over all batches, a crash between the frozen write
and the acknowledgement, and two closers at once."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import pytest

from gateway.events import payment_event
from gateway.settlement.batch import content_hash
from gateway.settlement.fees import FeeSchedule, Rate
from gateway.settlement.windows import GROUP, CloseConfig, close_window
from gateway.store.base import Store
from gateway.testing.redis import StoreCase
from gateway.testing.settlement import add_cancel, add_refund, make_payment
from schemas.errors import InvalidState
from schemas.payment import PaymentRecord, PaymentStatus
from schemas.settlement import Batch

FEES = FeeSchedule({"alipay-cn": {"wallet": Rate(30, 0), "acquirer": Rate(40, 0)},
                    "kakaopay-kr": {"wallet": Rate(20, 0), "acquirer": Rate(50, 10)}})
CFG = CloseConfig("Asia/Seoul", "24:00", FEES, show_fx=True, partners=("alipay-cn", "kakaopay-kr", "openwallet-sg"))
D1, D2, D3 = "2026-03-02", "2026-03-03", "2026-03-04"


async def succeed(st: Store, pid: str, wallet: str, acquirer: str, minor: int) -> PaymentRecord:
    rec = make_payment(pid, wallet=wallet, acquirer=acquirer, merchant_minor=minor, status=PaymentStatus.PROCESSING)
    await st.create_payment(rec)
    new = rec.model_copy(update={"status": PaymentStatus.SUCCEEDED})
    return await st.update_payment(new, expected_version=0, reason="t",
                                   events=[payment_event(new, "payment.succeeded")])


async def refund(st: Store, rec: PaymentRecord, minor: int) -> PaymentRecord:
    new = rec.model_copy(deep=True)
    r = add_refund(new, minor, day=new.business_day)
    return await st.update_payment(new, expected_version=rec.version, reason="t",
                                   events=[payment_event(new, "payment.refunded", refund_id=r.refund_id)])


async def cancel(st: Store, rec: PaymentRecord) -> PaymentRecord:
    new = rec.model_copy(deep=True)
    add_cancel(new, day=new.business_day)
    return await st.update_payment(new, expected_version=rec.version, reason="t",
                                   events=[payment_event(new, "payment.cancelled")])


async def batches(st: Store, wid: str) -> dict[str, dict[str, Any]]:
    w = await st.get_window(wid)
    assert w is not None
    out = {}
    for ref in w["batches"]:
        b = await st.get_batch(wid, ref["partner_id"])
        assert b is not None and b["content_hash"] == ref["content_hash"] == content_hash(dict(b))
        Batch.model_validate(b)
        out[ref["partner_id"]] = dict(b)
    return out


async def test_windows_take_what_became_final_since_the_last_close(store_case: StoreCase) -> None:
    st = store_case.store
    await st.open_event_group(GROUP)  # what a server does at start
    xb = await succeed(st, "p-xb", "alipay-cn", "kakaopay-kr", 100_000)
    dom = await succeed(st, "p-dom", "kakaopay-kr", "kakaopay-kr", 15000)
    await st.create_payment(make_payment("p-open", wallet="kakaopay-kr", acquirer="kakaopay-kr",
                                         merchant_minor=1, status=PaymentStatus.PROCESSING))
    xb = await refund(st, xb, 25_000)
    w1, closed = await close_window(st, D1, CFG, owner="t")
    assert closed and w1["items"] == 3  # p-open is not final: in no window yet
    b1 = await batches(st, D1)
    kk = {(r[0], r[5], r[6]): r for r in b1["kakaopay-kr"]["rows"]}
    assert set(kk) == {("payment", "acquirer", "credit"), ("payment", "wallet", "debit"),
                       ("refund", "acquirer", "reversal")}
    # 50 bps + 10 on the 100,000 KRW credit: 510; the refund of a quarter returns 128 (127.5 half-up).
    xb_credit = next(r for r in b1["kakaopay-kr"]["rows"] if r[1] == "p-xb" and r[0] == "payment")
    assert xb_credit[11] == "510" and kk[("refund", "acquirer", "reversal")][11] == "128"
    assert b1["openwallet-sg"]["rows"] == []  # nothing to settle is an answer too

    # Balance over the frozen batches: per currency, what wallets owe (fees included) minus
    # what acquirers are owed (net of fees) is the FX margin + fees + the gateway's conversion.
    net: dict[str, int] = defaultdict(int)
    for b in b1.values():
        for p in b["positions"]:
            net[p["currency"]] += int(p["net"])
    fees = defaultdict(int)
    for b in b1.values():
        for r in b["rows"]:
            fees[r[9]] += (1 if r[0] == "payment" else -1) * int(r[11])
    margin = sum(int(m["margin"]) for m in b1["alipay-cn"]["fx_margin"])
    mid = sum(int(m["mid_equivalent"]) for m in b1["alipay-cn"]["fx_margin"])
    merchant = sum(int(m["merchant_amount"]) for m in b1["alipay-cn"]["fx_margin"])
    assert net["CNY"] == margin + fees["CNY"] + mid
    assert net["KRW"] == fees["KRW"] - merchant

    # Final after the close: the next window, with the whole fee back on a cancel.
    dom = await cancel(st, dom)
    w2, _ = await close_window(st, D2, CFG, owner="t")
    assert w2["items"] == 1 and w2["previous"] == D1
    (wallet_row, acq_row) = sorted((await batches(st, D2))["kakaopay-kr"]["rows"], key=lambda r: r[5], reverse=True)
    assert (wallet_row[0], wallet_row[6], wallet_row[7], wallet_row[11]) == ("cancel", "reversal", "p-dom-db", "30")
    assert (acq_row[7], acq_row[11]) == ("p-dom-cxl", "85")
    with pytest.raises(InvalidState):  # windows close in order
        await close_window(st, D1.replace("02", "01"), CFG, owner="t")


async def test_a_crash_after_the_frozen_write_counts_nothing_twice(store_case: StoreCase,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    st = store_case.store
    await st.open_event_group(GROUP)
    await succeed(st, "p1", "alipay-cn", "kakaopay-kr", 5000)

    async def crash(group: str, entries: Any) -> None:
        raise RuntimeError("process died before acknowledging")

    with monkeypatch.context() as m:
        m.setattr(st, "ack_events", crash)
        with pytest.raises(RuntimeError):
            await close_window(st, D1, CFG, owner="dead")
    assert (await st.get_window(D1) or {})["items"] == 1  # the write happened
    await st.release_lease("settlement:close", "dead")  # (its lease would expire)
    await succeed(st, "p2", "alipay-cn", "kakaopay-kr", 7000)
    w2, _ = await close_window(st, D2, CFG, owner="next")
    assert w2["items"] == 1  # p2 only: p1's entry, met again, belongs to D1
    assert {r[1] for r in (await batches(st, D2))["alipay-cn"]["rows"]} == {"p2"}
    left = await st.read_events(GROUP, "x", 100)  # all acknowledged but the settlement.closed news
    assert {e.event["type"] for e in left} == {"settlement.closed"}
    assert {e.event["data"]["window_id"] for e in left} == {D2}  # D1's went out with D2's close


async def test_two_closers_at_once_freeze_one_window(store_case: StoreCase) -> None:
    st = store_case.store
    await st.open_event_group(GROUP)
    for n in range(20):
        await succeed(st, f"p{n:02d}", "kakaopay-kr", "alipay-cn", 1000 + n)
    results = await asyncio.gather(*(close_window(st, D3, CFG, owner=f"c{i}") for i in range(3)),
                                   return_exceptions=True)
    done = [r for r in results if not isinstance(r, BaseException)]
    assert [isinstance(r, InvalidState) for r in results if isinstance(r, BaseException)] == [True] * (3 - len(done))
    assert sum(1 for _w, closed in done if closed) == 1
    w = await st.get_window(D3)
    assert w is not None and w["items"] == 20
    w_again, closed = await close_window(st, D3, CFG, owner="late")
    assert not closed and w_again == w


async def test_the_due_window_closes_once_whoever_runs_the_loop(store_case: StoreCase) -> None:
    from datetime import datetime

    from gateway.settlement.closer import close_if_due
    from gateway.settlement.windows import due_window

    st = store_case.store
    await st.open_event_group(GROUP)
    await succeed(st, "p1", "alipay-cn", "kakaopay-kr", 5000)
    evening = CloseConfig("Asia/Seoul", "18:00", FEES, partners=CFG.partners)
    before = datetime.fromisoformat("2026-03-02T17:59:00+09:00")
    after = datetime.fromisoformat("2026-03-02T18:00:00+09:00")
    assert due_window(before, evening) == "2026-03-01" and due_window(after, evening) == "2026-03-02"
    assert due_window(after, CFG) == "2026-03-01"  # cut-off 24:00: D closes at the start of D+1
    got = await asyncio.gather(*(close_if_due(st, evening, f"gw{i}", after) for i in range(3)),
                               return_exceptions=True)
    assert got.count("2026-03-02") == 1  # the others found it closed, or the lease taken
    assert all(g is None or g == "2026-03-02" or isinstance(g, InvalidState) for g in got)
    w = await st.last_window()
    assert w is not None and w["window_id"] == "2026-03-02" and w["cut_off"] == "2026-03-02T09:00:00Z"
    assert await close_if_due(st, evening, "gw9", after) is None
