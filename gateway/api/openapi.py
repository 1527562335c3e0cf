"""``GET /openapi.json``: OpenAPI 3.1 generated from the app's router and the pydantic models in
``schemas.api``, so neither the list of routes nor their shapes can drift from what the gateway
serves. Readable without a signature (it is public, like the JWKS).

Every route the router holds is in ``paths``; ``OPERATIONS`` adds what a router cannot know (summary,
body and answer models). The RFC 9421 profile of PROTOCOL.md §2 is the security scheme, and the
webhook events of §9 are under ``webhooks``.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway.appkeys import SETTINGS
from gateway.events import EVENT_TYPES
from gateway.signing import UNSIGNED_PATHS
from gateway.signing.messages import REQ_BODY_COMPONENTS, REQ_COMPONENTS, RESP_COMPONENTS
from schemas.api import (
    CancelRequest,
    DecodeRequest,
    LimitsView,
    PaymentRequest,
    PaymentView,
    Problem,
    QuoteRequest,
    QuoteView,
    RefundRequest,
)

REF = "#/components/schemas/{model}"
MODELS: list[type[BaseModel]] = [
    DecodeRequest, QuoteRequest, QuoteView, PaymentRequest, PaymentView, CancelRequest, RefundRequest, LimitsView,
    Problem,
]
Answers = dict[str, tuple[str, type[BaseModel] | None]]
VIEW = ("The payment", PaymentView)
# (METHOD, path) -> (summary, request model, answers): the part of an operation a router cannot know.
OPERATIONS: dict[tuple[str, str], tuple[str, type[BaseModel] | None, Answers]] = {
    ("POST", "/v1/quotes"): ("Lock a quote", QuoteRequest, {"201": ("The quote", QuoteView)}),
    ("POST", "/v1/payments"): (
        "Create a payment (idempotent per payment_request_id)", PaymentRequest,
        {"201": VIEW, "200": VIEW, "202": VIEW},
    ),
    ("GET", "/v1/payments/{payment_id}"): ("Inquire", None, {"200": VIEW}),
    ("POST", "/v1/payments/{payment_id}/cancel"): ("Cancel (full reversal)", CancelRequest, {"200": VIEW, "202": VIEW}),
    ("POST", "/v1/payments/{payment_id}/refunds"): (
        "Refund (partial or full)", RefundRequest, {"201": VIEW, "200": VIEW, "202": VIEW},
    ),
    ("GET", "/v1/limits"): ("What the caller's payer may still spend (wallets)", None,
                            {"200": ("Limits", LimitsView)}),
    ("POST", "/v1/qr/decode"): ("Decode a merchant QR and name its route", DecodeRequest,
                                {"200": ("The decoded QR, its route or why there is none", None)}),
    ("GET", "/v1/settlements/{date}"): ("The caller's settlement report of a business day (JSON or CSV)", None,
                                        {"200": ("The report", None)}),
    ("GET", "/v1/settlements/windows/{window_id}"): (
        "The caller's frozen batch of a closed settlement window (JSON or CSV; PROTOCOL.md §9.1)", None,
        {"200": ("The batch", None), "404": ("No such window, or not closed yet", None)},
    ),
    ("GET", "/.well-known/jwks.json"): ("The gateway's public keys (JWK Set)", None, {"200": ("JWK Set", None)}),
    ("GET", "/healthz"): ("Liveness", None, {"200": ("Alive", None)}),
    ("GET", "/readyz"): ("Readiness of each component", None, {"200": ("Ready", None), "503": ("Not ready", None)}),
    ("GET", "/openapi.json"): ("This document", None, {"200": ("OpenAPI 3.1", None)}),
}
QUERY: dict[tuple[str, str], list[dict[str, Any]]] = {  # query parameters a route reads
    ("GET", "/v1/limits"): [{"name": "payer_id", "in": "query", "required": True, "schema": {"type": "string"}}],
}
SECURITY_SCHEME = {
    "type": "apiKey",  # OpenAPI has no HTTP-signature type: the header, and the profile in words and data
    "in": "header",
    "name": "Signature",
    "description": "HTTP Message Signatures (RFC 9421), the qrgw profile of PROTOCOL.md §2: label `qrgw`, "
    "with `Signature-Input` and, for a body, `Content-Digest` (RFC 9530, sha-256). Every response is signed too.",
    "x-rfc9421-profile": {
        "label": "qrgw",
        "tag": "qrgw-v1",
        "parameters": ["created", "expires", "nonce", "keyid", "alg", "tag"],
        "max_validity_s": 300,
        "algorithms": ["ed25519", "ecdsa-p256-sha256", "rsa-pss-sha512"],
        "covered_components": {"request_with_body": REQ_BODY_COMPONENTS, "request": REQ_COMPONENTS,
                               "response": RESP_COMPONENTS},
        "jwks_uri": "/.well-known/jwks.json",
    },
}
WEBHOOK_EVENT = {
    "type": "object",
    "required": ["event_id", "type", "payment_id", "created_at", "data"],
    "properties": {
        "event_id": {"type": "string", "description": "Stable per change: de-duplicate on it (at-least-once)"},
        "type": {"type": "string", "enum": sorted(EVENT_TYPES)},
        "payment_id": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "data": {"type": "object", "description": "The payment as of the change (PROTOCOL.md §9)"},
    },
}


def _ref(m: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": REF.format(model=m.__name__)}


def _operation(method: str, path: str, handler: Any) -> dict[str, Any]:
    summary, req, answers = OPERATIONS.get(
        (method, path), ((handler.__doc__ or handler.__name__).strip().splitlines()[0], None, {})
    )
    op: dict[str, Any] = {"summary": summary, "operationId": handler.__name__, "responses": {}}
    params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
              for n in re.findall(r"{(\w+)}", path)] + QUERY.get((method, path), [])
    if params:
        op["parameters"] = params
    if req is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(req)}}}
    for code, (desc, model) in answers.items():
        schema = _ref(model) if model is not None else {"type": "object"}
        op["responses"][code] = {"description": desc, "content": {"application/json": {"schema": schema}}}
    op["responses"]["default"] = {
        "description": "Problem details (RFC 9457)",
        "content": {"application/problem+json": {"schema": _ref(Problem)}},
    }
    if path in UNSIGNED_PATHS:
        op["security"] = []  # readable without a signature
    return op


def build_openapi(router: web.UrlDispatcher, public_url: str | None = None, version: str = "1") -> dict[str, Any]:
    """The document for every route ``router`` holds."""
    _, defs = models_json_schema([(m, "validation") for m in MODELS], ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for route in router.routes():
        if route.method in ("HEAD", "*") or route.resource is None:
            continue
        path = route.resource.canonical
        paths.setdefault(path, {})[route.method.lower()] = _operation(route.method, path, route.handler)
    webhooks = {
        t: {"post": {"summary": f"Event {t}, POSTed signed to each partner on the payment's route",
                     "requestBody": {"required": True,
                                     "content": {"application/json": {"schema": {"$ref": REF.format(
                                         model="WebhookEvent")}}}},
                     "responses": {"2XX": {"description": "Received; anything else is retried"}}}}
        for t in sorted(EVENT_TYPES)
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "qrgw gateway API",
            "version": version,
            "description": "Every request and response is signed (RFC 9421, PROTOCOL.md §2).",
        },
        "servers": [{"url": public_url or "/"}],
        "security": [{"qrgwSignature": []}],
        "paths": dict(sorted(paths.items())),
        "webhooks": webhooks,
        "components": {
            "schemas": {**defs.get("$defs", {}), "WebhookEvent": WEBHOOK_EVENT},
            "securitySchemes": {"qrgwSignature": SECURITY_SCHEME},
        },
    }


async def openapi_handler(request: web.Request) -> web.Response:
    app = request.app
    return web.json_response(build_openapi(app.router, app[SETTINGS].server.public_url))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/openapi.json", openapi_handler)
