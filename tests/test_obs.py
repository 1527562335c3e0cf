"""Observability end to end over loopback: the real gateway against the sandbox partners, traced
with an in-memory exporter, scraped on the operator listener, its access lines read as JSON."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiohttp import web
from jsonlogs import json_logs
from loopback import start
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.sandbox.server import SandboxPartner
from gateway.app import create_app
from gateway.appkeys import SERVICES, STORE
from gateway.obs.admin import create_admin_app
from gateway.obs.tracing import TRACING
from gateway.payments.state import RetryPolicy
from gateway.qr import samples
from gateway.sandbox_env import SandboxEnvironment
from gateway.signing import KeyRegistry, QrgwAuth
from gateway.store.memory import MemoryStore

FAST = RetryPolicy(call_attempts=2, backoff_base_s=0.005, backoff_cap_s=0.02, inquiry_intervals_s=(0.05, 0.1),
                   retry_cap_s=0.2, lease_s=3.0)
TRACE_ID, PARENT = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
PAY = {
    "payment_request_id": "obs-1",
    "qr": samples.shanghai(),
    "amount": {"currency": "CNY", "value": "12345"},
    "payer": {"id": "kr-user-1", "residency": "resident", "country": "KR"},
    "payer_currency": "KRW",
}


@dataclass
class Stack:
    url: str
    admin_url: str
    client: httpx.AsyncClient
    spans: InMemorySpanExporter
    logs: io.StringIO
    partner_traceparents: list[str]
    app: web.Application

    def access_lines(self) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.logs.getvalue().splitlines() if line.startswith("{")]
        return [line for line in lines if line.get("event") == "request"]


@pytest.fixture
async def stack(
    sandbox_env: SandboxEnvironment, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> AsyncIterator[Stack]:
    """The gateway traced into memory, or (``indirect`` param False) with tracing off as by default."""
    traced = getattr(request, "param", True)
    env = sandbox_env
    assert env.settings is not None
    s = env.settings
    soon = datetime.now(UTC) + timedelta(days=30)
    keys = [k.model_copy(update={"not_after": soon}) for k in s.gateway.keys]
    settings = s.model_copy(update={"gateway": s.gateway.model_copy(update={"keys": keys})})
    seen: list[str] = []

    def recording(sbx: SandboxPartner) -> Callable[[web.Request, bytes], Awaitable[None]]:
        authenticate = sbx.authenticate

        async def record(request: web.Request, body: bytes) -> None:
            seen.append(request.headers.get("traceparent", ""))
            await authenticate(request, body)

        return record

    for p in s.partners:  # each sandbox partner notes the traceparent of every call it gets
        monkeypatch.setattr(env.sandbox(p.id), "authenticate", recording(env.sandbox(p.id)))
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(settings)
    if traced:
        app[TRACING].use(provider)
    app[SERVICES].update(policy=FAST, recovery_interval_s=0.02)
    api, api_url = await start(app, env.gateway_port)
    admin, admin_url = await start(create_admin_app(app))
    runners, urls = [api, admin], [api_url, admin_url]
    pid = "kakaopay-kr"
    gw_keys = list(env.partner_registry(pid).partner_keys("qrgw"))
    auth = QrgwAuth(env.partner_keys[pid], KeyRegistry([env.partner_keys[pid]], gw_keys), "qrgw")
    client = httpx.AsyncClient(base_url=urls[0], timeout=15, auth=auth)
    with json_logs() as logs:
        yield Stack(urls[0], urls[1], client, exporter, logs, seen, app)
    await client.aclose()
    for runner in reversed(runners):
        await runner.cleanup()


async def pay(stack: Stack, **extra: str) -> dict[str, Any]:
    traceparent = f"00-{TRACE_ID}-{PARENT}-01"
    r = await stack.client.post("/v1/payments", json={**PAY, **extra}, headers={"traceparent": traceparent})
    assert r.status_code == 201, r.text
    assert r.headers["Server"] == "qrgw"  # no framework or version banner
    body: dict[str, Any] = r.json()
    return body


async def test_one_payment_is_one_trace_across_gateway_store_and_partners(stack: Stack) -> None:
    await pay(stack)
    spans: tuple[ReadableSpan, ...] = stack.spans.get_finished_spans()
    server = [s for s in spans if s.name == "POST /v1/payments"]
    assert len(server) == 1
    root = server[0]
    assert root.context is not None and root.parent is not None
    assert format(root.context.trace_id, "032x") == TRACE_ID and format(root.parent.span_id, "016x") == PARENT
    children = [s for s in spans if s.parent is not None and s.parent.span_id == root.context.span_id]
    names = {s.name for s in children}
    # the debit at the wallet, the credit at the acquirer, the payment's writes: all in the request's trace
    assert {"partner kakaopay-kr pay", "partner alipay-cn notify", "store.update_payment"} <= names, names
    assert len({n for n in names if n.startswith("store.")}) >= 3, names
    partner_spans = {format(s.context.span_id, "016x") for s in children if s.name.startswith("partner ")
                     and s.context is not None}
    # every partner got our trace id, and the parent it names is our span of that very call
    assert stack.partner_traceparents and all(tp.startswith(f"00-{TRACE_ID}-") for tp in stack.partner_traceparents)
    assert {tp.split("-")[2] for tp in stack.partner_traceparents} <= partner_spans


async def test_every_log_line_of_the_request_carries_its_trace_id_and_one_access_line(stack: Stack) -> None:
    body = await pay(stack)
    await stack.client.get(f"/v1/payments/{body['payment_id']}")
    async with httpx.AsyncClient(base_url=stack.url) as plain:
        refused = await plain.post("/v1/payments", json=PAY)
    assert refused.status_code == 401
    access = stack.access_lines()
    assert [(a["method"], a["route"], a["status"]) for a in access] == [
        ("POST", "/v1/payments", 201), ("GET", "/v1/payments/{payment_id}", 200), ("POST", "/v1/payments", 401)]
    first, _, unsigned = access
    assert first["partner"] == "kakaopay-kr" and first["keyid"] and first["code"] is None
    assert first["trace_id"] == TRACE_ID and first["latency_ms"] >= 0 and first["request_id"]
    assert unsigned["code"] == "SIGNATURE_MISSING" and unsigned["partner"] is None
    during = [json.loads(x) for x in stack.logs.getvalue().splitlines()
              if x.startswith("{") and json.loads(x).get("request_id") == first["request_id"]]
    assert len(during) > 1 and all(line.get("trace_id") == TRACE_ID for line in during)


DOCUMENTED = (
    "qrgw_http_requests", "qrgw_http_request_duration_seconds", "qrgw_payments", "qrgw_partner_calls",
    "qrgw_partner_http_requests", "qrgw_partner_call_seconds", "qrgw_partner_outcomes", "qrgw_fx_quotes",
    "qrgw_fx_limit_refusals", "qrgw_fx_rate_table_age_seconds", "qrgw_payments_in_flight",
    "qrgw_payments_oldest_in_flight_seconds", "qrgw_recovery_lag_seconds", "qrgw_webhook_backlog",
    "qrgw_webhook_deliveries", "qrgw_webhook_dead_letters", "qrgw_signing_key_days_left",
    "process_cpu_seconds", "process_resident_memory_bytes", "python_gc_collections",
)


def families(text: str) -> set[str]:
    """Metric family names served (a counter's without its ``_total``)."""
    return {line.split()[2].removesuffix("_total") for line in text.splitlines() if line.startswith("# TYPE ")}


async def test_the_operator_listener_serves_every_documented_metric(stack: Stack) -> None:
    quote = await stack.client.post("/v1/quotes", json={k: PAY[k] for k in ("qr", "amount", "payer_currency")})
    assert quote.status_code == 201, quote.text
    await pay(stack, quote_id=quote.json()["quote_id"])
    async with httpx.AsyncClient(base_url=stack.admin_url) as admin:
        for _ in range(200):  # the webhook to both partners is delivered in the background
            text = (await admin.get("/metrics")).text
            if "qrgw_webhook_deliveries_total{" in text:
                break
            await asyncio.sleep(0.02)
        ready = await admin.get("/readyz")
    assert set(DOCUMENTED) <= families(text), set(DOCUMENTED) - families(text)
    assert 'qrgw_http_requests_total{method="POST",partner="kakaopay-kr",route="/v1/payments",status="201"} 1.0' in text
    assert 'qrgw_fx_quotes_total{event="issued"} 1.0' in text and 'qrgw_fx_quotes_total{event="redeemed"} 1.0' in text
    assert 'qrgw_partner_call_seconds_count{op="' in text and 'qrgw_partner_outcomes_total{' in text
    days = [float(line.split()[-1]) for line in text.splitlines() if line.startswith("qrgw_signing_key_days_left{")]
    assert days and all(29 < d <= 30 for d in days)
    assert "qrgw_payments_in_flight 0.0" in text
    webhooks = [sp for sp in stack.spans.get_finished_spans() if sp.name.startswith("webhook ")]
    assert {sp.name for sp in webhooks} == {"webhook kakaopay-kr", "webhook alipay-cn"}
    # delivered later, by the worker, yet in the trace of the payment that made the event
    assert all(sp.context and format(sp.context.trace_id, "032x") == TRACE_ID for sp in webhooks)
    assert ready.status_code == 200 and ready.json()["components"]["fx_rates"]["ok"] is True


@pytest.mark.parametrize("stack", [False], indirect=True)
async def test_tracing_off_costs_nothing_yet_passes_the_callers_trace_on(stack: Stack) -> None:
    await pay(stack)
    assert isinstance(stack.app[STORE], MemoryStore)  # no span wrapper around the store
    assert stack.spans.get_finished_spans() == ()
    # the caller's trace still reaches the partners, with the caller's own span as parent
    assert stack.partner_traceparents
    assert all(tp == f"00-{TRACE_ID}-{PARENT}-01" for tp in stack.partner_traceparents)
    assert stack.access_lines()[0]["trace_id"] == TRACE_ID
