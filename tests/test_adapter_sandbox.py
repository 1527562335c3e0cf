"""Each adapter against its sandbox partner over real loopback HTTP."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx
import pytest

from adapters.base import AcquirerAdapter, WalletAdapter
from adapters.factory import build_adapters
from adapters.http import OutboundHttp
from gateway.config import load_settings
from gateway.qr import crc16
from gateway.sandbox_env import SandboxEnvironment
from gateway.signing import KeyRegistry, Signer, generate_key, sign_request
from gateway.testing.sandboxes import credit_request, debit_request
from schemas.money import MoneyModel as M

FAMILIES = {
    "openwallet-sg": ("SGD", "sg-user-1", "INSUFFICIENT_BALANCE"),
    "kakaopay-kr": ("KRW", "kr-user-1", "INSUFFICIENT_BALANCE"),
    "alipay-cn": ("CNY", "cn-tourist-1", "USER_BALANCE_NOT_ENOUGH"),
}
pytestmark = pytest.mark.parametrize("pid", list(FAMILIES))


def adapters(
    env: SandboxEnvironment, pid: str, http: OutboundHttp, **ep_changes: Any
) -> tuple[WalletAdapter, AcquirerAdapter]:
    ep = dataclasses.replace(env.endpoints()[pid], **ep_changes)
    wallet, acquirer = build_adapters(ep, env.gateway_registry(), http)
    assert wallet is not None and acquirer is not None
    return wallet, acquirer


async def test_full_cycle_is_idempotent(sandbox_env: SandboxEnvironment, pid: str) -> None:
    cur, payer, _ = FAMILIES[pid]
    sbx = sandbox_env.sandbox(pid)
    before = sbx.ledger.balance(payer)
    assert before is not None
    http = OutboundHttp()
    wallet, acquirer = adapters(sandbox_env, pid, http)
    req = debit_request(payer=payer, amount=M.of(cur, 1000))
    first = await wallet.pay(req)
    assert first.kind == "succeeded"
    assert await wallet.pay(req) == first
    assert (await wallet.inquire(req.debit_id)).kind == "succeeded"
    assert (await wallet.refund("r1" + req.debit_id, req.debit_id, M.of(cur, 300))).kind == "succeeded"
    assert (await wallet.refund("r1" + req.debit_id, req.debit_id, M.of(cur, 300))).kind == "succeeded"
    too_much = await wallet.refund("r2" + req.debit_id, req.debit_id, M.of(cur, 701))
    assert too_much.kind == "failed"
    assert sbx.ledger.balance(payer) == before - 700

    credit = credit_request(amount=M.of(cur, 5000), payment_id=req.payment_id)
    assert (await acquirer.notify_paid(credit)).kind == "succeeded"
    assert (await acquirer.notify_paid(credit)).kind == "succeeded"
    assert (await acquirer.inquire_credit(credit.credit_id)).kind == "succeeded"
    for _ in range(2):
        rev = await acquirer.reverse(credit.credit_id, "v1" + credit.credit_id, M.of(cur, 1500))
        assert rev.kind == "succeeded"
    sums = sbx.ledger.by_payment()[req.payment_id]
    assert (sums.debited, sums.returned, sums.credited, sums.credit_reversed) == (1000, 300, 5000, 1500)
    # every family credits the merchant under its own id (the QR template's sub-tag 01)
    assert sbx.ledger.merchants == {"KP-M-HANGANG-0001": 3500}
    assert sandbox_env.violations() == []
    await http.aclose()


async def test_not_found_cancel_and_late_debit(sandbox_env: SandboxEnvironment, pid: str) -> None:
    cur, payer, no_money = FAMILIES[pid]
    http = OutboundHttp()
    wallet, acquirer = adapters(sandbox_env, pid, http)
    missing = await wallet.inquire("never-sent-1")
    assert missing.kind == "failed" and missing.not_found
    assert (await acquirer.inquire_credit("never-sent-2")).not_found
    assert (await wallet.cancel("never-sent-3", M.of(cur, 10))).kind == "succeeded"
    late = await wallet.pay(debit_request(payer=payer, amount=M.of(cur, 10), debit_id="never-sent-3"))
    assert late.kind == "failed" and not late.not_found
    broke = await wallet.pay(debit_request(payer=payer.replace("-1", "-broke"), amount=M.of(cur, 10**6)))
    assert (broke.kind, broke.code) == ("failed", no_money)
    ok = debit_request(payer=payer, amount=M.of(cur, 50))
    assert (await wallet.pay(ok)).kind == "succeeded"
    assert (await wallet.cancel(ok.debit_id, ok.amount)).kind == "succeeded"
    assert (await wallet.inquire(ok.debit_id)).kind == "failed"  # cancelled
    assert sandbox_env.sandbox(pid).ledger.by_payment()[ok.payment_id].payer_out == 0
    await http.aclose()


async def test_injected_faults_map_to_outcomes(sandbox_env: SandboxEnvironment, pid: str) -> None:
    cur, payer, _ = FAMILIES[pid]
    sbx = sandbox_env.sandbox(pid)
    http = OutboundHttp()
    wallet, _ = adapters(sandbox_env, pid, http, read_timeout_s=0.3, total_timeout_s=0.6)
    cases = [("U", "unknown"), ("5xx", "unknown"), ("F=RISK_REJECT", "failed"), ("latency=20", "succeeded")]
    for spec, kind in cases:
        sbx.faults.push("pay", spec)
        req = debit_request(payer=payer, amount=M.of(cur, 10))
        out = await wallet.pay(req)
        assert out.kind == kind, (spec, out)
        done = sbx.ledger.inquire_debit(req.debit_id)
        assert (done is not None and done.answer.ok) == (kind == "succeeded"), spec
    for spec in ("drop", "timeout"):  # applied, but the answer is lost: unknown, then inquiry tells
        sbx.faults.push("pay", spec)
        req = debit_request(payer=payer, amount=M.of(cur, 10))
        assert (await wallet.pay(req)).kind == "unknown", spec
        assert (await wallet.inquire(req.debit_id)).kind == "succeeded", spec
    sbx.faults.push("pay", "drop=before")
    req = debit_request(payer=payer, amount=M.of(cur, 10))
    assert (await wallet.pay(req)).kind == "unknown"
    assert (await wallet.inquire(req.debit_id)).not_found
    await http.aclose()


async def test_injected_refusal_code_reaches_the_outcome(sandbox_env: SandboxEnvironment, pid: str) -> None:
    """``F=CODE`` on a debit and on a credit: the Outcome names CODE, and nothing moved."""
    cur, payer, _ = FAMILIES[pid]
    sbx = sandbox_env.sandbox(pid)
    http = OutboundHttp()
    wallet, acquirer = adapters(sandbox_env, pid, http)
    sbx.faults.push("pay", "F=RISK_REJECT")
    debit = debit_request(payer=payer, amount=M.of(cur, 10))
    out = await wallet.pay(debit)
    assert (out.kind, out.code, out.not_found) == ("failed", "RISK_REJECT", False)
    sbx.faults.push("notify", "F=MERCHANT_CLOSED")
    credit = credit_request(amount=M.of(cur, 500))
    out = await acquirer.notify_paid(credit)
    assert (out.kind, out.code, out.not_found) == ("failed", "MERCHANT_CLOSED", False)
    assert credit.payment_id not in sbx.ledger.by_payment() and debit.payment_id not in sbx.ledger.by_payment()
    await http.aclose()


async def test_unverifiable_partner_and_wrong_gateway_key(sandbox_env: SandboxEnvironment, pid: str) -> None:
    cur, payer, _ = FAMILIES[pid]
    sbx = sandbox_env.sandbox(pid)
    ep = sandbox_env.endpoints()[pid]
    real = sandbox_env.gateway_registry()
    http = OutboundHttp()
    # The gateway signs with keys the partner does not know: the partner refuses, nothing moves.
    strangers = [Signer(keyid=s.keyid, alg=s.alg, private_key=generate_key(s.alg)) for s in real.signers]
    entries = [e for p in FAMILIES for e in real.partner_keys(p)]
    wrong_gw = KeyRegistry(strangers, entries, client_ids={"SANDBOX_ALIPAY_CN": "alipay-cn"})
    wallet, _ = build_adapters(ep, wrong_gw, http)
    assert wallet is not None
    req = debit_request(payer=payer, amount=M.of(cur, 10))
    assert (await wallet.pay(req)).kind in ("failed", "unknown")
    assert sbx.ledger.inquire_debit(req.debit_id) is None
    # The partner's answers are signed by a key we do not trust: unknown, though it did debit.
    others = [e for p in FAMILIES if p != pid for e in real.partner_keys(p)]
    blind = KeyRegistry(list(real.signers), others, client_ids={"SANDBOX_ALIPAY_CN": "alipay-cn"})
    wallet2, _ = build_adapters(ep, blind, OutboundHttp())
    assert wallet2 is not None
    req2 = debit_request(payer=payer, amount=M.of(cur, 10))
    assert (await wallet2.pay(req2)).kind == "unknown"
    assert sbx.ledger.inquire_debit(req2.debit_id) is not None
    await http.aclose()


async def test_control_api_and_webhooks(sandbox_env: SandboxEnvironment, pid: str) -> None:
    sbx = sandbox_env.sandbox(pid)
    async with httpx.AsyncClient(base_url=sbx.url or "") as client:
        r = await client.post("/sandbox/faults", json={"push": [{"op": "pay", "fault": "U", "count": 2}]})
        assert r.status_code == 200 and r.json()["queued"]["pay"][0]["remaining"] == 2
        bad = await client.post("/sandbox/faults", json={"push": [{"op": "pay", "fault": "nope"}]})
        assert bad.status_code == 400
        assert (await client.post("/sandbox/balances", json={"payer-x": "42"})).json()["payer-x"] == "42"
        ledger = (await client.get("/sandbox/ledger")).json()
        assert ledger["partner_id"] == pid and ledger["balances"]["payer-x"] == "42"
        event = json.dumps({"event_id": "evt-1", "type": "payment.succeeded"}).encode()
        for _ in range(2):
            headers = {"Content-Type": "application/json"}
            sign_request(
                sandbox_env.gateway_registry().signer,
                method="POST",
                url=f"{sbx.url}/webhooks",
                headers=headers,
                body=event,
            )
            r = await client.post("/webhooks", content=event, headers=headers)
            assert r.status_code == 200 and "Signature" in r.headers
        unsigned = await client.post("/webhooks", content=event, headers={"Content-Type": "application/json"})
        assert unsigned.status_code == 401
    assert [e["event_id"] for e in sbx.events] == ["evt-1"]


async def test_settings_and_sample_qr(sandbox_env: SandboxEnvironment, pid: str) -> None:
    settings = sandbox_env.settings
    assert settings is not None and settings.server.sandbox
    partner = settings.partner(pid)
    assert partner is not None and partner.base_url == sandbox_env.sandbox(pid).url
    assert {r.identifier for r in settings.routing} == {"com.kakaopay", "com.alipay", "sg.openwallet"}
    again = load_settings(sandbox_env.config_path)  # the written file stands on its own
    assert [p.id for p in again.partners] == [p.id for p in settings.partners]
    qr = sandbox_env.sample_qr("seoul", amount=15000)
    assert "com.kakaopay" in qr and "com.alipay" in qr and "5303410" in qr
    assert qr[-4:] == crc16(qr[:-4])
