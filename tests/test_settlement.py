"""Settlement reports over random business days of PaymentRecords built directly.

The expected money is computed independently of the report code, from the generated
payments: what each wallet was debited, each acquirer credited, and the margin at the mid
rate of the topology's USD table (not the record's snapshot)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.settlement import check_day, day_balance, day_report, load_day, partner_report, to_csv
from gateway.settlement.balance import record_offenses
from gateway.settlement.csvio import read_tables
from gateway.testing.settlement import (
    PARTNERS,
    T0,
    DayIndexStore,
    add_cancel,
    add_refund,
    convert,
    make_payment,
    mid_rate,
)
from schemas.payment import PaymentRecord, PaymentStatus

DAY, PREV, NEXT = "2026-03-02", "2026-03-01", "2026-03-03"
IDS = sorted(PARTNERS)

payment_spec = st.fixed_dictionaries({
    "wallet": st.sampled_from(IDS),
    "acquirer": st.sampled_from(IDS),
    "amount": st.integers(1, 5_000_000),
    "day": st.sampled_from([PREV, DAY, DAY]),
    "outcome": st.sampled_from([PaymentStatus.SUCCEEDED] * 3 + [PaymentStatus.FAILED, PaymentStatus.PROCESSING]),
    "spread": st.integers(0, 300),
    "after": st.sampled_from(["none", "cancel", "refunds"]),
    "later": st.booleans(),
    "reversal_ok": st.booleans(),
    "cuts": st.lists(st.integers(1, 1000), min_size=1, max_size=4),
    "full": st.booleans(),
})


def build(specs: list[dict[str, Any]]) -> list[PaymentRecord]:
    out = []
    for n, s in enumerate(specs):
        at = T0 + timedelta(minutes=n) - (timedelta(days=1) if s["day"] == PREV else timedelta(0))
        rec = make_payment(f"pay{n:03d}", wallet=s["wallet"], acquirer=s["acquirer"], merchant_minor=s["amount"],
                           day=s["day"], status=s["outcome"], spread_bps=s["spread"], at=at)
        later_day = NEXT if s["day"] == DAY else DAY
        rday = later_day if s["later"] else s["day"]
        if s["outcome"] == PaymentStatus.SUCCEEDED and s["after"] == "cancel":
            add_cancel(rec, day=rday, status="SUCCEEDED" if s["reversal_ok"] else "FAILED")
        elif s["outcome"] == PaymentStatus.SUCCEEDED and s["after"] == "refunds":
            left = rec.merchant_amount.minor
            for k, cut in enumerate(s["cuts"]):
                amount = left if (s["full"] and k == len(s["cuts"]) - 1) else min(left, max(1, left * cut // 2000))
                if amount <= 0:
                    break
                ok = s["reversal_ok"] or k % 2 == 0
                add_refund(rec, amount, day=rday if k % 2 else s["day"], status="SUCCEEDED" if ok else "FAILED",
                           at=at + timedelta(hours=k + 1))
                if ok:
                    left -= amount
        out.append(rec)
    return out


def expected_money(records: list[PaymentRecord], day: str) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Per partner per currency what it owes the gateway (net), and the margin per payer currency."""
    owes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    margin: dict[str, int] = defaultdict(int)
    settled = {PaymentStatus.SUCCEEDED, PaymentStatus.CANCELLED, PaymentStatus.PARTIALLY_REFUNDED,
               PaymentStatus.REFUNDED}

    def leg(rec: PaymentRecord, sign: int, payer: int, merchant: int) -> None:
        pc, mc = rec.payer_amount.currency, rec.merchant_amount.currency
        owes[rec.route.wallet][pc] += sign * payer
        owes[rec.route.acquirer][mc] -= sign * merchant
        if pc != mc:
            margin[pc] += sign * (payer - convert(merchant, mc, mid_rate(mc, pc), pc))

    for rec in records:
        if rec.business_day == day and rec.status in settled:
            leg(rec, 1, rec.payer_amount.minor, rec.merchant_amount.minor)
        if rec.cancel and rec.cancel.business_day == day and rec.cancel.status == "SUCCEEDED":
            leg(rec, -1, rec.payer_amount.minor, rec.merchant_amount.minor)
        for r in rec.refunds:
            if r.business_day == day and r.status == "SUCCEEDED":
                leg(rec, -1, r.payer_amount.minor, r.amount.minor)
    return owes, margin


def load(records: list[PaymentRecord], day: str = DAY) -> Any:
    store = DayIndexStore()
    for rec in records:
        store.put(rec)
    return asyncio.run(load_day(store, day))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(payment_spec, min_size=1, max_size=20))
def test_random_days_balance_exactly(specs: list[dict[str, Any]]) -> None:
    records = build(specs)
    d = load(records)
    assert check_day(d) == []
    owes, margin = expected_money(records, DAY)
    items = d.items
    for pid in IDS:
        report = partner_report(items, pid, DAY, "Asia/Seoul")
        nets = {p["currency"]: int(p["net"]) for p in report["positions"]}
        assert {c: v for c, v in nets.items() if v} == {c: v for c, v in owes[pid].items() if v}
    balance = day_balance(items)
    for cur, b in balance.items():
        assert b.difference == 0
        assert b.margin == margin.get(cur, 0)
        assert b.owed_by_wallets - b.owed_to_acquirers == sum(o.get(cur, 0) for o in owes.values())


@settings(max_examples=25, deadline=None)
@given(st.lists(payment_spec, min_size=1, max_size=12), st.sampled_from(IDS))
def test_csv_and_json_agree(specs: list[dict[str, Any]], partner: str) -> None:
    d = load(build(specs))
    for report in (partner_report(d.items, partner, DAY, "Asia/Seoul", show_fx=True), day_report(d, "Asia/Seoul")):
        tables = read_tables(to_csv(report))
        assert all(r["partner_id"] for r in tables["items"] + tables["positions"])
        if "positions" in report:
            items = tables["items"]
        else:  # the day report lists an item once per partner on its route: take the wallet's copy
            items = [r for r in tables["items"] if r["partner_id"] == r["wallet"]]
        assert [r["item_id"] for r in items] == [i["item_id"] for i in report["items"]]
        for row, item in zip(items, report["items"], strict=True):
            assert row["payer_amount"] == item["payer_amount"]["value"]
            assert row["merchant_amount"] == item["merchant_amount"]["value"]
            assert row["margin"] == item["margin"]["value"]
            assert row["settles"] == str(item["settles"]).lower()
            assert row["status"] == item["status"] and row["rate"] == (item["rate"] or "")
        positions = {(r["partner_id"], r["currency"]): r for r in tables["positions"]}
        groups = ([(report["partner_id"], report["positions"])] if "positions" in report
                  else [(p["partner_id"], p["positions"]) for p in report["partners"]])
        assert len(positions) == sum(len(ps) for _, ps in groups)
        for pid, ps in groups:
            for p in ps:
                row = positions[(pid, p["currency"])]
                assert all(row[k] == p[k] for k in ("wallet_gross", "wallet_reversals", "net"))
        # The positions recomputed from the CSV's own item rows agree with its position rows.
        if "positions" in report:
            net: dict[str, int] = defaultdict(int)
            for r in items:
                if r["settles"] != "true":
                    continue
                sign = 1 if r["kind"] == "payment" else -1
                if r["wallet"] == partner:
                    net[r["payer_currency"]] += sign * int(r["payer_amount"])
                if r["acquirer"] == partner:
                    net[r["merchant_currency"]] -= sign * int(r["merchant_amount"])
            assert {c: str(v) for c, v in net.items()} == {c: r["net"] for (_, c), r in positions.items()}
        margins = tables["margins"]
        assert [(r["pair"], r["margin"]) for r in margins] == [(m["pair"], m["margin"]) for m in report["fx_margin"]]


def test_mixed_day_report_layout() -> None:
    seoul = make_payment("p-dom", wallet="kakaopay-kr", acquirer="kakaopay-kr", merchant_minor=15000)
    cn = make_payment("p-cn", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=15000, spread_bps=50,
                      at=T0 + timedelta(minutes=1))
    refunded = make_payment("p-ref", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=10000,
                            at=T0 + timedelta(minutes=2))
    add_refund(refunded, 4000, day=DAY)
    cancelled = make_payment("p-cx", wallet="kakaopay-kr", acquirer="alipay-cn", merchant_minor=12345,
                             at=T0 + timedelta(minutes=3))
    add_cancel(cancelled, day=NEXT)
    failed = make_payment("p-fail", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=999,
                          status=PaymentStatus.FAILED, at=T0 + timedelta(minutes=4))
    d = load([seoul, cn, refunded, cancelled, failed])
    report = partner_report(d.items, "alipay-cn", DAY, "Asia/Seoul", show_fx=True)
    kinds = [(i["kind"], i["item_id"], i["role"], i["settles"]) for i in report["items"]]
    assert kinds == [("payment", "p-cn", "wallet", True), ("payment", "p-ref", "wallet", True),
                     ("payment", "p-cx", "acquirer", True), ("payment", "p-fail", "wallet", False),
                     ("refund", "p-ref-rf1", "wallet", True)]
    cny = next(p for p in report["positions"] if p["currency"] == "CNY")
    paid = cn.payer_amount.minor + refunded.payer_amount.minor
    back = refunded.refunds[0].payer_amount.minor
    assert (int(cny["wallet_gross"]), int(cny["wallet_reversals"])) == (paid, back)
    assert int(cny["acquirer_gross"]) == 12345 and int(cny["net"]) == paid - back - 12345
    assert [m["pair"] for m in report["fx_margin"]] == ["CNY/KRW", "KRW/CNY"]
    # The cancel of p-cx belongs to the next day: there it reverses exactly what the payment moved.
    nxt = load([seoul, cn, refunded, cancelled, failed], NEXT)
    (item,) = nxt.items
    assert (item.kind, item.payer_amount, item.merchant_amount) == ("cancel", cancelled.payer_amount.minor, 12345)
    assert day_report(nxt, "Asia/Seoul")["balanced"] is True


def test_check_lists_offending_items() -> None:
    good = make_payment("p-ok", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=20000)
    add_refund(good, 5000, day=DAY)
    bad_dom = make_payment("p-dom", wallet="kakaopay-kr", acquirer="kakaopay-kr", merchant_minor=15000)
    bad_dom.payer_amount = bad_dom.payer_amount.of("KRW", 15001)
    bad_ref = make_payment("p-ref", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=10000)
    add_refund(bad_ref, 10000, day=DAY)
    bad_ref.refunds[0].payer_amount = bad_ref.refunds[0].payer_amount.of("CNY", bad_ref.payer_amount.minor + 1)
    no_mid = make_payment("p-mid", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=30000)
    assert no_mid.quote is not None
    del no_mid.quote["mid_rate"]
    d = load([good, bad_dom, bad_ref, no_mid])
    offenses = check_day(d)
    by_payment = defaultdict(set)
    for o in offenses:
        by_payment[o.payment_id].add(o.code)
    assert by_payment == {
        "p-dom": {"RECORD_INCONSISTENT", "ITEM_UNBALANCED"},
        "": {"DAY_UNBALANCED"},
        "p-ref": {"RECORD_INCONSISTENT"},
        "p-mid": {"RECORD_INCONSISTENT"},
    }
    assert record_offenses(good) == []
    assert any("KRW: difference +1" in o.detail for o in offenses)


def test_missing_record_is_an_offense() -> None:
    class Gappy(DayIndexStore):
        async def payments_of_day(self, day: str) -> list[str]:
            return [*await super().payments_of_day(day), "pay_gone"]

    store = Gappy()
    store.put(make_payment("p1", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=100))
    d = asyncio.run(load_day(store, DAY))
    assert [(o.payment_id, o.code) for o in check_day(d)] == [("pay_gone", "RECORD_MISSING")]
