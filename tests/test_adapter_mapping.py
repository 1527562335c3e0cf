"""Partner answers → outcomes, with a loopback fake partner standing in for the real one: scripted
answers, malformed answers and real transport faults (a hung answer, a dropped connection, a
truncated body, a refused connection)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, MutableMapping
from functools import cache
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from structlog.testing import capture_logs

from adapters.alipayplus import AlipayPlusAdapter
from adapters.endpoint import PartnerEndpoint
from adapters.http import OutboundHttp
from adapters.kakaopay import KakaoPayAdapter
from adapters.observe import NullObserver
from adapters.qrgw import QrgwAdapter
from gateway.signing import KeyRegistry, PublicKeyEntry, Signer, generate_key
from gateway.testing.sandboxes import Answer, SeenRequest, alipay_answer, debit_request, qrgw_answer
from schemas.errors import ConfigError
from schemas.money import MoneyModel as M

BASE = "https://partner.example"
Responder = Callable[[SeenRequest], Answer]
FAULTS = ("hang", "drop", "truncate", "refused")


class FakePartner:
    """A loopback partner answering every request with ``responder`` (or a transport fault)."""

    def __init__(self) -> None:
        self.responder: Responder | str = "refused"
        self.seen: list[tuple[str, str]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append((request.method, request.path))
        r = self.responder
        if r == "hang":
            await asyncio.sleep(5)
        if r == "drop" and request.transport is not None:
            request.transport.abort()
        if r == "truncate":  # promise 100 bytes, send 1, hang up
            resp = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": "100"})
            await resp.prepare(request)
            await resp.write(b"{")
            if request.transport is not None:
                request.transport.abort()
            return resp
        if isinstance(r, str):
            return web.Response(status=599)
        a = r(SeenRequest(request.method, request.path, request.headers, body))
        return web.Response(status=a.status, headers=a.headers, body=a.body)


FAKE = FakePartner()


@pytest_asyncio.fixture(autouse=True)
async def partner() -> AsyncIterator[FakePartner]:
    FAKE.responder, FAKE.seen = "refused", []
    await FAKE.start()
    yield FAKE
    await FAKE.stop()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[OutboundHttp]:
    out = OutboundHttp()
    yield out
    await out.aclose()


@cache
def keys() -> tuple[KeyRegistry, Signer, Signer]:
    """The gateway's registry (ed25519 + RSA signers), a qrgw-profile partner key, an Alipay+ one."""
    gw = [
        Signer(keyid="gw-ed", alg="ed25519", private_key=generate_key("ed25519")),
        Signer(keyid="gw-rsa", alg="rsa-v1_5-sha256", private_key=generate_key("rsa-v1_5-sha256")),
    ]
    partner = Signer(keyid="p-ed", alg="ed25519", private_key=generate_key("ed25519"))
    ali = Signer(keyid="p-rsa", alg="rsa-v1_5-sha256", private_key=generate_key("rsa-v1_5-sha256"))
    entries = [
        PublicKeyEntry(keyid="p-ed", partner_id="p", alg="ed25519", public_key=partner.public_key()),
        PublicKeyEntry(
            keyid="p-rsa", partner_id="p", alg="rsa-v1_5-sha256", public_key=ali.public_key(), key_version="1"
        ),
    ]
    return KeyRegistry(gw, entries, client_ids={"CID": "p"}), partner, ali


def endpoint(family: str, **kw: Any) -> PartnerEndpoint:
    """An endpoint of the fake partner (loopback http: a sandbox endpoint) unless ``kw`` says otherwise."""
    fields: dict[str, Any] = {
        "id": "p",
        "family": family,
        "roles": ("wallet", "acquirer"),
        "country": "KR",
        "currency": "KRW",
        "base_url": FAKE.url,
        "sandbox": True,
        "client_id": "CID",
        "secret_key": "s3cr3t",
        "read_timeout_s": 1.0,  # a hung answer times out; a slow, busy machine answers in time
        "total_timeout_s": 2.0,
    }
    return PartnerEndpoint(**(fields | kw))


def req() -> Any:
    return debit_request(payer="u1", amount=M.of("KRW", 1000), debit_id="d1", payment_id="p1")


async def run(adapter_call: Callable[[], Any], method: str, path: str, responder: Responder | str) -> Any:
    """The fake partner answers ``method path`` with ``responder`` (an answer, or one of
    ``FAULTS``); run the adapter call; the partner must have seen exactly that one request."""
    FAKE.responder, FAKE.seen = responder, []
    if responder == "refused":
        await FAKE.stop()
    out = await adapter_call()
    assert FAKE.seen == ([] if responder == "refused" else [(method, path)])
    return out


# --- Alipay+ ---------------------------------------------------------------------------------------
def ali(doc: Any, *, signed: bool = True, wrong_key: bool = False, status: int = 200) -> Responder:
    ali_key = keys()[2]
    signer = None if not signed else (keys()[0].signers[1] if wrong_key else ali_key)

    def respond(request: SeenRequest) -> Answer:
        assert request.headers["Client-Id"] == "CID" and "RSA256" in request.headers["Signature"]
        body = json.loads(request.content)
        assert all(isinstance(v, str) for k, v in body.items() if not isinstance(v, dict)), body
        assert "" not in body.values()
        return alipay_answer(signer, request, doc, client_id="CID", status=status)

    return respond


def res(status: str, code: str) -> dict[str, str]:
    return {"resultCode": code, "resultStatus": status, "resultMessage": code.lower()}


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        ("S", "SUCCESS", "succeeded"),
        ("F", "USER_BALANCE_NOT_ENOUGH", "failed"),
        ("F", "RISK_REJECT", "failed"),
        ("F", "ORDER_IS_CLOSED", "failed"),
        ("U", "UNKNOWN_EXCEPTION", "unknown"),
        ("F", "UNKNOWN_EXCEPTION", "unknown"),
        ("U", "REQUEST_TRAFFIC_EXCEED_LIMIT", "unknown"),
        ("U", "PAYMENT_IN_PROCESS", "unknown"),
    ],
)
async def test_alipay_pay_result_codes(status: str, code: str, kind: str, http: OutboundHttp) -> None:
    a = AlipayPlusAdapter(endpoint("alipayplus"), keys()[0], http)
    doc: dict[str, Any] = {"result": res(status, code)} | ({"paymentId": "P9"} if status == "S" else {})
    out = await run(lambda: a.pay(req()), "POST", "/aps/api/v1/payments/pay", ali(doc))
    assert out.kind == kind
    if kind == "failed":
        assert out.code == code
    if kind == "succeeded":
        assert out.partner_ref == "P9"


@pytest.mark.parametrize(
    ("responder", "kind"),
    [
        (ali({"result": res("S", "SUCCESS"), "paymentId": "P9"}, signed=False), "unknown"),  # unsigned S
        (ali({"result": res("S", "SUCCESS"), "paymentId": "P9"}, wrong_key=True), "unknown"),  # wrong key
        (ali({"result": res("F", "USER_NOT_EXIST")}, signed=False), "failed"),  # unsigned F: accepted
        (ali({"result": res("U", "UNKNOWN_EXCEPTION")}, signed=False), "unknown"),
        (ali(b"{not json"), "unknown"),
        (ali({"paymentId": "P9"}), "unknown"),  # no result
        (ali({"result": res("S", "SUCCESS")}), "unknown"),  # S without paymentId
        (ali({"result": {"resultCode": "SUCCESS", "resultStatus": 1}}), "unknown"),  # not a string
        (ali({"result": res("S", "SUCCESS"), "paymentId": "P9"}, status=502), "unknown"),
        *((fault, "unknown") for fault in FAULTS),
    ],
)
async def test_alipay_malformed_answers(responder: Any, kind: str, http: OutboundHttp) -> None:
    a = AlipayPlusAdapter(endpoint("alipayplus"), keys()[0], http)
    out = await run(lambda: a.pay(req()), "POST", "/aps/api/v1/payments/pay", responder)
    assert out.kind == kind


@pytest.mark.parametrize(
    ("doc", "kind", "not_found"),
    [
        (
            {"result": res("S", "SUCCESS"), "paymentResult": res("S", "SUCCESS"), "paymentId": "P9"},
            "succeeded",
            False,
        ),
        ({"result": res("S", "SUCCESS"), "paymentResult": res("F", "ORDER_IS_CLOSED")}, "failed", False),
        ({"result": res("S", "SUCCESS"), "paymentResult": res("U", "PAYMENT_IN_PROCESS")}, "unknown", False),
        ({"result": res("S", "SUCCESS")}, "unknown", False),
        ({"result": res("F", "ORDER_NOT_EXIST")}, "failed", True),
        ({"result": res("F", "PARAM_ILLEGAL")}, "unknown", False),  # the inquiry failed, not the payment
    ],
)
async def test_alipay_inquiry(doc: dict[str, Any], kind: str, not_found: bool, http: OutboundHttp) -> None:
    a = AlipayPlusAdapter(endpoint("alipayplus"), keys()[0], http)
    out = await run(lambda: a.inquire("d1"), "POST", "/aps/api/v1/payments/inquiryPayment", ali(doc))
    assert (out.kind, out.not_found) == (kind, not_found)


async def test_alipay_pay_body_fields(http: OutboundHttp) -> None:
    a = AlipayPlusAdapter(endpoint("alipayplus"), keys()[0], http)
    seen: dict[str, Any] = {}

    def respond(request: SeenRequest) -> Answer:
        seen.update(json.loads(request.content))
        return ali({"result": res("S", "SUCCESS"), "paymentId": "P9"})(request)

    quote = {
        "quote_id": "q1",
        "rate": "0.005234",
        "created_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-01T00:01:00Z",
    }
    r = debit_request(payer="u1", amount=M.of("CNY", 7851), merchant_amount=M.of("KRW", 15000), quote=quote)
    assert (await run(lambda: a.pay(r), "POST", "/aps/api/v1/payments/pay", respond)).kind == "succeeded"
    assert seen["paymentRequestId"] == r.debit_id and seen["customerId"] == "u1"
    assert seen["paymentAmount"] == {"currency": "KRW", "value": "15000"}
    assert seen["payToAmount"] == {"currency": "CNY", "value": "7851"}
    assert seen["paymentQuote"] == {
        "quoteId": "q1",
        "quoteCurrencyPair": "KRW/CNY",
        "quotePrice": "0.005234",
        "quoteStartTime": "2026-01-01T00:00:00Z",
        "quoteExpiryTime": "2026-01-01T00:01:00Z",
    }
    assert "paymentExpiryTime" not in seen  # optional fields omitted, never ""


# --- qrgw family -----------------------------------------------------------------------------------
def qa(status: int, doc: Any, *, signed: bool = True) -> Responder:
    def respond(request: SeenRequest) -> Answer:
        assert "Signature" in request.headers
        assert ("Content-Digest" in request.headers) == bool(request.content)
        if not signed:
            return Answer.json(status, doc)
        return qrgw_answer(keys()[1], request, status, doc)

    return respond


@pytest.mark.parametrize(
    ("responder", "kind", "code"),
    [
        (qa(200, {"debit_id": "d1", "status": "SUCCEEDED"}), "succeeded", None),
        (
            qa(200, {"debit_id": "d1", "status": "FAILED", "failure": {"code": "NO_FUNDS", "message": "m"}}),
            "failed",
            "NO_FUNDS",
        ),
        (qa(202, {"debit_id": "d1", "status": "PROCESSING"}), "unknown", "UNKNOWN"),
        (
            qa(422, {"type": "t", "title": "t", "status": 422, "code": "VALIDATION_ERROR"}),
            "failed",
            "VALIDATION_ERROR",
        ),
        (qa(503, {"type": "t", "title": "t", "status": 503, "code": "X"}), "unknown", "UNKNOWN"),
        (qa(429, {"type": "t", "title": "t", "status": 429, "code": "RATE_LIMITED"}), "unknown", "UNKNOWN"),
        (qa(200, {"debit_id": "d1", "status": "SUCCEEDED"}, signed=False), "unknown", "UNKNOWN"),
        (qa(200, {"debit_id": "other", "status": "SUCCEEDED"}), "unknown", "UNKNOWN"),
        (qa(200, {"debit_id": "d1"}), "unknown", "UNKNOWN"),
        (qa(200, b"<html>"), "unknown", "UNKNOWN"),
        *((fault, "unknown", "UNKNOWN") for fault in FAULTS),
    ],
)
async def test_qrgw_pay_answers(responder: Any, kind: str, code: str | None, http: OutboundHttp) -> None:
    a = QrgwAdapter(endpoint("qrgw"), keys()[0], http)
    out = await run(lambda: a.pay(req()), "POST", "/qrgw/v1/debits", responder)
    assert (out.kind, out.code) == (kind, code)


async def test_qrgw_inquiry_not_found(http: OutboundHttp) -> None:
    a = QrgwAdapter(endpoint("qrgw"), keys()[0], http)
    doc = {"type": "t", "title": "t", "status": 404, "code": "DEBIT_NOT_FOUND"}
    out = await run(lambda: a.inquire("d1"), "GET", "/qrgw/v1/debits/d1", qa(404, doc))
    assert out.kind == "failed" and out.not_found


# --- Kakao Pay -------------------------------------------------------------------------------------
def ka(status: int, doc: Any) -> Responder:
    def respond(request: SeenRequest) -> Answer:
        assert request.headers["Authorization"] == "SECRET_KEY s3cr3t"
        body = json.loads(request.content)
        assert isinstance(body.get("total_amount", body.get("cancel_amount", 0)), int)
        return qrgw_answer(keys()[1], request, status, doc)

    return respond


APPROVED = {
    "tid": "T1",
    "cid": "CID",
    "partner_order_id": "d1",
    "status": "SUCCESS_PAYMENT",
    "amount": {"total": 1000, "tax_free": 0},
}


@pytest.mark.parametrize(
    ("responder", "kind", "code"),
    [
        (ka(200, APPROVED), "succeeded", None),
        (ka(400, {"error_code": -797, "error_message": "no money"}), "failed", "INSUFFICIENT_BALANCE"),
        (ka(400, {"error_code": -9999, "error_message": "odd"}), "failed", "KAKAOPAY_-9999"),
        (ka(500, {"error_code": -9798, "error_message": "system"}), "unknown", "UNKNOWN"),
        (ka(400, {"error_code": -9798, "error_message": "system"}), "unknown", "UNKNOWN"),
        (ka(401, {"error_code": -401, "error_message": "auth"}), "unknown", "UNKNOWN"),
        (ka(200, APPROVED | {"partner_order_id": "d2"}), "unknown", "UNKNOWN"),
        (ka(200, APPROVED | {"amount": {"total": 999}}), "unknown", "UNKNOWN"),
        (ka(200, {k: v for k, v in APPROVED.items() if k != "tid"}), "unknown", "UNKNOWN"),
        (ka(400, {"message": "no code"}), "unknown", "UNKNOWN"),
    ],
)
async def test_kakao_approve_answers(responder: Any, kind: str, code: str | None, http: OutboundHttp) -> None:
    a = KakaoPayAdapter(endpoint("kakaopay"), keys()[0], http)
    out = await run(lambda: a.pay(req()), "POST", "/online/v1/payment/qr/approve", responder)
    assert (out.kind, out.code) == (kind, code)


# --- the HTTP layer --------------------------------------------------------------------------------
async def test_tls_and_plain_http_refused_outside_sandbox(http: OutboundHttp) -> None:
    prod = {"base_url": BASE, "sandbox": False}
    with pytest.raises(ConfigError, match="base_url: plain http"):
        http.session(endpoint("qrgw", **prod | {"base_url": "http://partner.example"}))
    with pytest.raises(ConfigError, match="TLS verification"):
        http.session(endpoint("qrgw", **prod, tls_verify=False))
    with pytest.raises(ConfigError, match="webhook_url: plain http"):
        http.session(endpoint("qrgw", **prod, webhook_url="http://partner.example/hooks"))
    with pytest.raises(ConfigError, match="webhook_url: plain http"):  # an absolute target: a webhook
        await http.call(endpoint("qrgw", **prod), "webhook", "POST", "http://partner.example/hooks", body=b"{}")
    assert FAKE.seen == []
    sbx = endpoint("qrgw", webhook_url="http://127.0.0.1:9/h", tls_verify=False)
    assert http.session(sbx) is http.session(sbx)  # one pooled session per partner


class Recorder(NullObserver):
    """What the gateway's metrics and tracer would receive (adapters.observe.CallObserver)."""

    def __init__(self) -> None:
        self.ended: list[tuple[str, str, int | None]] = []
        self.kinds: list[str] = []

    def call_started(self, partner: str, op: str, method: str, path: str, headers: MutableMapping[str, str]) -> object:
        return f"{partner}/{op}"

    def call_ended(self, token: object, outcome: str, status: int | None, seconds: float) -> None:
        self.ended.append((str(token), outcome, status))

    def outcome(self, partner: str, op: str, kind: str) -> None:
        self.kinds.append(kind)


async def test_calls_are_logged_and_reported_to_the_observer_without_secrets() -> None:
    rec = Recorder()
    http = OutboundHttp(observer=rec)
    a = KakaoPayAdapter(endpoint("kakaopay"), keys()[0], http)
    try:
        with capture_logs() as logs:
            await run(lambda: a.pay(req()), "POST", "/online/v1/payment/qr/approve", ka(200, APPROVED))
            await run(lambda: a.pay(req()), "POST", "/online/v1/payment/qr/approve", "hang")
    finally:
        await http.aclose()
    assert rec.ended == [("p/pay", "ok", 200), ("p/pay", "timeout", None)]
    assert rec.kinds == ["succeeded", "unknown"]
    calls = [e for e in logs if e["event"] == "partner_call"]
    assert [c["outcome"] for c in calls] == ["ok", "timeout"]
    assert all(isinstance(c["latency_ms"], float) for c in calls)
    assert "s3cr3t" not in repr(logs)
