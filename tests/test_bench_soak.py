"""The soak's checks catch each kind of violation, and its sandbox process serves faults and state."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import _harness  # noqa: E402
import _stack  # noqa: E402
from _soakcheck import Fate, Payment, verify  # noqa: E402


def ledger(debited: int = 0, returned: int = 0, credited: int = 0, reversed_: int = 0,
           live_debits: int = 0) -> dict[str, int]:
    return {"debited": debited, "returned": returned, "credited": credited, "credit_reversed": reversed_,
            "live_debits": live_debits, "live_credits": 1 if credited > reversed_ else 0}


def snapshot(payments: dict[str, dict[str, int]], events: dict[str, list[list[str]]] | None = None,
             violations: list[str] | None = None) -> dict[str, Any]:
    return {"payments": payments, "events": events or {}, "violations": violations or []}


def fate(*payments: Payment) -> Fate:
    return Fate(accepted={p.payment_id: p for p in payments})


def test_consistent_books_have_no_violation() -> None:
    ok = Payment("p1", "alipay-cn", "SUCCEEDED", "alipay-cn", "kakaopay-kr")
    failed = Payment("p2", "kakaopay-kr", "FAILED", "kakaopay-kr", "kakaopay-kr")
    books = {"p1": ledger(debited=100, credited=15000, live_debits=1), "p2": ledger(debited=50, returned=50)}
    events = {"alipay-cn": [["e1", "payment.succeeded", "p1"]],
              "kakaopay-kr": [["e1", "payment.succeeded", "p1"], ["e2", "payment.failed", "p2"]]}
    counts, bad = verify(fate(ok, failed), snapshot(books, events), webhooks=True)
    assert bad == []
    assert counts["status SUCCEEDED"] == 1 and counts["webhooks missing"] == 0


def test_each_violation_is_reported() -> None:
    stuck = Payment("p1", "alipay-cn", "PROCESSING", "alipay-cn", "kakaopay-kr")
    twice = Payment("p2", "alipay-cn", "SUCCEEDED", "alipay-cn", "kakaopay-kr")
    failed_but_debited = Payment("p3", "kakaopay-kr", "FAILED", "kakaopay-kr", "alipay-cn")
    books = {
        "p1": ledger(),
        "p2": ledger(debited=200, credited=15000, live_debits=2),
        "p3": ledger(debited=70),
        "ghost": ledger(debited=10, live_debits=1),
    }
    _, bad = verify(fate(stuck, twice, failed_but_debited),
                    snapshot(books, violations=["ghost: payer debited 10 CNY without merchant credit"]),
                    webhooks=True)
    text = "\n".join(bad)
    assert "p1: still PROCESSING" in text
    assert "p2: payer debited 2 times" in text
    assert "p3: FAILED but ledgers say payer out 70" in text
    assert "ghost: money moved for a payment no caller ever got back" in text
    assert "ledger: ghost" in text
    assert "p2: payment.succeeded not delivered to kakaopay-kr" in text
    _, without = verify(fate(twice), snapshot({"p2": ledger(debited=1, credited=1, live_debits=1)}),
                        webhooks=False)
    assert without == []


def test_sandbox_process_serves_state_and_faults(tmp_path: Path) -> None:
    procs = _harness.Procs(tmp_path)
    try:
        proc, doc = _stack.start_sandboxes(procs, tmp_path, store_url="memory://")
        assert set(doc["partners"]) == {"kakaopay-kr", "alipay-cn", "openwallet-sg"}
        assert Path(doc["config"]).exists()
        spec = _stack.journeys(doc["partners"])
        assert {j["partner"] for j in spec} == {"alipay-cn", "kakaopay-kr"}
        set_ = httpx.post(f"{doc['control']}/faults", json={"rates": {"*": {"U": 0.5}}}, timeout=10)
        assert set_.json()["alipay-cn"]["rates"] == {"*": {"U": 0.5}}
        st = httpx.get(f"{doc['control']}/state", timeout=10).json()
        assert st["payments"] == {} and st["violations"] == []
        assert set(st["events"]) == set(doc["partners"])
    finally:
        procs.stop_all()
    assert proc.popen.poll() is not None
