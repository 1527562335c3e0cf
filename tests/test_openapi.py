"""``/openapi.json`` is generated from the router: every route is in it, unsigned readers get it,
the RFC 9421 profile is its security scheme and the webhook events are under ``webhooks``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from loopback import start

from gateway.api.openapi import OPERATIONS
from gateway.app import create_app
from gateway.config import Settings
from gateway.events import EVENT_TYPES
from gateway.signing import generate_key, private_pem
from gateway.testing.api import serve_api


async def fetch(tmp_path: Path) -> tuple[dict[str, Any], set[tuple[str, str]], httpx.Response]:
    (tmp_path / "gw.pem").write_bytes(private_pem(generate_key("ed25519")))
    settings = Settings(server={"public_url": "https://gw.example"},
                        gateway={"keys": [{"keyid": "qrgw-gw", "alg": "ed25519", "private_key": tmp_path / "gw.pem"}]})
    app = create_app(settings)
    routes = {(r.method, r.resource.canonical) for r in app.router.routes()
              if r.method != "HEAD" and r.resource is not None}
    runner, url = await start(app)
    try:
        async with httpx.AsyncClient() as plain:  # no signature
            r = await plain.get(f"{url}/openapi.json")
    finally:
        await runner.cleanup()
    return r.json(), routes, r


async def test_every_route_of_the_router_is_described(tmp_path: Path) -> None:
    doc, routes, r = await fetch(tmp_path)
    assert r.status_code == 200 and r.headers["Server"] == "qrgw"
    served = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert routes == served
    assert {("POST", "/v1/qr/decode"), ("GET", "/v1/settlements/{date}")} <= served
    # a route without its entry in OPERATIONS would be published with a guessed summary and no models
    assert routes <= set(OPERATIONS), routes - set(OPERATIONS)


async def test_security_scheme_servers_and_webhooks(tmp_path: Path) -> None:
    doc, _, _ = await fetch(tmp_path)
    scheme = doc["components"]["securitySchemes"]["qrgwSignature"]
    assert scheme["name"] == "Signature" and scheme["x-rfc9421-profile"]["tag"] == "qrgw-v1"
    assert doc["security"] == [{"qrgwSignature": []}] and doc["servers"] == [{"url": "https://gw.example"}]
    assert doc["paths"]["/.well-known/jwks.json"]["get"]["security"] == []
    assert "security" not in doc["paths"]["/v1/payments"]["post"]  # signed: the document's default
    assert set(doc["webhooks"]) == EVENT_TYPES
    assert doc["components"]["schemas"]["WebhookEvent"]["properties"]["type"]["enum"] == sorted(EVENT_TYPES)
    refunds = doc["paths"]["/v1/payments/{payment_id}/refunds"]["post"]
    assert refunds["parameters"][0]["name"] == "payment_id" and "requestBody" in refunds


async def test_no_version_banner_even_from_the_http_parser(tmp_path: Path) -> None:
    """A head the parser refuses is answered outside the app (gateway.serving): still no banner."""
    async with serve_api(tmp_path, hardened=True) as api, httpx.AsyncClient(base_url=api.url) as raw:
        refused = await raw.get("/v1/payments/pay_x", headers={"X-Big": "a" * 20_000})
        ok = await raw.get("/healthz")
    assert refused.status_code == 431 and refused.headers["Server"] == "qrgw"
    assert ok.headers["Server"] == "qrgw"
