"""``POST /v1/qr/decode``: the decoded merchant code and the route this caller would get.

Answer: ``{"qr": <decoded>, "route": <route> | null, "candidates": [...], "reason": null | {"code",
"detail", "candidates"}}``. Each candidate (docs/routing.md) names its template, its acquirer, whether
it was chosen and why (not). A code that does not decode is a 422 problem (QR_*); a code that decodes
but has no usable route is a 200 with ``route: null`` and the reason, so a wallet can still show the
merchant. A preview: it takes no half-open probe slot.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.api.edge import read_json
from gateway.qr import decode
from gateway.routing_app import routing_ctx, routing_table
from schemas.api import DecodeRequest


async def decode_handler(request: web.Request) -> web.Response:
    body = await read_json(request, DecodeRequest)
    qr = decode(body.qr)
    decision = routing_table(request.app).evaluate(qr, str(request["partner_id"]))
    out: dict[str, Any] = {"qr": qr.model_dump(mode="json"), "route": None, "candidates": decision.to_json(),
                           "reason": None}
    if decision.route is None:
        exc = decision.no_route()
        out["reason"] = {"code": exc.code, "detail": exc.detail}
    else:
        out["route"] = decision.route.model_dump(mode="json")
    return web.Response(body=json.dumps(out, ensure_ascii=False).encode(), content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/qr/decode", decode_handler)
    app.cleanup_ctx.append(routing_ctx)  # paused flags refreshed from the store
