"""``qrgw demo`` as a newcomer runs it (a real subprocess), its ``--json`` summary, and a demo
that must notice when a journey does not end as expected."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from gateway.demo import run_demo
from gateway.sandbox_env import SandboxEnvironment

EXPONENT = {"KRW": 0, "CNY": 2}  # ISO 4217 minor units
TIMEOUT_S = 60  # a hang must fail the test, not the suite; the demo itself takes a few seconds


def qrgw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args], capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


def test_demo_runs_every_journey_and_balances_the_day() -> None:
    proc = qrgw("demo")
    out = proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for n in (1, 2, 3):
        assert f"result  journey {n} SUCCEEDED" in out
    # the routes the routing table gives the shared Seoul QR and the Shanghai QR
    assert "alipay-cn (wallet) -> kakaopay-kr (acquirer), cross-border, via template com.kakaopay" in out
    assert "kakaopay-kr (wallet) -> alipay-cn (acquirer), cross-border, via template com.alipay" in out
    assert "kakaopay-kr (wallet) -> kakaopay-kr (acquirer), domestic" in out
    # amounts with their currency's decimals, in both currencies
    assert re.search(r"38,000 KRW = \d+\.\d\d CNY \| mid [\d.]+ \+ spread 80 bps = all-in [\d.]+ CNY per KRW", out)
    assert re.search(r"86\.50 CNY = [\d,]+ KRW \| mid [\d.]+ \+ spread 80 bps", out)
    assert "merchant HANGANG BBQ gets 15,000 KRW" in out
    assert "PARTIALLY_REFUNDED | refund SUCCEEDED: merchant returns 12,000 KRW" in out
    assert "-> 200 CANCELLED | cancel SUCCEEDED" in out
    # every answer verified with the gateway's key; each partner signs with its own
    assert "request signed alipay-cn-sbx-1, response verified qrgw-sbx-ed25519" in out
    assert "request signed kakaopay-kr-sbx-1, response verified qrgw-sbx-ed25519" in out
    assert "outbound (resident paying abroad)" in out and "on KR:annual:" in out  # counters per jurisdiction
    assert re.search(r"\d{4}-\d\d-\d\d: 3 payment\(s\), \d+ settled item\(s\), 0 offense\(s\)", out)
    assert "difference +0" in out and "difference +1" not in out
    assert "qrgw demo: OK, every journey ended as expected" in out
    assert "Traceback" not in proc.stderr


def _money(m: dict[str, str]) -> tuple[int, str]:
    return int(m["value"]), m["currency"]


def test_demo_json_summary_is_consistent() -> None:
    proc = qrgw("demo", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)  # stdout is the JSON document only
    assert doc["ok"] is True and doc["failures"] == [] and doc["error"] is None
    j1, j2, j3 = doc["journeys"]
    assert [j["status"] for j in (j1, j2, j3)] == ["SUCCEEDED"] * 3
    assert (j1.get("status_after"), j2.get("status_after"), j3.get("status_after")) == (
        "PARTIALLY_REFUNDED", None, "CANCELLED"
    )
    assert j1["route"] == {"wallet": "alipay-cn", "acquirer": "kakaopay-kr", "kind": "cross-border"}
    assert j2["route"] == {"wallet": "kakaopay-kr", "acquirer": "alipay-cn", "kind": "cross-border"}
    assert j3["route"]["kind"] == "domestic" and j3["quote"] is None
    assert _money(j1["merchant_amount"]) == (38_000, "KRW") and _money(j2["merchant_amount"]) == (8_650, "CNY")
    for j in (j1, j2):  # the payer pays the locked quote: merchant amount x all-in rate, half up
        q = j["quote"]
        assert j["payer_amount"] == q["payer_amount"]
        merchant_major = Decimal(j["merchant_amount"]["value"]).scaleb(-EXPONENT[j["merchant_amount"]["currency"]])
        want = (merchant_major * Decimal(q["rate"])).scaleb(EXPONENT[q["payer_amount"]["currency"]])
        assert int(q["payer_amount"]["value"]) == int(want.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        assert Decimal(q["rate"]) > Decimal(q["mid_rate"]) and q["spread_bps"] == 80
    # balances moved by exactly: tourist paid minus refund (CNY), Korean paid Shanghai (the cancel returned)
    refund = j1["refund"]
    assert refund["status"] == "SUCCEEDED" and _money(refund["amount"]) == (12_000, "KRW")
    bal = doc["balances"]
    assert bal["alipay-cn"]["payers_moved"] == {
        "cn-tourist-1": str(-int(j1["payer_amount"]["value"]) + int(refund["payer_amount"]["value"]))
    }
    assert bal["kakaopay-kr"]["payers_moved"] == {"kr-user-1": str(-int(j2["payer_amount"]["value"]))}
    days = doc["settlement"]
    assert days and all(d["offenses"] == [] and set(d["differences"].values()) == {0} for d in days.values())
    assert sum(d["payments"] for d in days.values()) >= 3
    # The demo ends with the day's window closed and every sandbox's own file reconciled: nothing found.
    win = doc["window"]
    assert win["window"]["items"] == 5  # three payments, a refund, a cancel
    assert set(win["partners"]) == {"alipay-cn", "kakaopay-kr", "openwallet-sg"}
    assert all(p["exceptions"] == [] for p in win["partners"].values())
    assert win["partners"]["kakaopay-kr"]["rows"] >= 7
    steps = doc["steps"]
    assert {s["response_keyid"] for s in steps} == {"qrgw-sbx-ed25519"}
    assert {s["step"] for s in steps} == {"decode", "quote", "payment", "refund", "cancel"}
    assert all(c["ok"] for c in doc["checks"]) and len(doc["checks"]) >= 20


def test_demo_help_names_its_options() -> None:
    proc = qrgw("demo", "--help")
    assert proc.returncode == 0
    assert "--json" in proc.stdout and "sandbox" in proc.stdout


async def test_demo_fails_when_a_journey_does_not_end_as_expected(tmp_path: Path) -> None:
    def decline_tourist(env: SandboxEnvironment) -> None:  # the tourist's wallet declines the debit
        env.sandbox("alipay-cn").faults.push("pay", "F=USER_BALANCE_NOT_ENOUGH", count=3)

    lines: list[str] = []
    summary = await run_demo(tmp_path, emit=lines.append, prepare=decline_tourist)
    assert summary["ok"] is False
    assert any(f.startswith("journey 1: status SUCCEEDED (got FAILED)") for f in summary["failures"])
    assert summary["journeys"][0]["status"] == "FAILED"
    assert summary["error"] is not None and "refund" in summary["error"]  # nothing to refund: stops there
    assert lines[-1].startswith("qrgw demo: FAILED,")
    # what did run still balances: a declined payment moves no money
    assert summary["balances"]["alipay-cn"]["payers_moved"] == {}
    assert summary["settlement"] and all(d["offenses"] == [] for d in summary["settlement"].values())
    assert "  pay     POST /v1/payments -> 201 FAILED | payer cn-tourist-1 (non-resident, CN) nothing moved: " \
        "USER_BALANCE_NOT_ENOUGH" in "\n".join(lines)
