"""``qrgw settle close`` and ``qrgw recon`` in-process over a MemoryStore fed like the
orchestrator feeds it (final changes with their events)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from test_settlement_cli import use_store
from test_settlement_close import succeed

from gateway.cli import main
from gateway.settlement.windows import GROUP
from gateway.store.memory import MemoryStore

D = "2026-03-02"


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
    s = MemoryStore()

    async def fill() -> None:
        await s.open_event_group(GROUP)
        await succeed(s, "p1", "alipay-cn", "kakaopay-kr", 5000)
        await succeed(s, "p2", "alipay-cn", "alipay-cn", 700)

    asyncio.run(fill())
    return use_store(monkeypatch, s)


def test_close_then_import_resolve(store: MemoryStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settle", "close", "--window", D]) == 0
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert doc["closed_now"] is True and doc["items"] == 2 and "only sees its own process" in out.err
    assert main(["settle", "close", "--window", D]) == 0
    assert json.loads(capsys.readouterr().out)["closed_now"] is False  # idempotent

    batch = asyncio.run(store.get_batch(D, "alipay-cn"))
    assert batch is not None
    rows = [dict(zip(batch["columns"], r, strict=True)) for r in batch["rows"]]
    lines = ["business_day,partner_ref,gateway_ref,type,currency,amount,status"]
    for r in rows:
        amount = int(r["amount"]) + (1 if r["gateway_ref"] == "p2-cr" else 0)  # one minor unit off
        lines.append(f"{D},ref-{r['gateway_ref']},{r['gateway_ref']},{r['type']},{r['currency']},{amount},SUCCEEDED")
    lines.append(f"{D},ref-x,p9-db,debit,CNY,5,FAILED")  # failed and unknown: no money moved, no exception
    f = tmp_path / "alipay-cn.csv"
    f.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    args = ["recon", "import", "--partner", "alipay-cn", "--window", D, "--family", "qrgw", str(f)]
    assert main(args) == 1
    (found,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert (found["kind"], found["gateway_ref"], found["partner_amount"]) == ("amount_differs", "p2-cr", "701")
    assert main(args) == 1 and "0 new" in capsys.readouterr().err  # a re-import adds nothing

    assert main(["recon", "resolve", found["exception_id"], "--note", "partner corrected its file"]) == 0
    assert json.loads(capsys.readouterr().out)["note"] == "partner corrected its file"
    assert main(["recon", "exceptions", "--window", D, "--open"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["recon", "resolve", "rx_nope", "--note", "n"]) == 2
    f.write_text("business_day,partner_ref\n", encoding="utf-8")
    assert main(args) == 2 and "VALIDATION_ERROR" in capsys.readouterr().err
    assert main(["recon", "import", "--partner", "alipay-cn", "--window", "2026-03-09", "--family", "qrgw",
                 str(f)]) == 2
    assert "SETTLEMENT_NOT_FOUND" in capsys.readouterr().err
