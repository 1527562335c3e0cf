"""PROTOCOL.md §1 journeys end to end over loopback: the real gateway app (signing, FX, adapters,
recovery) against the three sandbox partners, with faults injected at the sandboxes.

Real merchant QR codes (``gateway.qr.samples``), decoded and routed by the gateway.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiohttp import web

import gateway.app
from adapters.sandbox.ledger import merge_sums
from gateway.app import create_app
from gateway.appkeys import SERVICES
from gateway.payments.state import RetryPolicy
from gateway.qr import samples
from gateway.sandbox_env import SandboxEnvironment
from gateway.signing import KeyRegistry, QrgwAuth
from gateway.store.memory import MemoryStore

SEOUL, SHANGHAI, SEOUL_15000 = samples.seoul(), samples.shanghai(), samples.seoul("15000")
CALLERS = ("kakaopay-kr", "openwallet-sg")
FAST = RetryPolicy(
    call_attempts=2,
    backoff_base_s=0.005,
    backoff_cap_s=0.02,
    inquiry_intervals_s=(0.05, 0.1, 0.2),
    retry_cap_s=0.2,
    lease_s=3.0,
)


@dataclass
class Gw:
    env: SandboxEnvironment
    clients: dict[str, httpx.AsyncClient]
    app: web.Application

    def balance(self, partner: str, payer: str) -> int:
        b = self.env.sandbox(partner).ledger.balance(payer)
        assert b is not None
        return b


@pytest.fixture
async def gw(sandbox_env: SandboxEnvironment) -> AsyncIterator[Gw]:
    env = sandbox_env
    assert env.settings is not None
    app = create_app(env.settings)
    app[SERVICES].update(policy=FAST, recovery_interval_s=0.02)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", env.gateway_port)
    await site.start()
    gw_keys = list(env.partner_registry("kakaopay-kr").partner_keys("qrgw"))
    clients = {
        pid: httpx.AsyncClient(
            base_url=env.gateway_url,
            timeout=15,
            auth=QrgwAuth(env.partner_keys[pid], KeyRegistry([env.partner_keys[pid]], gw_keys), "qrgw"),
        )
        for pid in CALLERS
    }
    yield Gw(env, clients, app)
    for c in clients.values():
        await c.aclose()
    await runner.cleanup()


def body(rid: str, qr: str, value: str, cur: str, payer: str, country: str, payer_cur: str) -> dict[str, Any]:
    return {
        "payment_request_id": rid,
        "qr": qr,
        "amount": {"currency": cur, "value": value},
        "payer": {"id": payer, "residency": "resident", "country": country},
        "payer_currency": payer_cur,
    }


async def final(client: httpx.AsyncClient, pid: str) -> dict[str, Any]:
    for _ in range(400):
        got: dict[str, Any] = (await client.get(f"/v1/payments/{pid}")).json()
        if got["status"] != "PROCESSING":
            return got
        await asyncio.sleep(0.025)
    raise AssertionError(f"payment {pid} still PROCESSING: {got}")


async def test_three_journeys_move_exactly_the_quoted_money(gw: Gw) -> None:
    kakao, sg = gw.clients["kakaopay-kr"], gw.clients["openwallet-sg"]
    kr0, sg0 = gw.balance("kakaopay-kr", "kr-user-1"), gw.balance("openwallet-sg", "sg-user-1")
    # Korean payer, Shanghai merchant: cross-border KRW -> CNY
    r = await kakao.post("/v1/payments", json=body("j-1", SHANGHAI, "12345", "CNY", "kr-user-1", "KR", "KRW"))
    assert r.status_code == 201, r.text
    xb = r.json()
    assert xb["status"] == "SUCCEEDED" and xb["route"]["kind"] == "cross-border"
    assert xb["quote"]["merchant_amount"] == {"currency": "CNY", "value": "12345"}
    assert xb["payer_amount"] == xb["quote"]["payer_amount"] and xb["payer_amount"]["currency"] == "KRW"
    krw_paid = int(xb["payer_amount"]["value"])
    # Korean payer, Seoul merchant: domestic, no conversion
    dyn = body("j-2", SEOUL_15000, "15000", "KRW", "kr-user-1", "KR", "KRW")
    del dyn["amount"]  # a dynamic code carries its amount (tag 54)
    r = await kakao.post("/v1/payments", json=dyn)
    dom = r.json()
    assert r.status_code == 201 and dom["status"] == "SUCCEEDED" and dom["quote"] is None
    assert dom["payer_amount"] == {"currency": "KRW", "value": "15000"}
    assert dom["merchant"] == {"name": "HANGANG BBQ", "city": "SEOUL", "country": "KR"}
    # Singapore payer, Seoul merchant: cross-border SGD -> KRW
    r = await sg.post("/v1/payments", json=body("j-3", SEOUL, "23456", "KRW", "sg-user-1", "SG", "SGD"))
    sgp = r.json()
    assert r.status_code == 201 and sgp["status"] == "SUCCEEDED" and sgp["payer_amount"]["currency"] == "SGD"
    assert gw.balance("kakaopay-kr", "kr-user-1") == kr0 - krw_paid - 15000
    assert gw.balance("openwallet-sg", "sg-user-1") == sg0 - int(sgp["payer_amount"]["value"])
    sums = merge_sums(*(sb.ledger for sb in gw.env.sandboxes.values()))
    assert sums[xb["payment_id"]].merchant_in == 12345 and sums[sgp["payment_id"]].merchant_in == 23456
    assert gw.env.violations() == []


@pytest.mark.parametrize(
    ("partner", "op", "spec"),
    [
        ("kakaopay-kr", "pay", "drop"),  # applied, answer lost
        ("kakaopay-kr", "pay", "drop=before"),
        ("kakaopay-kr", "pay", "5xx"),
        ("kakaopay-kr", "pay", "U"),
        ("kakaopay-kr", "notify", "drop"),
        ("kakaopay-kr", "notify", "U"),
        ("kakaopay-kr", "notify", "F=MERCHANT_CLOSED"),
        ("alipay-cn", "notify", "drop"),
        ("alipay-cn", "notify", "5xx"),
    ],
)
async def test_faults_end_final_with_no_money_stranded(gw: Gw, partner: str, op: str, spec: str) -> None:
    kakao = gw.clients["kakaopay-kr"]
    kr0 = gw.balance("kakaopay-kr", "kr-user-1")
    gw.env.sandbox(partner).faults.push(op, spec, count=2)  # outlasts the inline retry budget
    if op == "pay":  # and the first inquiry as well, for the unknown ones
        gw.env.sandbox(partner).faults.push("inquire", "5xx", count=1)
    qr, value, cur = (SEOUL, "15000", "KRW") if partner == "kakaopay-kr" else (SHANGHAI, "5000", "CNY")
    r = await kakao.post(
        "/v1/payments", json=body(f"f-{op}-{spec}".replace("=", "-"), qr, value, cur, "kr-user-1", "KR", "KRW")
    )
    assert r.status_code in (201, 202), r.text
    p = await final(kakao, r.json()["payment_id"])
    charged = kr0 - gw.balance("kakaopay-kr", "kr-user-1")
    if p["status"] == "SUCCEEDED":
        assert charged == int(p["payer_amount"]["value"])
    else:
        assert p["status"] == "FAILED" and charged == 0 and p["failure"]["code"]
    assert gw.env.violations() == []
    if spec.startswith("F="):  # a declined credit: the payer's debit was reversed (code per the family)
        assert p["status"] == "FAILED"


async def test_real_codes_rejections_and_the_alipayplus_format(gw: Gw) -> None:
    kakao = gw.clients["kakaopay-kr"]
    kr0 = gw.balance("kakaopay-kr", "kr-user-1")
    bad_crc = SEOUL[:-1] + ("0" if SEOUL[-1] != "0" else "1")
    r = await kakao.post("/v1/payments", json=body("x-1", bad_crc, "15000", "KRW", "kr-user-1", "KR", "KRW"))
    assert r.status_code == 422 and r.json()["code"] == "QR_CRC_MISMATCH"
    r = await kakao.post("/v1/payments", json=body("x-2", SEOUL_15000, "14000", "KRW", "kr-user-1", "KR", "KRW"))
    assert r.status_code == 422 and r.json()["code"] == "VALIDATION_ERROR" and "tag 54" in r.json()["detail"]
    assert gw.balance("kakaopay-kr", "kr-user-1") == kr0
    # Alipay+ MPM: routed to alipay-cn by its own format; the merchant is the acquirer's
    r = await kakao.post(
        "/v1/payments", json=body("x-3", samples.alipayplus(), "1000", "CNY", "kr-user-1", "KR", "KRW")
    )
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["route"]["acquirer"] == "alipay-cn" and p["status"] == "SUCCEEDED"
    assert gw.balance("kakaopay-kr", "kr-user-1") == kr0 - int(p["payer_amount"]["value"])
    assert gw.env.violations() == []


async def test_fifty_identical_posts_on_two_gateways_sharing_a_store_debit_once(
    sandbox_env: SandboxEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = sandbox_env
    assert env.settings is not None
    store = MemoryStore()

    async def shared(_settings: Any) -> MemoryStore:
        return store

    monkeypatch.setattr(gateway.app, "open_store", shared)
    runners, urls = [], []
    for _ in range(2):
        runner = web.AppRunner(create_app(env.settings))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        urls.append(f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}")  # type: ignore[union-attr]
    signer = env.partner_keys["kakaopay-kr"]
    reg = KeyRegistry([signer], list(env.partner_registry("kakaopay-kr").partner_keys("qrgw")))
    clients = [httpx.AsyncClient(base_url=u, timeout=15, auth=QrgwAuth(signer, reg, "qrgw")) for u in urls]
    try:
        kr0 = gw_balance(env, "kakaopay-kr", "kr-user-1")
        b = body("same-1", SHANGHAI, "5000", "CNY", "kr-user-1", "KR", "KRW")
        rs = await asyncio.gather(*(clients[i % 2].post("/v1/payments", json=b) for i in range(50)))
        assert sorted(r.status_code for r in rs) == [200] * 49 + [201], [r.text for r in rs if r.status_code > 201]
        assert len({r.json()["payment_id"] for r in rs}) == 1
        paid = int(rs[0].json()["payer_amount"]["value"])
        assert gw_balance(env, "kakaopay-kr", "kr-user-1") == kr0 - paid  # one debit at the wallet
        other = await clients[1].post("/v1/payments", json={**b, "amount": {"currency": "CNY", "value": "5001"}})
        assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_CONFLICT"
    finally:
        for c in clients:
            await c.aclose()
        for r in runners:
            await r.cleanup()


def gw_balance(env: SandboxEnvironment, partner: str, payer: str) -> int:
    b = env.sandbox(partner).ledger.balance(payer)
    assert b is not None
    return b


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        # debit unknown (not applied), inquiry lost, the cancel's first answer lost: FAILED, nothing moved
        (
            [
                ("kakaopay-kr", "pay", "U", 2),
                ("kakaopay-kr", "inquire", "drop", 1),
                ("kakaopay-kr", "cancel", "drop", 2),
            ],
            "FAILED",
        ),
        # credit declined, the compensating cancel at the wallet answers 5xx first: FAILED, payer repaid
        ([("kakaopay-kr", "notify", "F=MERCHANT_CLOSED", 1), ("kakaopay-kr", "cancel", "5xx", 2)], "FAILED"),
        # debit applied and its answers dropped, the first inquiries 5xx: found later, SUCCEEDED
        ([("kakaopay-kr", "pay", "drop", 2), ("kakaopay-kr", "inquire", "5xx", 2)], "SUCCEEDED"),
    ],
)
async def test_faults_on_inquiry_and_cancel_end_final(
    gw: Gw, faults: list[tuple[str, str, str, int]], expected: str
) -> None:
    kakao = gw.clients["kakaopay-kr"]
    kr0 = gw.balance("kakaopay-kr", "kr-user-1")
    for partner, op, spec, n in faults:
        gw.env.sandbox(partner).faults.push(op, spec, count=n)
    r = await kakao.post("/v1/payments", json=body("ic-1", SEOUL, "15000", "KRW", "kr-user-1", "KR", "KRW"))
    assert r.status_code in (201, 202), r.text
    p = await final(kakao, r.json()["payment_id"])
    charged = kr0 - gw.balance("kakaopay-kr", "kr-user-1")
    assert (p["status"], charged) == (expected, 15000 if expected == "SUCCEEDED" else 0), p
    assert gw.env.violations() == []
