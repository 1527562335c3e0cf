"""Issue 15 'Also found', over real loopback HTTP: idempotency keys scoped to their caller,
hostile JSON, a maximum amount, JSON bodies that are not objects, roles on every route,
and the signed ``@authority``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest

from adapters.sandbox.qrgw import QrgwSandbox
from adapters.sandbox.server import SandboxConfig
from gateway.api.roles import ROUTE_ROLES
from gateway.signing import UNSIGNED_PATHS, KeyRegistry, QrgwAuth, Signer, sign_request
from gateway.testing.api import BOTH, PAY, Api, problem, serve_api
from gateway.testing.payments import SEOUL_STATIC
from gateway.testing.signing import entry_for, make_signer
from schemas import jsonsafe
from schemas.errors import InvalidJSON

ROLES = {
    "alipay-cn": ("CN", "CNY", BOTH),
    "kakaopay-kr": ("KR", "KRW", ("acquirer",)),
    "openwallet-sg": ("SG", "SGD", ("wallet",)),
}
JSON = {"content-type": "application/json"}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with serve_api(tmp_path, ROLES, server={"max_body_bytes": 65536}) as served:
        yield served


async def paid(api: Api, request_id: str = "p-1") -> str:
    r = await api["alipay-cn"].post("/v1/payments", json={**PAY, "payment_request_id": request_id})
    assert r.status_code == 201, r.text
    return str(r.json()["payment_id"])


def refund(request_id: str, value: str) -> dict[str, Any]:
    return {"refund_request_id": request_id, "amount": {"currency": "KRW", "value": value}}


# --- 1. idempotency keys belong to their caller ----------------------------------------------------
async def test_the_same_refund_id_from_another_caller_is_another_refund(api: Api) -> None:
    pid = await paid(api)
    wallet, acquirer = api["alipay-cn"], api["kakaopay-kr"]
    assert (await wallet.post(f"/v1/payments/{pid}/refunds", json=refund("r-1", "5000"))).status_code == 201
    theirs = await acquirer.post(f"/v1/payments/{pid}/refunds", json=refund("r-1", "3000"))
    assert theirs.status_code == 201, theirs.text
    refunds = theirs.json()["refunds"]
    assert sorted(int(r["amount"]["value"]) for r in refunds) == [3000, 5000]  # not silently dropped
    stored = await api.h.store.get_payment(pid)
    assert stored is not None and {r.requested_by for r in stored.refunds} == {"alipay-cn", "kakaopay-kr"}
    again = await acquirer.post(f"/v1/payments/{pid}/refunds", json=refund("r-1", "3000"))
    assert again.status_code == 200 and len(again.json()["refunds"]) == 2
    problem(await acquirer.post(f"/v1/payments/{pid}/refunds", json=refund("r-1", "10")), 409, "IDEMPOTENCY_CONFLICT")
    problem(await wallet.post(f"/v1/payments/{pid}/refunds", json=refund("r-1", "10")), 409, "IDEMPOTENCY_CONFLICT")


async def test_the_same_cancel_id_from_another_caller_is_not_answered_as_accepted(api: Api) -> None:
    pid = await paid(api)
    done = await api["alipay-cn"].post(f"/v1/payments/{pid}/cancel", json={"cancel_request_id": "c-1"})
    assert done.status_code == 200 and done.json()["status"] == "CANCELLED"
    again = await api["alipay-cn"].post(f"/v1/payments/{pid}/cancel", json={"cancel_request_id": "c-1"})
    assert again.status_code == 200 and again.json()["cancel"]["status"] == "SUCCEEDED"
    theirs = await api["kakaopay-kr"].post(f"/v1/payments/{pid}/cancel", json={"cancel_request_id": "c-1"})
    problem(theirs, 409, "INVALID_STATE")  # its own request, of a payment already cancelled
    assert api.h.wallets["alipay-cn"].calls["cancel"] == 1


# --- 3 and 7. hostile JSON, and JSON that is not an object -----------------------------------------
HOSTILE = {
    "deep": b"[" * 20_000 + b"]" * 20_000,
    "deep object": b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    "long integer": b'{"qr": ' + b"9" * 5_000 + b"}",
    "long float": b'{"qr": 0.' + b"1" * 100 + b"}",
    "NaN": b'{"qr": NaN}',
    "array": b"[]",
    "string": b'"payment"',
    "number": b"7",
}


@pytest.mark.parametrize("name", HOSTILE)
async def test_hostile_or_non_object_json_is_400_invalid_json_on_every_route(api: Api, name: str) -> None:
    pid = await paid(api)
    c = api["alipay-cn"]
    for path in ("/v1/payments", "/v1/quotes", "/v1/qr/decode", f"/v1/payments/{pid}/refunds",
                 f"/v1/payments/{pid}/cancel"):
        problem(await c.post(path, content=HOSTILE[name], headers=JSON), 400, "INVALID_JSON")


async def test_the_sandbox_partners_refuse_hostile_json_too() -> None:
    gw = make_signer("ed25519", "qrgw-gw-1")
    sbx = QrgwSandbox(SandboxConfig("openwallet-sg", "SGD", make_signer("ed25519", "sbx-1"), [entry_for(gw, "qrgw")]))
    url = await sbx.start()
    auth = QrgwAuth(gw, KeyRegistry([gw], [entry_for(sbx.cfg.signer, "openwallet-sg")]), "openwallet-sg")
    try:
        async with httpx.AsyncClient(base_url=url, auth=auth) as c:
            for name in ("deep", "long integer", "NaN"):
                r = await c.post("/qrgw/v1/debits", content=HOSTILE[name], headers=JSON)
                assert r.status_code == 400 and r.json()["code"] == "INVALID_JSON", r.text
            webhook = await c.post("/webhooks", content=HOSTILE["deep"], headers=JSON)
            assert webhook.status_code == 400 and webhook.json()["code"] == "INVALID_JSON"
    finally:
        await sbx.stop()


def test_the_scan_ignores_brackets_and_digits_inside_strings() -> None:
    text = '{"qr": "' + "[" * 100 + "9" * 100 + '\\"]", "n": [[1, 2.5e10]]}'
    assert jsonsafe.loads(text.encode())["n"] == [[1, 2.5e10]]
    with pytest.raises(InvalidJSON):
        jsonsafe.loads(b'{"a": "\\\\", "b": ' + b"[" * 40 + b"]" * 40 + b"}")  # the escaped \ ends the string


# --- 4. a maximum amount ---------------------------------------------------------------------------
BIG = "9" * 31


async def test_amounts_past_the_maximum_are_refused_in_payments_quotes_and_refunds(api: Api) -> None:
    pid = await paid(api)
    c, big = api["alipay-cn"], {"currency": "KRW", "value": BIG}
    body = problem(await c.post("/v1/payments", json={**PAY, "payment_request_id": "p-9", "amount": big}),
                   422, "AMOUNT_TOO_LARGE")
    assert body["detail"].startswith("amount.value")
    problem(await c.post("/v1/quotes", json={"qr": SEOUL_STATIC, "amount": big, "payer_currency": "CNY"}),
            422, "AMOUNT_TOO_LARGE")
    problem(await c.post(f"/v1/payments/{pid}/refunds", json=refund("r-9", BIG)), 422, "AMOUNT_TOO_LARGE")
    problem(await c.post(f"/v1/payments/{pid}/refunds", json=refund("r-9", "1" + "0" * 15)), 422, "AMOUNT_TOO_LARGE")
    at_max = await c.post(f"/v1/payments/{pid}/refunds", json=refund("r-9", "9" * 15))
    problem(at_max, 422, "REFUND_EXCEEDS_PAYMENT")  # within the maximum: judged on its merits
    assert await api.h.store.payments_in_progress() == []


# --- 8. roles on every route -----------------------------------------------------------------------
async def test_an_acquirer_only_partner_can_neither_quote_nor_pay(api: Api) -> None:
    k = api["kakaopay-kr"]
    quote = {"qr": SEOUL_STATIC, "amount": PAY["amount"], "payer_currency": "KRW"}
    body = problem(await k.post("/v1/quotes", json=quote), 403, "ROLE_NOT_ALLOWED")
    assert "wallet" in body["detail"]
    problem(await k.post("/v1/payments", json={**PAY, "payer_currency": "KRW"}), 403, "ROLE_NOT_ALLOWED")
    assert api.h.acquirers["kakaopay-kr"].calls.total() == 0
    pid = await paid(api)
    assert (await k.get(f"/v1/payments/{pid}")).status_code == 200  # on the route as its acquirer


async def test_a_wallet_only_partner_is_refused_an_acquirer_only_route(tmp_path: Path) -> None:
    table = {**ROUTE_ROLES, ("GET", "/v1/payments/{payment_id}"): frozenset({"acquirer"})}
    with mock.patch("gateway.api.roles.ROUTE_ROLES", table):  # as if reading were acquirer-only
        async with serve_api(tmp_path, ROLES) as api:
            problem(await api["openwallet-sg"].get("/v1/payments/pay_x"), 403, "ROLE_NOT_ALLOWED")
            problem(await api["alipay-cn"].get("/v1/payments/pay_x"), 404, "PAYMENT_NOT_FOUND")


def test_every_signed_route_has_a_role_decision(api: Api) -> None:
    routes = [(r.method, r.resource.canonical) for r in api.app.router.routes() if r.resource is not None]
    signed = [(m, path) for m, path in routes if path not in UNSIGNED_PATHS and m != "HEAD"]
    assert ("POST", "/v1/payments") in signed
    assert [key for key in signed if key not in ROUTE_ROLES] == []


# --- 2. @authority ---------------------------------------------------------------------------------
def signed_for(signer: Signer, method: str, url: str, body: bytes | None = None) -> dict[str, str]:
    headers: dict[str, str] = {"content-type": "application/json"} if body is not None else {}
    sign_request(signer, method=method, url=url, headers=headers, body=body)
    return headers


async def test_a_request_signed_for_another_authority_is_refused(api: Api) -> None:
    signer = api.signers["alipay-cn"]
    async with httpx.AsyncClient(base_url=api.url) as raw:
        evil = signed_for(signer, "GET", "http://evil.example/v1/payments/pay_x")
        body = problem(await raw.get("/v1/payments/pay_x", headers={**evil, "Host": "evil.example"}),
                       401, "SIGNATURE_INVALID")
        assert "evil.example" in body["detail"] and body["authority"] == api.url.removeprefix("http://")
        ok = signed_for(signer, "GET", f"{api.url}/v1/payments/pay_x")
        problem(await raw.get("/v1/payments/pay_x", headers=ok), 404, "PAYMENT_NOT_FOUND")


async def test_with_a_public_url_the_signature_must_name_it_whatever_host_says(tmp_path: Path) -> None:
    public = "https://api.qrgw.example"
    async with serve_api(tmp_path, server={"public_url": public}) as api:
        signer = api.signers["alipay-cn"]
        async with httpx.AsyncClient(base_url=api.url) as raw:
            evil = signed_for(signer, "GET", "https://evil.example/v1/payments/pay_x")
            body = problem(await raw.get("/v1/payments/pay_x", headers={**evil, "Host": "evil.example"}),
                           401, "SIGNATURE_INVALID")
            assert body["authority"] == "api.qrgw.example" and "evil.example" in body["detail"]
            wrong_scheme = signed_for(signer, "GET", "http://api.qrgw.example:443/v1/payments/pay_x")
            problem(await raw.get("/v1/payments/pay_x", headers=wrong_scheme), 401, "SIGNATURE_INVALID")
            proxied = signed_for(signer, "GET", f"{public}/v1/payments/pay_x")  # a proxy rewrote Host
            problem(await raw.get("/v1/payments/pay_x", headers={**proxied, "Host": "10.0.0.7:8080"}),
                    404, "PAYMENT_NOT_FOUND")


def test_public_url_is_validated_and_accepts_its_earlier_name() -> None:
    from pydantic import ValidationError

    from gateway.config import ServerSettings

    assert ServerSettings(public_url="https://API.qrgw.example/").public_url == "https://API.qrgw.example"
    assert ServerSettings(base_url="https://api.qrgw.example:8443").public_url == "https://api.qrgw.example:8443"
    for bad in ("api.qrgw.example", "https://api.qrgw.example/v1", "ftp://x", "https://user@x"):
        with pytest.raises(ValidationError):
            ServerSettings(public_url=bad)
