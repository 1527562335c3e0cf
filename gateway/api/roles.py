"""Roles checked on every route (PROTOCOL.md §1): what a partner may ask depends on its
``partners[].roles``, not only on its signature.

``ROUTE_ROLES`` names, per method and route, the roles of which the caller needs at least one.
A payment is created (and quoted) for the payer, so only a wallet may; reads, cancels and refunds
are open to both roles, since the payment's own route then decides who sees it (404 otherwise).
A route missing from the table is open to any authenticated partner; tests/test_roles.py fails
for every registered route that is missing, so a new route gets a decision, not a default.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.config import Settings
from schemas.errors import Forbidden

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WALLET = frozenset({"wallet"})
ACQUIRER = frozenset({"acquirer"})
ANY = WALLET | ACQUIRER

ROUTE_ROLES: Mapping[tuple[str, str], frozenset[str]] = {
    ("POST", "/v1/quotes"): WALLET,
    ("POST", "/v1/payments"): WALLET,
    ("GET", "/v1/payments/{payment_id}"): ANY,
    ("POST", "/v1/payments/{payment_id}/cancel"): ANY,
    ("POST", "/v1/payments/{payment_id}/refunds"): ANY,
    ("POST", "/v1/qr/decode"): ANY,  # a wallet before paying; an acquirer checking the codes it prints
    ("GET", "/v1/settlements/{date}"): ANY,
    ("GET", "/v1/settlements/windows/{window_id}"): ANY,  # every partner has a batch per window
    ("GET", "/v1/limits"): WALLET,  # a wallet's own payers' allowance (docs/fx.md)
    ("GET", "/openapi.json"): ANY,
}


def route_key(request: web.Request) -> tuple[str, str] | None:
    """``(method, canonical route)`` of a matched request; None for 404/405 answers."""
    info = request.match_info
    if info.http_exception is not None or info.route.resource is None:
        return None
    return request.method, info.route.resource.canonical


def make_roles_middleware(
    settings: Settings | Callable[[], Settings], table: Mapping[tuple[str, str], frozenset[str]] | None = None
) -> Middleware:
    """403 ``ROLE_NOT_ALLOWED`` when the authenticated caller has none of the route's roles. Runs
    after the signature check (``request["partner_id"]``); unsigned paths carry no partner.
    ``settings`` may be a callable returning the current settings (``gateway.live`` reloads)."""
    current: Callable[[], Settings] = (lambda: settings) if isinstance(settings, Settings) else settings
    cache: list[tuple[Settings, dict[str, frozenset[str]]]] = []

    def roles_of(partner: str) -> frozenset[str]:
        now = current()
        if not cache or cache[0][0] is not now:
            cache[:] = [(now, {p.id: frozenset(p.roles) for p in now.partners})]
        return cache[0][1].get(partner, frozenset())

    @web.middleware
    async def roles_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        partner, key = request.get("partner_id"), route_key(request)
        rules = ROUTE_ROLES if table is None else table  # looked up per call: tests swap the table
        need = rules.get(key) if key is not None and isinstance(partner, str) else None
        if key is not None and need is not None:
            mine = roles_of(str(partner))
            if not need & mine:
                raise Forbidden(
                    f"{key[0]} {key[1]} needs the {' or '.join(sorted(need))} role; "
                    f"{partner} has {', '.join(sorted(mine)) or 'none'}"
                )
        return await handler(request)

    return roles_middleware
