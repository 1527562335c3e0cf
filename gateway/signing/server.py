"""aiohttp side of the profile: the verifying + signing middleware and the JWKS handler.

The middleware verifies every inbound request before any handler runs (the handler sees
``request["partner_id"]`` and ``request["signature"]``) and signs every answer, errors
included; it sits inside ``request_id_middleware`` and outside ``problem_middleware`` so that
problem+json answers are signed too. Paths in ``unsigned_paths`` are neither verified nor signed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import payload, web
from aiohttp.typedefs import Middleware

from gateway.signing.keys import KeyRegistry
from gateway.signing.messages import NonceStore, normalize_authority, sign_response
from gateway.signing.verify import verify_request
from schemas.errors import PayloadTooLarge, QrgwError, RequestError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RenderError = Callable[[QrgwError, str | None], web.Response]
UNSIGNED_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/.well-known/jwks.json"})
log = logging.getLogger("gateway.signing")


def _http_error(exc: web.HTTPException) -> QrgwError:
    if exc.status == 413:
        return PayloadTooLarge("request body exceeds the configured maximum size")
    err = RequestError(exc.reason or "bad request")
    err.status = exc.status  # type: ignore[misc]
    return err


def _body_bytes(resp: web.Response) -> bytes | None:
    body = resp.body
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    if isinstance(body, payload.BytesPayload):
        return bytes(body._value)
    return None


def request_url(request: web.Request) -> str:
    """The URL as the caller addressed it, for ``verify_request``: scheme, the Host it sent, and the
    raw target (``str(request.url)`` would re-normalise percent-encoding and break the signature)."""
    return f"{request.scheme}://{request.host}{request.raw_path}"


def make_signing_middleware(
    registry: KeyRegistry,
    nonces: NonceStore,
    render_error: RenderError,
    unsigned_paths: frozenset[str] = UNSIGNED_PATHS,
    *,
    public_base_url: str | None = None,
) -> Middleware:
    """Build the middleware. ``@authority`` is the Host the caller used (lower-cased, default
    port dropped), or the authority of ``public_base_url`` when set (behind a proxy that
    rewrites Host)."""
    fixed: tuple[str, str] | None = None
    if public_base_url:
        scheme, _, rest = public_base_url.partition("://")
        fixed = (scheme.lower(), normalize_authority(rest.split("/", 1)[0], scheme.lower()))

    def sign(request: web.Request, resp: web.StreamResponse, req_sig: str) -> web.StreamResponse:
        body = _body_bytes(resp) if isinstance(resp, web.Response) else None
        if body is None or not isinstance(resp, web.Response):
            # A streamed answer cannot be signed up front: fail closed rather than send it unsigned.
            log.error("unsignable response %s on %s", type(resp).__name__, request.path)
            resp = render_error(QrgwError("response could not be signed"), request.get("request_id"))
            body = _body_bytes(resp) or b""
        if "Content-Type" not in resp.headers:
            resp.content_type = "application/octet-stream"
        path = request.raw_path.split("?", 1)[0] or "/"
        sign_response(registry.signer, status=resp.status, headers=resp.headers, body=body,
                      req_method=request.method, req_path=path, req_signature=req_sig)
        return resp

    @web.middleware
    async def signing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in unsigned_paths:
            return await handler(request)
        rid = request.get("request_id")
        req_sig = ", ".join(request.headers.getall("Signature", []))
        try:
            body = await request.read()
            url = f"{fixed[0]}://{fixed[1]}{request.raw_path}" if fixed else request_url(request)
            verified = await verify_request(registry, nonces, method=request.method, url=url,
                                            headers=request.headers, body=body)
        except QrgwError as exc:
            log.info("signature rejected on %s: %s: %s", request.path, exc.code, exc.detail)
            return sign(request, render_error(exc, rid), req_sig)
        except web.HTTPException as exc:
            return sign(request, render_error(_http_error(exc), rid), req_sig)
        request["partner_id"] = verified.partner_id
        request["signature"] = verified.signature
        try:
            resp = await handler(request)
        except QrgwError as exc:  # normally answered by problem_middleware inside us
            resp = render_error(exc, rid)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            resp = render_error(_http_error(exc), rid)
        return sign(request, resp, req_sig)

    return signing_middleware


def make_jwks_handler(registry: KeyRegistry) -> Callable[[web.Request], Awaitable[web.Response]]:
    """``GET /.well-known/jwks.json``: the gateway's public keys, unsigned, cacheable."""
    body = json.dumps(registry.jwks(), separators=(",", ":")).encode()

    async def jwks(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/jwk-set+json",
                            headers={"Cache-Control": "public, max-age=300"})

    return jwks

