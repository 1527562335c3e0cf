"""``GET /openapi.json``: OpenAPI 3.1 generated from the pydantic models in ``schemas.api``,
so the published contract cannot drift from the validation the gateway applies."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

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
    LimitsView,
    DecodeRequest,
    QuoteRequest,
    QuoteView,
    PaymentRequest,
    PaymentView,
    CancelRequest,
    RefundRequest,
    Problem,
]


def _ref(m: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": REF.format(model=m.__name__)}


def _json(m: type[BaseModel]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": _ref(m)}}}


def _op(summary: str, req: type[BaseModel] | None, answers: dict[str, tuple[str, type[BaseModel]]]) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {}}
    if req is not None:
        op["requestBody"] = {"required": True, **_json(req)}
    for code, (desc, model) in answers.items():
        op["responses"][code] = {"description": desc, **_json(model)}
    op["responses"]["default"] = {
        "description": "Problem details (RFC 9457)",
        "content": {"application/problem+json": {"schema": _ref(Problem)}},
    }
    return op


def build_openapi(version: str = "1") -> dict[str, Any]:
    _, defs = models_json_schema([(m, "validation") for m in MODELS], ref_template=REF)
    pid = [{"name": "payment_id", "in": "path", "required": True, "schema": {"type": "string"}}]
    view = ("The payment", PaymentView)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "qrgw gateway API",
            "version": version,
            "description": "Every request and response is signed (RFC 9421, PROTOCOL.md §2).",
        },
        "paths": {
            "/v1/quotes": {"post": _op("Lock a quote", QuoteRequest, {"201": ("The quote", QuoteView)})},
            "/v1/payments": {
                "post": _op(
                    "Create a payment (idempotent per payment_request_id)",
                    PaymentRequest,
                    {"201": view, "200": view, "202": view},
                )
            },
            "/v1/limits": {
                "get": {
                    **_op("What the caller's payer may still spend (wallets)", None, {"200": ("Limits", LimitsView)}),
                    "parameters": [{"name": "payer_id", "in": "query", "required": True, "schema": {"type": "string"}}],
                }
            },
            "/v1/payments/{payment_id}": {"get": {**_op("Inquire", None, {"200": view}), "parameters": pid}},
            "/v1/payments/{payment_id}/cancel": {
                "post": {**_op("Cancel (full reversal)", CancelRequest, {"200": view, "202": view}), "parameters": pid}
            },
            "/v1/payments/{payment_id}/refunds": {
                "post": {
                    **_op("Refund (partial or full)", RefundRequest, {"201": view, "200": view, "202": view}),
                    "parameters": pid,
                }
            },
        },
        "components": {"schemas": defs.get("$defs", {})},
    }


async def openapi_handler(request: web.Request) -> web.Response:
    return web.json_response(build_openapi())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/openapi.json", openapi_handler)
