"""``qrgw settle`` in-process over a MemoryStore filled through the Store port (create_payment,
update_payment with extra_days for a later refund): report, --check, --fx-report."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

import gateway.store.factory
from gateway.cli import main
from gateway.settlement.csvio import read_tables
from gateway.store.memory import MemoryStore
from gateway.testing.settlement import T0, add_refund, make_payment
from schemas.payment import Payer, PaymentStatus

DAY, NEXT = "2026-03-02", "2026-03-03"


async def fill(store: MemoryStore) -> None:
    flagged = make_payment(
        "p-fx", wallet="kakaopay-kr", acquirer="alipay-cn", merchant_minor=800_000, flags=["report"],
        payer=Payer(id="kr-user-1", residency="resident", country="KR", name="KIM"),
        reservation={"reservation_id": "p-fx", "usd_equivalent": {"currency": "USD", "value": "110577"}},
    )
    plain = make_payment("p-x", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=15000, flags=["report"])
    dom = make_payment("p-dom", wallet="kakaopay-kr", acquirer="kakaopay-kr", merchant_minor=5000)
    failed = make_payment("p-f", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=7,
                          status=PaymentStatus.FAILED, flags=["report"])
    for rec in (flagged, plain, dom, failed):
        await store.create_payment(rec)
    cur = await store.get_payment("p-x")
    assert cur is not None
    new = cur.model_copy(deep=True)
    add_refund(new, 5000, day=NEXT, at=T0.replace(day=3))
    await store.update_payment(new, expected_version=cur.version, reason="refund", extra_days=[NEXT])


def use_store(monkeypatch: pytest.MonkeyPatch, s: MemoryStore) -> MemoryStore:
    """Make the CLI open ``s`` (and leave it open) instead of the configured store."""

    async def open_store(_settings: Any) -> MemoryStore:
        return s

    async def no_close() -> None:
        return None

    monkeypatch.setattr(gateway.store.factory, "open_store", open_store)
    monkeypatch.setattr(s, "aclose", no_close)
    return s


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
    s = MemoryStore()
    asyncio.run(fill(s))
    return use_store(monkeypatch, s)


def test_report_json_csv_and_check(store: MemoryStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "day.json"
    assert main(["settle", "--date", DAY, "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["balanced"] is True and rep["offenses"] == []
    assert sorted(i["item_id"] for i in rep["items"]) == ["p-dom", "p-f", "p-fx", "p-x"]
    assert all(int(b["difference"]) == 0 for b in rep["balance"])
    assert main(["settle", "--date", NEXT, "--partner", "alipay-cn", "--format", "csv"]) == 0
    captured = capsys.readouterr()
    (item,) = read_tables(captured.out)["items"]
    assert (item["kind"], item["payment_id"], item["role"], item["partner_id"]) == ("refund", "p-x", "wallet",
                                                                                  "alipay-cn")
    assert "only sees its own process" in captured.err  # memory:// cannot see a server's payments
    assert main(["settle", "--date", DAY, "--check"]) == 0
    assert "balanced" in capsys.readouterr().out.splitlines()[-1]


def test_check_fails_listing_the_offending_item(store: MemoryStore, capsys: pytest.CaptureFixture[str]) -> None:
    async def corrupt() -> None:
        cur = await store.get_payment("p-dom")
        assert cur is not None
        new = cur.model_copy(deep=True)
        new.payer_amount = new.payer_amount.of("KRW", 5001)
        await store.update_payment(new, expected_version=cur.version, reason="corrupted by the test")

    asyncio.run(corrupt())
    assert main(["settle", "--date", DAY, "--check"]) == 1
    captured = capsys.readouterr()
    assert "NOT balanced" in captured.out.splitlines()[-1]
    assert "ITEM_UNBALANCED p-dom" in captured.err and "DAY_UNBALANCED day: KRW: difference +1" in captured.err


def test_fx_report(store: MemoryStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settle", "--date", DAY, "--fx-report"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["payment_id"] for r in rows] == ["p-fx", "p-x"]  # failed and domestic are not reported
    fx, x = rows
    assert (fx["payer_residency"], fx["payer_country"], fx["payer_name"]) == ("resident", "KR", "KIM")
    assert (fx["merchant_currency"], fx["merchant_amount"]) == ("CNY", "8000.00")
    assert fx["payer_currency"] == "KRW" and int(fx["payer_amount"]) > 0
    assert (fx["usd_equivalent"], fx["usd_source"], fx["purpose_code"]) == ("1105.77", "policy", "GDSV")
    # No recorded USD equivalent: from the configured mid-rate table (USD/KRW), half-up to cents.
    assert (x["merchant_currency"], x["merchant_amount"], x["usd_source"]) == ("KRW", "15000", "rates")
    assert x["usd_equivalent"] != ""


def test_bad_date_is_a_usage_error(store: MemoryStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settle", "--date", "2026-13-01"]) == 2
    assert "VALIDATION_ERROR" in capsys.readouterr().err
