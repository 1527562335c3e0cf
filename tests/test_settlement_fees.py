"""Fees (PROTOCOL.md §9.1): bps + fixed per partner and role, half-up once per item, returned in
proportion by refunds and whole by cancels; the day balance holds with them to the unit."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_settlement import DAY, IDS, build, payment_spec

from gateway.settlement import check_day, day_balance, load_day
from gateway.settlement.fees import FeeSchedule, Rate, payment_fees, refund_fees
from gateway.testing.settlement import DayIndexStore, add_refund, make_payment


def half_up(num: int, den: int) -> int:
    """Independent of the code under test: integer half-up of num/den (num, den >= 0)."""
    return (2 * num + den) // (2 * den)


def test_rate_is_bps_plus_fixed_rounded_half_up_once() -> None:
    assert Rate(25, 0).on(200) == 1  # 0.5 -> 1
    assert Rate(25, 0).on(199) == 0  # 0.4975 -> 0
    assert Rate(50, 10).on(15000) == 85
    assert Rate(50, 10).on(0) == 0  # nothing moved, nothing charged


def test_refunds_return_the_fee_in_proportion_and_all_of_it_at_the_end() -> None:
    fees = FeeSchedule({"kakaopay-kr": {"wallet": Rate(33, 0), "acquirer": Rate(50, 7)}})
    rec = make_payment("p", wallet="kakaopay-kr", acquirer="kakaopay-kr", merchant_minor=10001)
    charged = payment_fees(rec, fees)
    assert charged == (half_up(10001 * 33, 10000), half_up(10001 * 50, 10000) + 7)
    back = []
    for part in (3333, 3333, 3335):
        r = add_refund(rec, part, day=DAY)
        back.append(refund_fees(rec, r.refund_id, fees))
    assert back[0] == (half_up(charged[0] * 3333, 10001), half_up(charged[1] * 3333, 10001))
    assert tuple(map(sum, zip(*back, strict=True))) == charged  # everything refunded: every fee returned


fee_rates = st.fixed_dictionaries({p: st.fixed_dictionaries({
    "wallet": st.builds(Rate, st.integers(0, 300), st.integers(0, 50)),
    "acquirer": st.builds(Rate, st.integers(0, 300), st.integers(0, 50))}) for p in IDS})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(payment_spec, min_size=1, max_size=15), fee_rates)
def test_random_days_balance_with_fees(specs: list[dict[str, Any]], rates: dict[str, Any]) -> None:
    fees = FeeSchedule(rates)
    store = DayIndexStore()
    for rec in build(specs):
        store.put(rec)
    d = asyncio.run(load_day(store, DAY, fees))
    assert check_day(d) == []
    expected: dict[str, int] = defaultdict(int)
    for i in d.items:
        if i.settles:
            sign = 1 if i.kind == "payment" else -1
            expected[i.payer_currency] += sign * i.wallet_fee
            expected[i.merchant_currency] += sign * i.acquirer_fee
    balance = day_balance(d.items)
    for cur, b in balance.items():
        assert b.difference == 0
        assert b.fees == expected.get(cur, 0)
