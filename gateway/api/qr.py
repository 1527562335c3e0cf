"""``POST /v1/qr/decode``: the decoded merchant code and the route this caller would get.

Answer: ``{"qr": <decoded>, "route": <route> | null, "reason": null | {"code", "detail"}}``.
A code that does not decode is a 422 problem (QR_*); a code that decodes but has no routed
template is a 200 with ``route: null`` and the reason, so a wallet can still show the merchant.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.api.edge import read_json
from gateway.appkeys import SERVICES, SETTINGS
from gateway.qr import decode
from gateway.routing import RoutingTable
from schemas.api import DecodeRequest
from schemas.errors import NoRoute


def routing_table(app: web.Application) -> RoutingTable:
    """The app's routing table (``app[SERVICES]["routing"]``), built from settings on first use."""
    services = app[SERVICES]
    table = services.get("routing")
    if not isinstance(table, RoutingTable):
        table = services["routing"] = RoutingTable.from_settings(app[SETTINGS])
    return table


async def decode_handler(request: web.Request) -> web.Response:
    body = await read_json(request, DecodeRequest)
    qr = decode(body.qr)
    out: dict[str, Any] = {"qr": qr.model_dump(mode="json"), "route": None, "reason": None}
    try:
        route = routing_table(request.app).resolve(qr, str(request["partner_id"]))
    except NoRoute as exc:
        out["reason"] = {"code": exc.code, "detail": exc.detail}
    else:
        out["route"] = route.model_dump(mode="json")
    return web.Response(body=json.dumps(out, ensure_ascii=False).encode(), content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/qr/decode", decode_handler)
