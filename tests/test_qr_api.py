"""POST /v1/qr/decode over a real loopback aiohttp server (a tiny middleware stands in for signing)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.api import qr as qr_api
from gateway.api.problems import problem_middleware, request_id_middleware
from gateway.appkeys import SERVICES, SETTINGS
from gateway.config import Settings
from gateway.qr import samples
from gateway.routing import PartnerInfo, RoutingTable


@web.middleware
async def as_partner(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
    request["partner_id"] = request.headers.get("X-Test-Partner", "alipay-cn")
    return await handler(request)


@pytest_asyncio.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    app = web.Application(middlewares=[request_id_middleware, as_partner, problem_middleware])
    app[SETTINGS] = Settings()
    app[SERVICES] = {"routing": RoutingTable({"com.kakaopay": "kakaopay-kr", "com.alipay": "alipay-cn"},
                                             {"kakaopay-kr": PartnerInfo("KR", "KRW"),
                                              "alipay-cn": PartnerInfo("CN", "CNY")})}
    qr_api.add_routes(app)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_decode_answers_the_code_and_the_callers_route(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/v1/qr/decode", json={"qr": samples.seoul("15000", korean=True)})
    assert resp.status == 200
    body = await resp.json()
    assert body["qr"]["merchant_name"] == "한강 바베큐" and body["qr"]["amount_minor"] == 15000
    assert body["qr"]["currency_alpha"] == "KRW"
    assert body["route"] == {"wallet": "alipay-cn", "acquirer": "kakaopay-kr", "kind": "cross-border",
                             "identifier": "com.kakaopay", "acquirer_country": "KR"}
    assert body["reason"] is None
    assert [(c["tag"], c["identifier"], c["acquirer"], c["chosen"], c["reason"]) for c in body["candidates"]] == [
        ("26", "com.kakaopay", "kakaopay-kr", True, "chosen"),
        ("27", "com.alipay", "alipay-cn", False, "country_not_acquired"),
    ]
    resp = await client.post("/v1/qr/decode", json={"qr": samples.seoul()}, headers={"X-Test-Partner": "kakaopay-kr"})
    assert (await resp.json())["route"]["kind"] == "domestic"


async def test_unrouted_code_decodes_with_a_reason(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/v1/qr/decode", json={"qr": samples.singapore()})
    body = await resp.json()
    assert resp.status == 200 and body["route"] is None and body["reason"]["code"] == "QR_NO_ROUTE"
    assert body["candidates"] == [{"identifier": "sg.openwallet", "tag": "26", "acquirer": None, "chosen": False,
                                   "reason": "not_routed", "detail": "this identifier is not routed here"}]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "INVALID_JSON"),
        (b"{}", 422, "VALIDATION_ERROR"),
        (b'{"qr": "0002010102"}', 422, "QR_MALFORMED"),
        (b'{"qr": "hello"}', 422, "QR_UNSUPPORTED_FORMAT"),
    ],
)
async def test_bad_requests_are_problems(client: TestClient[Any, Any], body: bytes, status: int, code: str) -> None:
    resp = await client.post("/v1/qr/decode", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == status
    problem = await resp.json()
    assert problem["code"] == code
    if code == "QR_MALFORMED":
        assert problem["offset"] == 6 and problem["tag_path"] == "01"
