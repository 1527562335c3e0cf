"""The hardened HTTP server (gateway.serving) over real sockets: parser refusals answered as
signed problem+json, slow and idle connections closed, a connection cap that keeps serving
signed requests while slow sockets pile up. No timing assertions: deadlines are set short and
the tests wait (bounded) for what must happen."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.signing import KeyRegistry, verify_response
from gateway.testing.api import Api, problem, serve_api

SHORT = {"header_timeout_s": 0.3, "body_timeout_s": 0.3, "idle_timeout_s": 0.3}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with serve_api(tmp_path, server={**SHORT, "max_connections": 40}, hardened=True) as served:
        yield served


def signed_by_gateway(api: Api, r: httpx.Response) -> None:
    """The answer carries a valid gateway signature (unbound: the request was not trusted)."""
    verify_response(KeyRegistry([], [api.gateway_key]), status=r.status_code, headers=r.headers, body=r.content,
                    req_method=r.request.method, req_path=r.request.url.path, req_signature="", expected_partner="qrgw")


async def open_socket(api: Api) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    u = urlsplit(api.url)
    return await asyncio.open_connection(u.hostname, u.port)


async def closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent until it closed the connection (bounded wait)."""
    return await asyncio.wait_for(reader.read(), timeout=30)


async def test_an_oversized_header_is_a_signed_431_problem(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.url) as raw:
        r = await raw.get("/v1/payments/pay_x", headers={"Signature-Input": 'qrgw=();nonce="' + "n" * 10_000 + '"'})
        body = problem(r, 431, "HEADER_TOO_LARGE")
        assert "header" in body["detail"]
        signed_by_gateway(api, r)
        many = await raw.get("/v1/payments/pay_x", headers={f"X-H{i}": "1" for i in range(100)})
        problem(many, 431, "HEADER_TOO_LARGE")
        signed_by_gateway(api, many)
    ok = await api["alipay-cn"].get("/v1/payments/pay_x")  # the server is none the worse
    problem(ok, 404, "PAYMENT_NOT_FOUND")


async def test_a_broken_request_line_is_a_signed_400_problem(api: Api) -> None:
    reader, writer = await open_socket(api)
    writer.write(b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n")
    out = await closed(reader)
    head, _, _ = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 400") and b"application/problem+json" in head and b"Signature:" in head


async def test_an_error_past_every_middleware_is_a_signed_500_problem_bound_to_the_request(api: Api) -> None:
    async def boom(request: object) -> None:
        raise RuntimeError("a bug outside problem_middleware")

    assert api.runner.server is not None
    api.runner.server.request_handler = boom  # type: ignore[assignment]  # new connections only
    async with httpx.AsyncClient(base_url=api.url, auth=api.auth("alipay-cn")) as c:  # verifies the answer
        problem(await c.get("/v1/payments/pay_x"), 500, "INTERNAL_ERROR")


async def test_slow_headers_slow_bodies_and_idle_sockets_are_closed(api: Api) -> None:
    idle, idle_w = await open_socket(api)  # connects, says nothing
    slow, slow_w = await open_socket(api)
    slow_w.write(b"GET /v1/payments/pay_x HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    trickle = asyncio.create_task(_trickle(slow_w))  # a byte at a time, never ending the head
    body, body_w = await open_socket(api)
    body_w.write(b"POST /v1/payments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n{\"a\"")  # 4 of 100 bytes
    assert await closed(idle) == b"" and await closed(slow) == b""
    trickle.cancel()
    answer = await closed(body)
    assert answer.startswith(b"HTTP/1.1 408") and b'"code":"REQUEST_TIMEOUT"' in answer and b"Signature:" in answer
    for w in (idle_w, slow_w, body_w):
        w.close()


async def test_fifty_trickling_sockets_over_a_cap_of_forty_do_not_stop_signed_requests(tmp_path: Path) -> None:
    # Head deadline long enough that only the cap can explain what happens while the test runs.
    limits = {"header_timeout_s": 60.0, "idle_timeout_s": 60.0, "max_connections": 40}
    async with serve_api(tmp_path, server=limits, hardened=True) as api:
        socks = [await open_socket(api) for _ in range(50)]
        for _, w in socks:
            w.write(b"GET /v1/payments/pay_x HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # trickling: never ends
            await w.drain()
        for i in range(3):  # each signed request arrives on a new connection past the cap
            async with httpx.AsyncClient(base_url=api.url, auth=api.auth("alipay-cn")) as c:
                problem(await c.get(f"/v1/payments/pay_{i}"), 404, "PAYMENT_NOT_FOUND")  # served, signed, verified
        # The cap closed the oldest trickling sockets to make room: 10 for the sockets past 40, one
        # for the first request (each request's connection closes before the next one arrives);
        # the others stay open, their 60 s head deadline far away.
        reads = [asyncio.create_task(r.read()) for r, _ in socks]
        assert await asyncio.wait_for(asyncio.gather(*reads[:11]), timeout=30) == [b""] * 11
        await asyncio.wait(reads[11:], timeout=0.5)  # a moment for any wrongly closed one to show
        assert [i for i, t in enumerate(reads) if t.done()] == list(range(11))
        for t in reads:
            t.cancel()
        for _, w in socks:
            w.close()


async def _trickle(w: asyncio.StreamWriter) -> None:
    try:
        while True:
            w.write(b"a")
            await w.drain()
            await asyncio.sleep(0.05)
    except ConnectionError:
        return
