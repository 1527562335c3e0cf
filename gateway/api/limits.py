"""``GET /v1/limits?payer_id=…``: what the calling wallet's payer may still spend (docs/fx.md).

Wallet role only: the payer id is the caller's own id for its customer, so the answer is about
(caller, payer id), or about the person when this wallet sent a national id hash for that payer
before. Each rule in force, with its legal source and whether it is confirmed or assumed, what
is used and what remains in the rule's currency, and when the window ends; signed like every
answer (the signing middleware).
"""

from __future__ import annotations

from aiohttp import web

from fx.limits import payer_limits
from gateway.appkeys import SETTINGS
from gateway.payments.container import PAYMENTS
from gateway.payments.fxbridge import FxBridge
from schemas.api import LimitsView
from schemas.errors import NotFound, ValidationFailed


async def get_limits(request: web.Request) -> web.Response:
    caller = str(request["partner_id"])
    if not any(p.id == caller and "wallet" in p.roles for p in request.app[SETTINGS].partners):
        raise ValidationFailed(f"partner {caller} has no wallet role: limits belong to a wallet's payers")
    payer_id = request.query.get("payer_id", "")
    if not 1 <= len(payer_id) <= 128 or not payer_id.isprintable():
        raise ValidationFailed("payer_id is required: 1 to 128 printable characters (the wallet's id of its payer)")
    pricing = request.app[PAYMENTS].pricing
    if not isinstance(pricing, FxBridge):
        raise NotFound("limits are not available on this gateway")
    view = LimitsView.model_validate(await payer_limits(pricing.policy, caller, payer_id))
    return web.json_response(view.model_dump(mode="json", exclude_none=True))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/limits", get_limits)
