"""Routing end to end over loopback sandboxes: an impossible route is refused before anything moves,
the FX policy's direction comes from the route, and an open circuit reroutes (or refuses) payments."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from loopback import scrape
from test_api_journeys import Gw, body, gw  # noqa: F401  (gw: the gateway-over-sandboxes fixture)

from gateway.qr import encode
from gateway.routing_settings import BreakerSettings, RoutingPolicySettings
from gateway.sandbox_env import SandboxEnvironment
from schemas.qr import MerchantAccount, MerchantQR


@pytest.fixture
def sandbox_env(sandbox_env: SandboxEnvironment) -> SandboxEnvironment:
    """The sandbox topology with a breaker that opens after two transport failures, for an hour."""
    assert sandbox_env.settings is not None
    policy = RoutingPolicySettings(breaker=BreakerSettings(failures=2, open_s=3600))
    sandbox_env.settings = sandbox_env.settings.model_copy(update={"routing_policy": policy})
    return sandbox_env


def merchant_code(country: str, currency: str, ident: str, amount: str | None = None) -> str:
    return encode(MerchantQR(
        point_of_initiation="dynamic" if amount else "static",
        merchant_accounts=[MerchantAccount(tag="26", fields={"00": ident, "01": "M-0001"})],
        mcc="5812", currency=currency, amount=amount, country=country, merchant_name="HANGANG BBQ",
        merchant_city="SEOUL",
    ))


def debits(g: Gw, partner: str) -> int:
    return len(g.env.sandbox(partner).ledger.debits)


async def test_impossible_route_is_refused_before_anything_moves(gw: Gw) -> None:  # noqa: F811
    kakao = gw.clients["kakaopay-kr"]
    seoul_alipay_only = merchant_code("KR", "410", "com.alipay")  # KR/KRW merchant, only a com.alipay template
    kr0, seen0 = gw.balance("kakaopay-kr", "kr-user-1"), debits(gw, "kakaopay-kr")
    r = await kakao.post("/v1/payments", json=body("nr-1", seoul_alipay_only, "15000", "KRW", "kr-user-1", "KR",
                                                    "KRW"))
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    p = r.json()
    assert p["code"] == "QR_NO_ROUTE"
    assert p["detail"] == ("no usable route for this code (KR, KRW): 26 com.alipay: the acquirer does not "
                           "acquire merchants of this country (alipay-cn)")
    assert p["candidates"] == [{"identifier": "com.alipay", "tag": "26", "acquirer": "alipay-cn", "chosen": False,
                                "reason": "country_not_acquired",
                                "detail": "the acquirer does not acquire merchants of this country"}]
    r = await kakao.post("/v1/quotes", json={"qr": seoul_alipay_only, "amount": {"currency": "KRW", "value": "15000"},
                                             "payer_currency": "KRW"})
    assert r.status_code == 422 and r.json()["code"] == "QR_NO_ROUTE"
    r = await kakao.post("/v1/qr/decode", json={"qr": seoul_alipay_only})
    assert r.status_code == 200 and r.json()["route"] is None and r.json()["reason"]["code"] == "QR_NO_ROUTE"
    # The wallet's ledger never saw a debit, and no money moved anywhere.
    assert debits(gw, "kakaopay-kr") == seen0 and gw.balance("kakaopay-kr", "kr-user-1") == kr0
    assert debits(gw, "alipay-cn") == 0 and gw.env.sandbox("alipay-cn").ledger.credits == {}


async def pay(client: httpx.AsyncClient, rid: str, qr: str, value: str, cur: str, payer: dict[str, Any],
              payer_cur: str) -> httpx.Response:
    b = body(rid, qr, value, cur, payer["id"], payer["country"], payer_cur)
    b["payer"] = payer
    return await client.post("/v1/payments", json=b)


async def test_fx_direction_comes_from_the_route_not_the_printed_country(gw: Gw) -> None:  # noqa: F811
    """Issue 15's two examples: a QR cannot pick its own FX rules by printing another country."""
    kakao, sg = gw.clients["kakaopay-kr"], gw.clients["openwallet-sg"]
    # travel-rule data present, so the amount rules are what answers (fx/travel.py)
    extra = {"account": "acct-9", "address": "1 Main St", "date_of_birth": "1990-01-01"}
    resident = {"id": "kr-user-9", "residency": "resident", "country": "KR", "name": "Kim", **extra}
    # KR wallet -> CN acquirer, CNY 50,000.00 (minor units): the QR saying 58=KR no longer escapes the USD 5,000 cap ...
    r = await pay(kakao, "fx-1", merchant_code("KR", "156", "com.alipay"), "5000000", "CNY", resident, "KRW")
    assert r.status_code == 422 and r.json()["code"] == "QR_NO_ROUTE", r.text
    # ... which the same code saying 58=CN meets.
    r = await pay(kakao, "fx-2", merchant_code("CN", "156", "com.alipay"), "5000000", "CNY", resident, "KRW")
    assert r.status_code == 422 and r.json()["code"] == "FX_LIMIT_EXCEEDED", r.text
    # A tourist's KRW 100,000,000 to a Korean acquirer claiming 58=CN: refused, no route ...
    tourist = {"id": "sg-user-9", "residency": "non-resident", "country": "SG", "name": "Tan", **extra}
    r = await pay(sg, "fx-3", merchant_code("CN", "410", "com.kakaopay"), "100000000", "KRW", tourist, "SGD")
    assert r.status_code == 422 and r.json()["code"] == "QR_NO_ROUTE", r.text
    # ... and with its true country the non-resident limit applies.
    r = await pay(sg, "fx-4", merchant_code("KR", "410", "com.kakaopay"), "100000000", "KRW", tourist, "SGD")
    assert r.status_code == 422 and r.json()["code"] == "FX_LIMIT_EXCEEDED", r.text
    assert debits(gw, "kakaopay-kr") == 0 and debits(gw, "openwallet-sg") == 0


async def test_open_circuit_takes_the_acquirer_out_of_routing(gw: Gw) -> None:  # noqa: F811
    sg = gw.clients["openwallet-sg"]
    seoul = merchant_code("KR", "410", "com.kakaopay")
    # Every call to the acquirer (credit, inquiry, reversal): outcome unknown, so nothing closes the circuit.
    gw.env.sandbox("kakaopay-kr").faults.push("*", "5xx", count=10_000)
    r = await sg.post("/v1/payments", json=body("cb-1", seoul, "15000", "KRW", "sg-user-1", "SG", "SGD"))
    assert r.status_code in (201, 202), r.text  # taken; its outcome is found out later
    metrics = await scrape(gw.app)  # the operator listener's /metrics
    assert 'qrgw_partner_circuit_state{partner="kakaopay-kr"} 2.0' in metrics
    assert 'qrgw_partner_circuit_state{partner="alipay-cn"} 0.0' in metrics
    sg0 = gw.balance("openwallet-sg", "sg-user-2")
    r = await sg.post("/v1/payments", json=body("cb-2", seoul, "15000", "KRW", "sg-user-2", "SG", "SGD"))
    assert r.status_code == 422 and r.json()["code"] == "QR_NO_ROUTE"
    assert [c["reason"] for c in r.json()["candidates"]] == ["circuit_open"]
    assert gw.balance("openwallet-sg", "sg-user-2") == sg0
    r = await sg.post("/v1/qr/decode", json={"qr": seoul})
    assert r.json()["candidates"][0]["reason"] == "circuit_open"
