"""Edge checks of partner requests: JSON bodies (content type, size, syntax, schema) and
per-partner rate limits (a token bucket in the store, shared by every gateway process)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware
from pydantic import BaseModel, ValidationError

from gateway.appkeys import SETTINGS, STORE
from gateway.config import Settings
from gateway.keys import ADMITTED
from schemas.errors import AmountTooLarge, PayloadTooLarge, RateLimited, UnsupportedMediaType, ValidationFailed
from schemas.jsonsafe import loads_object
from schemas.money import AMOUNT_TOO_LARGE, EDGE

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(body)"


async def read_json(request: web.Request, model: type[M]) -> M:
    """The body as ``model``: 415 unless JSON (UTF-8), 413 over the size limit, 400 when not a
    JSON object (or too deep, or a number too long), 422 naming the first bad field (422
    ``AMOUNT_TOO_LARGE`` for an amount past the maximum)."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType(f"Content-Type must be application/json, not {request.content_type or 'none'}")
    if request.charset not in (None, "utf-8", "UTF-8"):
        raise UnsupportedMediaType("JSON bodies are UTF-8")
    limit = request.app[SETTINGS].server.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"body exceeds {limit} bytes")
    raw = await request.read()  # aiohttp enforces client_max_size too (→ 413 via problems)
    if len(raw) > limit:
        raise PayloadTooLarge(f"body exceeds {limit} bytes")
    data = loads_object(raw)  # depth and number length bounded before parsing (hostile bodies)
    try:
        return model.model_validate(data, context=EDGE)
    except ValidationError as exc:
        errs = exc.errors(include_url=False, include_input=False)
        first = errs[0]
        too_large = next((e for e in errs if e["type"] == AMOUNT_TOO_LARGE), None)
        if too_large is not None:
            raise AmountTooLarge(f"{_loc(tuple(too_large['loc']))}: {too_large['msg']}") from None
        raise ValidationFailed(
            f"{_loc(tuple(first['loc']))}: {first['msg']}",
            errors=[{"field": _loc(tuple(e["loc"])), "message": e["msg"]} for e in errs[:10]],
        ) from None


def make_rate_limit_middleware(settings: Settings) -> Middleware:
    """Per-partner token bucket (``partners[].rate_limit``); runs after the signature check,
    so ``request["partner_id"]`` is the authenticated caller."""
    limits = {p.id: p.rate_limit for p in settings.partners}

    @web.middleware
    async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        partner = request.get("partner_id")
        limit = limits.get(partner) if isinstance(partner, str) else None
        if limit is not None:
            taken, _ = ADMITTED.get(), ADMITTED.set(None)
            if taken is not None and taken[0] == partner:
                wait = taken[1]  # taken with the nonce check, in the same round trip
            else:
                wait = await request.app[STORE].take_token(f"rl:{partner}", limit.rate_per_s, limit.burst)
            if wait > 0:
                raise RateLimited(f"rate limit of {limit.rate_per_s}/s exceeded", retry_after=round(wait, 3))
        return await handler(request)

    return rate_limit_middleware
