"""The sandbox books and fault plan, without HTTP."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.sandbox.faults import Fault, FaultPlan, parse_faults
from adapters.sandbox.ledger import (
    CLOSED,
    EXCEEDS,
    INCONSISTENT,
    INSUFFICIENT,
    Ledger,
    merge_sums,
    violations,
)
from schemas.errors import ValidationFailed


def test_debit_is_idempotent_and_moves_money_once() -> None:
    led = Ledger("w", "KRW", balances={"u": 1000}, default_balance=None)
    a = led.debit("d1", "p1", "u", 300, "KRW")
    b = led.debit("d1", "p1", "u", 300, "KRW")
    assert a == b and a.ok
    assert led.balances["u"] == 700
    assert led.debit("d1", "p1", "u", 301, "KRW").code == INCONSISTENT
    assert led.debit("d2", "p2", "u", 701, "KRW").code == INSUFFICIENT
    assert led.balances["u"] == 700


def test_cancel_before_debit_refuses_the_late_debit() -> None:
    led = Ledger("w", "KRW", balances={"u": 1000})
    assert led.cancel_debit("d1").ok
    late = led.debit("d1", "p1", "u", 100, "KRW")
    assert not late.ok and late.code == CLOSED
    assert led.balances["u"] == 1000


def test_refunds_bounded_by_the_debit() -> None:
    led = Ledger("w", "CNY", balances={"u": 1000})
    led.debit("d1", "p1", "u", 600, "CNY")
    assert led.refund("r1", "d1", 200, "CNY").ok
    assert led.refund("r1", "d1", 200, "CNY").ok  # repeat: first answer, no second refund
    assert led.refund("r2", "d1", 401, "CNY").code == EXCEEDS
    assert led.refund("r3", "d1", 400, "CNY").ok
    assert led.balances["u"] == 1000
    assert led.cancel_debit("d1").code == EXCEEDS  # nothing left to cancel


def test_reversal_and_invariant_across_ledgers() -> None:
    wallet = Ledger("w", "CNY", balances={"u": 10_000})
    acq = Ledger("a", "KRW")
    wallet.debit("d1", "p1", "u", 785, "CNY")
    assert violations(merge_sums(wallet, acq)) == ["p1: payer debited 785 CNY without merchant credit"]
    acq.credit("c1", "p1", "m1", 15000, "KRW")
    assert violations(merge_sums(wallet, acq)) == []
    assert acq.reverse("c1", "v1", 15000, "KRW").ok
    assert acq.merchants["m1"] == 0
    assert violations(merge_sums(wallet, acq)) == ["p1: payer debited 785 CNY without merchant credit"]
    assert wallet.cancel_debit("d1").ok
    assert violations(merge_sums(wallet, acq)) == []


OP = st.sampled_from(["debit", "cancel", "refund"])
OPS = st.lists(st.tuples(OP, st.integers(0, 3), st.integers(1, 500)))


@settings(max_examples=60, deadline=None)
@given(OPS)
def test_balance_is_conserved(ops: list[tuple[str, int, int]]) -> None:
    led = Ledger("w", "KRW", balances={"u": 2000})
    for i, (op, n, amount) in enumerate(ops):
        if op == "debit":
            led.debit(f"d{n}", f"p{n}", "u", amount, "KRW")
        elif op == "cancel":
            led.cancel_debit(f"d{n}")
        else:
            led.refund(f"r{i}", f"d{n}", amount, "KRW")
    taken = sum(d.taken for d in led.debits.values())
    assert led.balances["u"] + taken == 2000
    assert led.balances["u"] >= 0


def test_fault_specs() -> None:
    assert parse_faults("latency=200,U") == [Fault("latency", "200"), Fault("U")]
    assert parse_faults("F=USER_BALANCE_NOT_ENOUGH")[0].before
    assert not parse_faults("timeout")[0].before
    assert parse_faults("drop=before")[0].before
    for bad in ("boom", "latency=x", "F", "U=1", "timeout=later"):
        with pytest.raises(ValidationFailed):
            parse_faults(bad)


def test_fault_queue_match_and_rates() -> None:
    plan = FaultPlan(seed=7)
    plan.push("pay", "U", count=2, match="d9")
    assert plan.choose("pay", ("d1",)) == []
    assert plan.choose("pay", ("d9",)) == [Fault("U")]
    assert plan.choose("pay", ("d9",)) == [Fault("U")]
    assert plan.choose("pay", ("d9",)) == []
    plan.configure({"rates": {"refund": {"5xx": 1.0}}})
    assert plan.choose("refund") == [Fault("5xx")]
    assert plan.choose("pay", header="drop") == [Fault("drop")]
    plan.configure({"clear": True})
    assert plan.choose("refund") == []
    assert plan.describe()["injected"] == {"U": 2, "5xx": 1, "drop": 1}
