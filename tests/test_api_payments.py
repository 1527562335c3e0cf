"""The payment API over real loopback HTTP: create_app with signing, fake partners/pricing/QR."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.testing.api import PAY, Api, problem, serve_api
from gateway.testing.payments import SEOUL_STATIC


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with serve_api(tmp_path, rate_limits={"openwallet-sg": {"rate_per_s": 0.01, "burst": 3}}) as served:
        yield served


async def test_create_repeat_conflict_and_read(api: Api) -> None:
    r = await api["alipay-cn"].post("/v1/payments", json=PAY)
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["status"] == "SUCCEEDED" and p["route"] == {
        "wallet": "alipay-cn",
        "acquirer": "kakaopay-kr",
        "kind": "cross-border",
    }
    assert p["payer_amount"] == {"currency": "CNY", "value": "7950"} and p["quote"]["rate"] == "0.0053"
    assert p["merchant"] == {"name": "HANGANG BBQ", "city": "SEOUL", "country": "KR"}
    assert p["created_at"].endswith("Z") and "legs" not in p and "stage" not in p
    again = await api["alipay-cn"].post("/v1/payments", json=PAY)
    assert again.status_code == 200 and again.json()["payment_id"] == p["payment_id"]
    other = await api["alipay-cn"].post("/v1/payments", json={**PAY, "amount": {"currency": "KRW", "value": "1"}})
    problem(other, 409, "IDEMPOTENCY_CONFLICT")
    for who in ("alipay-cn", "kakaopay-kr"):
        got = await api[who].get(f"/v1/payments/{p['payment_id']}")
        assert got.status_code == 200 and got.json()["status"] == "SUCCEEDED"
    problem(await api["openwallet-sg"].get(f"/v1/payments/{p['payment_id']}"), 404, "PAYMENT_NOT_FOUND")
    problem(await api["alipay-cn"].get("/v1/payments/pay_nope"), 404, "PAYMENT_NOT_FOUND")
    assert api.h.wallets["alipay-cn"].calls["pay"] == 1


async def test_concurrent_identical_posts_debit_once(api: Api) -> None:
    rs = await asyncio.gather(*(api["alipay-cn"].post("/v1/payments", json=PAY) for _ in range(15)))
    assert sorted(r.status_code for r in rs) == [200] * 14 + [201]
    assert len({r.json()["payment_id"] for r in rs}) == 1
    assert api.h.wallets["alipay-cn"].calls["pay"] == 1


async def test_unknown_outcome_answers_202_and_recovery_finishes_it(api: Api) -> None:
    api.h.wallets["alipay-cn"].script["pay"] = ["lost", "lost", "lost"]
    r = await api["alipay-cn"].post("/v1/payments", json=PAY)
    assert r.status_code == 202 and r.json()["status"] == "PROCESSING"
    pid = r.json()["payment_id"]
    api.h.clock.advance(60)  # the background recovery task of the app inquires once due
    for _ in range(200):
        got = (await api["kakaopay-kr"].get(f"/v1/payments/{pid}")).json()
        if got["status"] != "PROCESSING":
            break
        await asyncio.sleep(0.01)
    assert got["status"] == "SUCCEEDED"
    assert api.h.wallets["alipay-cn"].balances["cn-payer"] == 1_000_000 - 7950


async def test_rejections_are_problems_and_change_nothing(api: Api) -> None:
    c = api["alipay-cn"]
    problem(await c.post("/v1/payments", json={**PAY, "amount": None}), 422, "VALIDATION_ERROR")
    problem(await c.post("/v1/payments", json={**PAY, "qr": "0002garbage"}), 422, "QR_MALFORMED")
    problem(await c.post("/v1/payments", json={**PAY, "qr": "NOROUTE"}), 422, "QR_NO_ROUTE")
    problem(await c.post("/v1/payments", json={**PAY, "quote_id": "qt_x"}), 422, "QUOTE_EXPIRED")
    body = problem(
        await c.post("/v1/payments", json={**PAY, "amount": {"currency": "KRW", "value": "9000000"}}),
        422,
        "FX_LIMIT_EXCEEDED",
    )
    assert body["limit"] == "annual_cap"
    bad = problem(
        await c.post("/v1/payments", json={**PAY, "payment_request_id": "has space"}), 422, "VALIDATION_ERROR"
    )
    assert "payment_request_id" in bad["detail"]
    problem(
        await c.post("/v1/payments", content=b"{not json", headers={"content-type": "application/json"}),
        400,
        "INVALID_JSON",
    )
    problem(
        await c.post("/v1/payments", content=b"qr=1", headers={"content-type": "text/plain"}),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    problem(await c.post("/v1/payments", json={**PAY, "pad": "x" * 4000}), 413, "PAYLOAD_TOO_LARGE")
    problem(await c.get("/v1/nowhere"), 404, "NOT_FOUND")
    problem(await c.delete("/v1/payments"), 405, "METHOD_NOT_ALLOWED")
    assert api.h.wallets["alipay-cn"].calls.total() == 0 and api.h.pricing.reserved == {}
    assert await api.h.store.payments_in_progress() == []


async def test_rate_limit_answers_429_with_retry_after(api: Api) -> None:
    c = api["openwallet-sg"]
    codes = [(await c.get("/v1/payments/pay_x")).status_code for _ in range(4)]
    assert codes[:3] == [404, 404, 404]
    r = await c.get("/v1/payments/pay_x")
    problem(r, 429, "RATE_LIMITED")
    assert int(r.headers["retry-after"]) >= 1
    assert (await api["alipay-cn"].get("/v1/payments/pay_x")).status_code == 404  # per partner


async def test_quote_then_pay_with_it(api: Api) -> None:
    c = api["alipay-cn"]
    q = await c.post("/v1/quotes", json={"qr": SEOUL_STATIC, "amount": PAY["amount"], "payer_currency": "CNY"})
    assert q.status_code == 201, q.text
    quote = q.json()
    assert quote["payer_amount"] == {"currency": "CNY", "value": "7950"} and quote["rate"] == "0.0053"
    r = await c.post("/v1/payments", json={**PAY, "quote_id": quote["quote_id"]})
    assert r.status_code == 201 and r.json()["quote"]["quote_id"] == quote["quote_id"]
    reuse = await c.post("/v1/payments", json={**PAY, "payment_request_id": "p-2", "quote_id": quote["quote_id"]})
    problem(reuse, 422, "QUOTE_INVALID")


async def test_cancel_and_refund_over_http(api: Api) -> None:
    a, k = api["alipay-cn"], api["kakaopay-kr"]
    p1 = (await a.post("/v1/payments", json=PAY)).json()["payment_id"]
    r = await k.post(
        f"/v1/payments/{p1}/refunds", json={"refund_request_id": "r-1", "amount": {"currency": "KRW", "value": "5000"}}
    )
    assert r.status_code == 201 and r.json()["status"] == "PARTIALLY_REFUNDED"
    assert r.json()["refunds"][0]["payer_amount"] == {"currency": "CNY", "value": "2650"}
    over = await k.post(
        f"/v1/payments/{p1}/refunds", json={"refund_request_id": "r-2", "amount": {"currency": "KRW", "value": "10001"}}
    )
    problem(over, 422, "REFUND_EXCEEDS_PAYMENT")
    problem(await k.post(f"/v1/payments/{p1}/cancel", json={"cancel_request_id": "c-1"}), 409, "INVALID_STATE")
    p2 = (await a.post("/v1/payments", json={**PAY, "payment_request_id": "p-2"})).json()["payment_id"]
    c = await a.post(f"/v1/payments/{p2}/cancel", json={"cancel_request_id": "c-1"})
    assert c.status_code == 200 and c.json()["status"] == "CANCELLED" and c.json()["cancel"]["status"] == "SUCCEEDED"
    problem(
        await api["openwallet-sg"].post(f"/v1/payments/{p2}/cancel", json={"cancel_request_id": "c-9"}),
        404,
        "PAYMENT_NOT_FOUND",
    )


async def test_partner_port_hides_metrics_and_publishes_openapi_unsigned(api: Api) -> None:
    """Business volume per partner is the operator's (tests/test_obs_metrics.py); the API description is public."""
    await api["alipay-cn"].post("/v1/payments", json=PAY)
    async with httpx.AsyncClient(base_url=api.url) as plain:
        hidden = await plain.get("/metrics")
        doc = (await plain.get("/openapi.json")).json()
    assert hidden.status_code == 401 and "qrgw_payments" not in hidden.text
    assert doc["openapi"] == "3.1.0" and "/v1/payments/{payment_id}/refunds" in doc["paths"]
    req = doc["components"]["schemas"]["PaymentRequest"]
    assert req["properties"]["payment_request_id"]["pattern"] == "^[A-Za-z0-9_-]{1,64}$"
