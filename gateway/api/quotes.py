"""``POST /v1/quotes``: a locked quote for a QR, an amount and the payer's currency."""

from __future__ import annotations

import json

from aiohttp import web

from gateway.api.edge import read_json
from gateway.payments.container import PAYMENTS
from gateway.payments.planning import merchant_amount
from schemas.api import QuoteRequest, QuoteView
from schemas.errors import FXError


async def create_quote(request: web.Request) -> web.Response:
    body = await read_json(request, QuoteRequest)
    svc = request.app[PAYMENTS]
    caller = str(request["partner_id"])
    resolved = svc.resolver.resolve(body.qr, caller)
    amount = merchant_amount(resolved, body.amount)
    if resolved.route.kind == "domestic":
        raise FXError("a domestic route converts nothing: pay without a quote")
    q = await svc.pricing.quote(
        merchant_amount=amount,
        payer_currency=body.payer_currency,
        partner_id=caller,
        qr_fingerprint=resolved.fingerprint,
    )
    view = QuoteView.model_validate(dict(q.wire))
    return web.Response(
        status=201, body=json.dumps(view.model_dump(mode="json")).encode(), content_type="application/json"
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/quotes", create_quote)
