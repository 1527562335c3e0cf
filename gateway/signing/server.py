"""aiohttp side of the profile: the verifying + signing middleware and the JWKS handler.

The middleware verifies every inbound request before any handler runs (the handler sees
``request["partner_id"]`` and ``request["signature"]``), signed for the gateway's own
``@authority`` (``Authority``), and signs every answer, errors included; it sits inside
``request_id_middleware`` and outside ``problem_middleware`` so that problem+json answers are
signed too. Paths in ``unsigned_paths`` are neither verified nor signed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import payload, web
from aiohttp.typedefs import Middleware

from gateway.signing.keys import KeyRegistry
from gateway.signing.messages import NonceStore, normalize_authority, sign_response
from gateway.signing.verify import verify_request
from schemas.errors import PayloadTooLarge, QrgwError, RequestError, SignatureInvalid

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RenderError = Callable[[QrgwError, str | None], web.Response]
# Public reads: probes, the gateway's keys and its API description. /metrics is not among them:
# it is served on the operator listener only (gateway.obs.admin).
UNSIGNED_PATHS = frozenset({"/healthz", "/readyz", "/.well-known/jwks.json", "/openapi.json"})
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


def sign_answer(
    registry: KeyRegistry, render_error: RenderError, request: web.BaseRequest, resp: web.StreamResponse, req_sig: str
) -> web.StreamResponse:
    """Sign ``resp`` bound to the request's method, path and signature (unbound when it had none)."""
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


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class Authority:
    """Which ``@authority`` (and scheme) a request must be signed for (RFC 9421 §7.2).

    With a public URL (``server.public_url``) it is that URL's, whatever ``Host`` says (a proxy
    may rewrite it). Without one (local use) it is the address the connection reached: the
    configured ``local_hosts`` or the socket's own IP, with the port the socket is bound to —
    never a name the caller chose, so a request addressed to ``evil.example`` is refused."""

    def __init__(self, public_url: str | None = None, local_hosts: Sequence[str] = ()) -> None:
        self.fixed: tuple[str, str] | None = None
        if public_url:
            scheme, _, rest = public_url.partition("://")
            self.fixed = (scheme.lower(), normalize_authority(rest.split("/", 1)[0], scheme.lower()))
        self.local_hosts = tuple(h for h in local_hosts if h not in ("", "0.0.0.0", "::"))

    def expected(self, request: web.Request) -> tuple[str, frozenset[str]]:
        if self.fixed is not None:
            return self.fixed[0], frozenset({self.fixed[1]})
        scheme = request.scheme  # from the transport (TLS or not), not from a header
        sock = request.transport.get_extra_info("sockname") if request.transport is not None else None
        if not sock or not isinstance(sock, tuple):
            return scheme, frozenset()
        hosts = {*self.local_hosts, str(sock[0])}
        return scheme, frozenset(normalize_authority(f"{_host(h)}:{sock[1]}", scheme) for h in hosts)

    def url(self, request: web.Request) -> str:
        """The URL to verify the signature over; ``SignatureInvalid`` naming the expected authority
        when the request was addressed elsewhere and no public URL overrides the Host."""
        scheme, allowed = self.expected(request)
        given = normalize_authority(request.headers.get("Host", ""), scheme)
        if given in allowed:
            return f"{scheme}://{given}{request.raw_path}"
        want = min(allowed) if allowed else "(unknown)"
        if self.fixed is None:
            raise SignatureInvalid(
                f"request addressed to @authority {given or '(none)'!r}; this gateway is {want!r}", authority=want
            )
        return f"{scheme}://{want}{request.raw_path}"

    def explain(self, request: web.Request, exc: QrgwError) -> QrgwError:
        """A signature that failed while Host named another authority: say which one counts."""
        if not isinstance(exc, SignatureInvalid) or self.fixed is None:
            return exc
        given = normalize_authority(request.headers.get("Host", ""), self.fixed[0])
        if given == self.fixed[1]:
            return exc
        return SignatureInvalid(
            f"{exc.detail}; it must be signed for @authority {self.fixed[1]!r} (server.public_url), "
            f"the request names {given!r}",
            authority=self.fixed[1],
        )


def make_signing_middleware(
    registry: KeyRegistry | Callable[[], KeyRegistry],
    nonces: NonceStore,
    render_error: RenderError,
    unsigned_paths: frozenset[str] = UNSIGNED_PATHS,
    *,
    public_base_url: str | None = None,
    local_hosts: Sequence[str] = (),
) -> Middleware:
    """Build the middleware. ``@authority`` must be the gateway's own (``Authority``): the one of
    ``public_base_url`` when set (behind a proxy that rewrites Host), else the address the
    connection reached (``local_hosts`` or the socket's IP, with the bound port). ``registry`` may
    be a callable returning the current one (keys that reload, ``gateway.live``): it is read once
    per request, so a request finishes with the keys it started with."""
    authority = Authority(public_base_url, local_hosts)
    current = _getter(registry)

    @web.middleware
    async def signing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in unsigned_paths:
            return await handler(request)
        rid = request.get("request_id")
        reg = current()

        def sign(request: web.Request, resp: web.StreamResponse, req_sig: str) -> web.StreamResponse:
            return sign_answer(reg, render_error, request, resp, req_sig)

        req_sig = ", ".join(request.headers.getall("Signature", []))
        try:
            body = await request.read()
            url = authority.url(request)
            try:
                verified = await verify_request(reg, nonces, method=request.method, url=url,
                                                headers=request.headers, body=body)
            except QrgwError as exc:
                better = authority.explain(request, exc)
                if better is exc:
                    raise
                raise better from exc
        except QrgwError as exc:
            log.info("signature rejected on %s: %s: %s", request.path, exc.code, exc.detail)
            return sign(request, render_error(exc, rid), req_sig)
        except web.HTTPException as exc:
            return sign(request, render_error(_http_error(exc), rid), req_sig)
        request["partner_id"] = verified.partner_id
        request["signature"] = verified.signature
        request["keyid"] = verified.keyid  # for the access log line
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


def _getter(registry: KeyRegistry | Callable[[], KeyRegistry]) -> Callable[[], KeyRegistry]:
    if isinstance(registry, KeyRegistry):
        return lambda: registry
    return registry


def make_jwks_handler(
    registry: KeyRegistry | Callable[[], KeyRegistry],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """``GET /.well-known/jwks.json``: the gateway's public keys, unsigned, cacheable (the body is
    rebuilt only when the registry was swapped)."""
    current = _getter(registry)
    cache: list[tuple[KeyRegistry, bytes]] = []

    async def jwks(request: web.Request) -> web.Response:
        reg = current()
        if not cache or cache[0][0] is not reg:
            cache[:] = [(reg, json.dumps(reg.jwks(), separators=(",", ":")).encode())]
        return web.Response(body=cache[0][1], content_type="application/jwk-set+json",
                            headers={"Cache-Control": "public, max-age=300"})

    return jwks
