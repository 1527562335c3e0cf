"""The one place where errors become RFC 9457 problem+json answers.

Every ``QrgwError`` maps to its status and stable code; aiohttp's own HTTP exceptions
(404 unknown path, 405 wrong method, 413 body too large) map to ours; anything else is a
500 ``INTERNAL_ERROR`` that is logged with its traceback and never shown to the caller.
The request-id middleware runs outside this one, so every problem carries ``instance``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from schemas.errors import (
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    QrgwError,
    RateLimited,
    RequestError,
    StoreUnavailable,
)

PROBLEM_TYPE = "https://errors.qrgw.dev/"
REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_KEY = "request_id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
log = structlog.get_logger("gateway.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem_body(exc: QrgwError, request_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + exc.code,
        "title": exc.title,
        "status": exc.status,
        "code": exc.code,
        "detail": exc.detail,
        "instance": request_id or exc.request_id,
    }
    for k, v in exc.extra.items():
        body.setdefault(k, v)
    return body


def problem_response(exc: QrgwError, request_id: str | None) -> web.Response:
    import json

    resp = web.Response(
        status=exc.status,
        body=json.dumps(problem_body(exc, request_id), separators=(",", ":")).encode(),
        content_type="application/problem+json",
    )
    retry_after = exc.extra.get("retry_after")
    if retry_after is None and isinstance(exc, StoreUnavailable | RateLimited):
        retry_after = 1
    if retry_after is not None:
        resp.headers["Retry-After"] = str(max(1, int(-(-float(retry_after) // 1))))
    return resp


def map_http_exception(exc: web.HTTPException) -> QrgwError:
    if exc.status == 404:
        return NotFound("no such resource")
    if exc.status == 405:
        return MethodNotAllowed(f"method not allowed; allowed: {exc.headers.get('Allow', '')}")
    if exc.status == 413:
        return PayloadTooLarge("request body exceeds the configured maximum size")
    err = RequestError(exc.reason or "bad request")
    err.status = exc.status  # type: ignore[misc]
    return err


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Adopt the caller's valid X-Request-Id or make one; bind it to every log line."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    rid = given if _VALID_REQUEST_ID.match(given) else f"req_{uuid.uuid4().hex}"
    request[REQUEST_ID_KEY] = rid
    with structlog.contextvars.bound_contextvars(request_id=rid):
        resp = await handler(request)
    resp.headers[REQUEST_ID_HEADER] = rid
    return resp


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = request.get(REQUEST_ID_KEY)
    try:
        return await handler(request)
    except QrgwError as exc:
        if exc.status >= 500:
            log.warning("request_failed", code=exc.code, detail=exc.detail, path=request.path)
        return problem_response(exc, rid)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem_response(map_http_exception(exc), rid)
    except Exception:
        log.exception("unhandled_error", path=request.path, method=request.method)
        return problem_response(QrgwError("internal error; the request id identifies it in our logs"), rid)
