"""Matching rules of ``gateway.settlement.recon.reconcile`` on small hand-made batches and files,
including the VOID legs of a failed payment and the family importers."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.settlement.batch import COLUMNS
from gateway.settlement.recon import FileRow, parse_alipayplus, parse_kakaopay, parse_qrgw, reconcile
from schemas.errors import ValidationFailed


def row(kind: str, pid: str, typ: str, ref: str, amount: int, status: str = "SUCCEEDED", pref: str = "") -> list[str]:
    return [kind, pid, pid, "2026-03-02", "2026-03-02T01:00:00Z", "wallet", typ, ref, pref, "KRW", str(amount), "0",
            status]


def batch(*rows: list[str]) -> dict[str, Any]:
    return {"window_id": "2026-03-02", "partner_id": "kakaopay-kr", "columns": list(COLUMNS), "rows": list(rows)}


def f(ref: str, typ: str, amount: int, status: str = "SUCCEEDED", pref: str = "") -> FileRow:
    return FileRow(2, pref, ref, frozenset({typ}), "KRW", amount, status)


def kinds(found: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((e["kind"], e["gateway_ref"]) for e in found)


def test_a_failed_payment_is_fine_when_what_moved_came_back() -> None:
    b = batch(row("payment", "p1", "debit", "p1-db", 500, "VOID"),
              row("payment", "p1", "reversal", "p1-db", 500, "VOID"))
    assert reconcile(b, [f("p1-db", "debit", 500), f("p1-db", "reversal", 500)], "h") == []
    assert reconcile(b, [f("p1-db", "debit", 500, "FAILED")], "h") == []
    assert reconcile(b, [], "h") == []  # never reached the partner
    kept = reconcile(b, [f("p1-db", "debit", 500)], "h")  # debited, never given back
    assert [(e["kind"], e["partner_amount"]) for e in kept] == [("status_differs", "500")]


def test_partner_ref_when_the_gateway_ref_is_unknown_and_failed_rows() -> None:
    b = batch(row("payment", "p1", "debit", "p1-db", 700, pref="K-1"), row("payment", "p2", "debit", "p2-db", 300))
    found = reconcile(b, [f("garbled", "debit", 700, pref="K-1"), f("p2-db", "debit", 300, "FAILED"),
                          f("p3-db", "debit", 9, "FAILED"), f("p4-db", "debit", 9)], "h")
    assert kinds(found) == [("missing_at_gateway", "p4-db"), ("status_differs", "p2-db")]


def test_same_difference_twice_gets_two_ids() -> None:
    b = batch(row("payment", "p1", "debit", "p1-db", 700))
    found = reconcile(b, [f("p1-db", "debit", 700), f("p1-db", "debit", 700), f("p1-db", "debit", 700)], "h")
    assert kinds(found) == [("duplicate", "p1-db")] * 2 and len({e["exception_id"] for e in found}) == 2


def test_importers() -> None:
    q = parse_qrgw("business_day,partner_ref,gateway_ref,type,currency,amount,status\r\n"
                   "2026-03-02,r1,p1-db,debit,KRW,700,SUCCEEDED\r\n")
    assert q == [FileRow(2, "r1", "p1-db", frozenset({"debit"}), "KRW", 700, "SUCCEEDED")]
    a = parse_alipayplus("transactionId,transactionRequestId,transactionType,transactionTime,"
                         "transactionAmountValue,transactionAmountCurrency\r\n"
                         "A1,p1-db,PAYMENT,2026-03-02T10:00:00+09:00,1234,CNY\r\nA2,p1-rf1,REFUND,,34,CNY\r\n<END>\r\n")
    assert [(r.gateway_ref, r.types, r.amount) for r in a] == [
        ("p1-db", frozenset({"debit", "credit"}), 1234), ("p1-rf1", frozenset({"refund", "reversal"}), 34)]
    k = parse_kakaopay("cid,tid,aid,partner_order_id,partner_cancel_id,payment_action_type,amount,approved_at\r\n"
                       "C,T1,AT1,p1-db,,CANCEL,700,2026-03-02T10:00:00\r\nC,T2,AT2,p1-db,p1-rf1,CANCEL,70,\r\n", "KRW")
    assert [(r.gateway_ref, r.types) for r in k] == [("p1-db", frozenset({"reversal"})),
                                                     ("p1-rf1", frozenset({"refund", "reversal"}))]
    head = "business_day,partner_ref,gateway_ref,type,currency,amount,status\n"
    for bad in (head + "2026-03-02,r,g,debit,KRW,-1,SUCCEEDED\n", head + "2026-03-02,r,g,gift,KRW,1,SUCCEEDED\n",
                "gateway_ref,amount\ng,1\n"):
        with pytest.raises(ValidationFailed):
            parse_qrgw(bad)
