"""End to end over loopback: the real gateway app with the three sandbox partners (real adapters,
FX, keys). Payments, a cancel and a partial refund; every event reaches each partner on the
route, signed; ``GET /v1/settlements/{date}`` answers each partner its own report (JSON and
CSV agree) and the day balances with no offense."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.appkeys import SERVICES, STORE
from gateway.sandbox_env import SandboxEnvironment
from gateway.settlement import check_day, load_day
from gateway.settlement.csvio import read_tables
from gateway.signing import KeyRegistry, QrgwAuth
from gateway.testing.payments import FakeQR, FakeResolver

SEOUL, SHANGHAI = "SEOUL-STATIC", "SHANGHAI-STATIC"
CALLERS = ("kakaopay-kr", "openwallet-sg")  # ed25519 partners: they call the gateway in the qrgw profile


@dataclass
class Gw:
    env: SandboxEnvironment
    app: web.Application
    clients: dict[str, httpx.AsyncClient]


@pytest.fixture
async def gw(sandbox_env: SandboxEnvironment) -> AsyncIterator[Gw]:
    env = sandbox_env
    assert env.settings is not None
    app = create_app(env.settings)
    # Merchant QR decoding is another area's; a resolver of the same topology stands in for it.
    app[SERVICES]["resolver"] = FakeResolver(
        codes={SEOUL: FakeQR("kakaopay-kr", "KRW", "KR", "SEOUL"),
               SHANGHAI: FakeQR("alipay-cn", "CNY", "CN", "SHANGHAI")},
        countries={"kakaopay-kr": "KR", "alipay-cn": "CN", "openwallet-sg": "SG"},
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", env.gateway_port)
    await site.start()
    gw_keys = [e for e in env.partner_registry("kakaopay-kr").partner_keys("qrgw")]
    clients = {}
    for pid in CALLERS:
        signer = env.partner_keys[pid]
        reg = KeyRegistry([signer], gw_keys)
        clients[pid] = httpx.AsyncClient(base_url=env.gateway_url, auth=QrgwAuth(signer, reg, "qrgw"), timeout=10)
    yield Gw(env, app, clients)
    for c in clients.values():
        await c.aclose()
    await runner.cleanup()


def pay(rid: str, qr: str, amount: dict[str, str] | None, payer_id: str, country: str, cur: str) -> dict[str, object]:
    body: dict[str, object] = {"payment_request_id": rid, "qr": qr,
                               "payer": {"id": payer_id, "residency": "resident", "country": country},
                               "payer_currency": cur}
    if amount is not None:
        body["amount"] = amount
    return body


async def test_day_settles_and_every_event_arrives(gw: Gw) -> None:
    env, kakao, sg = gw.env, gw.clients["kakaopay-kr"], gw.clients["openwallet-sg"]
    seoul, shanghai = SEOUL, SHANGHAI
    krw = {"currency": "KRW", "value": "15000"}
    cny = {"currency": "CNY", "value": "12345"}
    made = []
    for _rid, client, body in [
        ("dom-1", kakao, pay("dom-1", seoul, krw, "kr-user-1", "KR", "KRW")),
        ("xb-1", kakao, pay("xb-1", shanghai, cny, "kr-user-1", "KR", "KRW")),
        ("xb-2", kakao, pay("xb-2", shanghai, {"currency": "CNY", "value": "5000"}, "kr-user-1", "KR", "KRW")),
        ("sg-1", sg, pay("sg-1", seoul, {"currency": "KRW", "value": "23456"}, "sg-user-1", "SG", "SGD")),
    ]:
        r = await client.post("/v1/payments", json=body)
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "SUCCEEDED", r.text
        made.append(r.json())
    dom, xb1, xb2, sgp = made
    r = await kakao.post(f"/v1/payments/{xb1['payment_id']}/refunds",
                         json={"refund_request_id": "rf-1", "amount": {"currency": "CNY", "value": "2345"}})
    assert r.status_code == 201 and r.json()["status"] == "PARTIALLY_REFUNDED", r.text
    r = await kakao.post(f"/v1/payments/{xb2['payment_id']}/cancel", json={"cancel_request_id": "cx-1"})
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED", r.text

    # Every event reaches each partner on its route (the sandboxes verify the signature).
    expected = {
        "kakaopay-kr": 6,  # dom, xb1, xb2, sg-1 succeeded + refund + cancel
        "alipay-cn": 4,  # xb1, xb2 succeeded + refund + cancel
        "openwallet-sg": 1,
    }
    for _ in range(500):
        if all(len(env.sandbox(p).events) >= n for p, n in expected.items()):
            break
        await asyncio.sleep(0.02)
    got = {p: sorted(e["type"] for e in env.sandbox(p).events) for p in expected}
    assert got["alipay-cn"] == ["payment.cancelled", "payment.refunded", "payment.succeeded", "payment.succeeded"]
    assert {p: len(v) for p, v in got.items()} == expected

    day = datetime.now(UTC).astimezone(ZoneInfo("Asia/Seoul")).date().isoformat()
    loaded = await load_day(gw.app[STORE], day)
    assert check_day(loaded) == []

    r = await kakao.get(f"/v1/settlements/{day}")
    assert r.status_code == 200, r.text
    rep = r.json()
    ids = [(i["kind"], i["payment_id"]) for i in rep["items"]]
    assert sorted(ids) == sorted([("payment", dom["payment_id"]), ("payment", xb1["payment_id"]),
                                  ("payment", xb2["payment_id"]), ("payment", sgp["payment_id"]),
                                  ("refund", xb1["payment_id"]), ("cancel", xb2["payment_id"])])
    krw_pos = next(p for p in rep["positions"] if p["currency"] == "KRW")
    xb1_payer = int(xb1["payer_amount"]["value"])
    refund_item = next(i for i in rep["items"] if i["kind"] == "refund")
    # kakaopay-kr as wallet: paid dom + xb1 + xb2, got back xb2 (cancel) and the refund; as acquirer: dom + sg-1.
    refund_payer = int(refund_item["payer_amount"]["value"])
    wallet_net = 15000 + xb1_payer - refund_payer
    # Sandbox fees (config/sandbox.toml): kakaopay-kr wallet 20 bps, acquirer 50 bps + 10, half-up per
    # item; the cancel returns xb2's whole fee, the refund its share of xb1's.
    xb1_fee = round_half_up(xb1_payer * 20, 10000)
    refund_fee = round_half_up(xb1_fee * refund_payer, xb1_payer)
    assert int(krw_pos["wallet_fees"]) == round_half_up(15000 * 20, 10000) + xb1_fee - refund_fee
    acquirer_fees = round_half_up(15000 * 50, 10000) + 10 + round_half_up(23456 * 50, 10000) + 10
    assert int(krw_pos["acquirer_fees"]) == acquirer_fees
    assert int(refund_item["wallet_fee"]["value"]) == refund_fee
    assert "mid_rate" not in refund_item and "margin" not in refund_item and "fx_margin" not in rep
    owed = 15000 + 23456 - acquirer_fees
    assert int(krw_pos["net"]) == wallet_net + int(krw_pos["wallet_fees"]) - owed
    sgr = await sg.get(f"/v1/settlements/{day}")
    assert [i["payment_id"] for i in sgr.json()["items"]] == [sgp["payment_id"]]  # only its own

    r_csv = await kakao.get(f"/v1/settlements/{day}", params={"format": "csv"})
    assert r_csv.status_code == 200 and r_csv.headers["content-type"].startswith("text/csv")
    tables = read_tables(r_csv.text)
    assert [r["item_id"] for r in tables["items"]] == [i["item_id"] for i in rep["items"]]
    assert {r["partner_id"] for r in tables["items"] + tables["positions"]} == {"kakaopay-kr"}
    assert "margin" not in r_csv.text.split("\r\n", 1)[0]
    r_acc = await kakao.get(f"/v1/settlements/{day}", headers={"Accept": "text/csv"})
    assert r_acc.headers["content-type"].startswith("text/csv")


def round_half_up(num: int, den: int) -> int:
    """Independent of the code under test: integer half-up of num/den (num, den >= 0)."""
    return (2 * num + den) // (2 * den)


async def test_bad_date_and_format_are_422(gw: Gw) -> None:
    kakao = gw.clients["kakaopay-kr"]
    for path in ("/v1/settlements/2026-02-30", "/v1/settlements/yesterday", "/v1/settlements/2026-03-01?format=xml"):
        r = await kakao.get(path)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["code"] == "VALIDATION_ERROR"
    r = await kakao.get("/v1/settlements/2020-01-01")
    assert r.status_code == 200 and r.json()["items"] == [] and r.json()["positions"] == []
    unsigned = await httpx.AsyncClient(base_url=gw.env.gateway_url).get("/v1/settlements/2020-01-01")
    assert unsigned.status_code == 401
