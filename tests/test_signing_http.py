"""The signing middleware over a real loopback aiohttp server, driven by httpx with QrgwAuth."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from aiohttp import web

from gateway.api.problems import problem_middleware, problem_response, request_id_middleware
from gateway.signing import (
    UNSIGNED_PATHS,
    KeyRegistry,
    QrgwAuth,
    Signer,
    make_jwks_handler,
    make_signing_middleware,
    sign_request,
    verify_response,
)
from gateway.testing.nonces import MemoryNonces
from gateway.testing.signing import make_signer, pair
from schemas.errors import PartnerProtocolError, ValidationFailed

SEEN = web.AppKey("seen", list[str])


@dataclass
class Server:
    url: str
    partner: Signer
    partner_registry: KeyRegistry
    nonces: MemoryNonces
    seen: list[str]


async def decode(request: web.Request) -> web.Response:
    body = await request.json()
    if body.get("fail"):
        raise ValidationFailed("payload: required")
    request.app[SEEN].append(request["partner_id"])
    return web.json_response({"partner": request["partner_id"], "echo": body})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    partner, _gateway, gw_reg, partner_reg = pair()
    nonces = MemoryNonces()
    app = web.Application(
        middlewares=[
            request_id_middleware,
            make_signing_middleware(gw_reg, nonces, problem_response, UNSIGNED_PATHS),
            problem_middleware,
        ]
    )
    app[SEEN] = []
    app.router.add_post("/v1/qr/decode", decode)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/.well-known/jwks.json", make_jwks_handler(gw_reg))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield Server(f"http://127.0.0.1:{port}", partner, partner_reg, nonces, app[SEEN])
    await runner.cleanup()


def check_signed(s: Server, resp: httpx.Response, req_signature: str) -> None:
    verify_response(
        s.partner_registry,
        status=resp.status_code,
        headers=resp.headers,
        body=resp.content,
        req_method=resp.request.method,
        req_path=resp.request.url.path,
        req_signature=req_signature,
        expected_partner="qrgw",
    )


async def test_signed_round_trip_through_qrgw_auth(server: Server) -> None:
    auth = QrgwAuth(server.partner, server.partner_registry, "qrgw")
    async with httpx.AsyncClient(base_url=server.url, auth=auth) as client:
        resp = await client.post("/v1/qr/decode?x=1", json={"payload": "0002"})
        assert resp.status_code == 200 and resp.json()["partner"] == "openwallet-sg"
        bad = await client.post("/v1/qr/decode", json={"fail": True})  # error answers are signed too
        assert bad.status_code == 422 and bad.json()["code"] == "VALIDATION_ERROR"
        missing = await client.get("/v1/nothing")
        assert missing.status_code == 404
    assert server.seen == ["openwallet-sg"] and len(server.nonces.seen) == 3


async def test_rejections_are_signed_problems_and_leave_no_nonce(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        resp = await client.post("/v1/qr/decode", json={"payload": "0002"})
        assert resp.status_code == 401 and resp.json()["code"] == "SIGNATURE_MISSING"
        assert resp.headers["Content-Type"] == "application/problem+json"
        check_signed(server, resp, "")  # signed, unbound: there was no request signature to bind
        body = b'{"payload":"0002"}'
        headers = {"Content-Type": "application/json"}
        sign_request(server.partner, method="POST", url=server.url + "/v1/qr/decode", headers=headers, body=body)
        tampered = await client.post("/v1/qr/decode", content=body.replace(b"0002", b"0003"), headers=headers)
        assert tampered.status_code == 401 and tampered.json()["code"] == "DIGEST_MISMATCH"
        check_signed(server, tampered, headers["Signature"])
        wrong_host = await client.post("/v1/qr/decode", content=body, headers={**headers, "Host": "evil.example"})
        assert wrong_host.json()["code"] == "SIGNATURE_INVALID"
        assert server.nonces.seen == {} and server.seen == []
        first = await client.post("/v1/qr/decode", content=body, headers=headers)
        replay = await client.post("/v1/qr/decode", content=body, headers=headers)
        assert first.status_code == 200
        assert replay.status_code == 401 and replay.json()["code"] == "SIGNATURE_REPLAYED"
        check_signed(server, replay, headers["Signature"])
    assert len(server.nonces.seen) == 1


async def test_unsigned_endpoints_and_jwks(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        health = await client.get("/healthz")
        assert health.status_code == 200 and "Signature" not in health.headers
        jwks = (await client.get("/.well-known/jwks.json")).json()
    assert [k["kid"] for k in jwks["keys"]] == ["qrgw-gw-1"]
    assert jwks["keys"][0]["kty"] == "OKP" and all("d" not in k for k in jwks["keys"])


async def test_qrgw_auth_rejects_a_response_from_an_unexpected_key(server: Server) -> None:
    stranger = KeyRegistry([], [])
    auth = QrgwAuth(server.partner, stranger, None)
    async with httpx.AsyncClient(base_url=server.url, auth=auth) as client:
        with pytest.raises(PartnerProtocolError) as info:
            await client.post("/v1/qr/decode", json={"payload": "0002"})
    assert info.value.extra["signature_code"] == "KEY_UNKNOWN"
    other = make_signer(keyid="someone-else")
    async with httpx.AsyncClient(base_url=server.url, auth=QrgwAuth(other, server.partner_registry, "qrgw")) as client:
        resp = await client.post("/v1/qr/decode", json={"payload": "0002"})
    assert resp.status_code == 401 and resp.json()["code"] == "KEY_UNKNOWN"  # verified, signed 401


async def test_public_base_url_fixes_the_authority_behind_a_proxy() -> None:
    partner, _gateway, gw_reg, _ = pair()
    nonces = MemoryNonces()
    mw = make_signing_middleware(
        gw_reg, nonces, problem_response, UNSIGNED_PATHS, public_base_url="https://API.qrgw.example:443"
    )
    app = web.Application(middlewares=[request_id_middleware, mw, problem_middleware])
    app[SEEN] = []
    app.router.add_post("/v1/qr/decode", decode)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        body = b'{"payload":"0002"}'
        async with httpx.AsyncClient() as client:
            for signed_as, expected in (
                ("https://api.qrgw.example/v1/qr/decode", 200),
                (f"http://127.0.0.1:{port}/v1/qr/decode", 401),
            ):
                headers = {"Content-Type": "application/json"}
                sign_request(partner, method="POST", url=signed_as, headers=headers, body=body)
                resp = await client.post(f"http://127.0.0.1:{port}/v1/qr/decode", content=body, headers=headers)
                assert resp.status_code == expected, signed_as
    finally:
        await runner.cleanup()
