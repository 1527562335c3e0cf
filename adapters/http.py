"""The one outbound HTTP layer: partner calls and webhook deliveries, on aiohttp's client.

One ``aiohttp.ClientSession`` (own ``TCPConnector`` pool) per partner, so each partner has its
own TLS policy and connection limit, and a slow partner cannot starve another's connections.
TLS is verified by default (the partner's CA bundle if configured, a client certificate for
mTLS, TLS 1.2+); plain ``http://`` or ``tls_verify=False`` are refused unless the endpoint is
a sandbox — for ``base_url`` and ``webhook_url`` alike. Every call is logged (partner, op,
path, status, latency, outcome — never headers, keys or bodies) and reported to the gateway's
``CallObserver`` (its metrics registry and traces).
Transport errors become ``PartnerUnavailable``, unverifiable answers ``PartnerProtocolError``;
adapters turn both into ``Outcome.unknown``.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from adapters.endpoint import PartnerEndpoint
from adapters.observe import CallObserver, NullObserver
from gateway.signing import QrgwCallAuth  # signs the request, checks the answer's signature
from schemas.errors import ConfigError, PartnerError, PartnerProtocolError, PartnerUnavailable

try:  # structlog is configured by the gateway; fall back to a no-op-safe logger if absent
    import structlog

    _log: Any = structlog.get_logger("adapters.http")
except ImportError:  # pragma: no cover
    import logging

    _log = logging.getLogger("adapters.http")

_HEADERS = {"User-Agent": "qrgw/1", "Accept": "application/json"}


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A partner's answer, read in full (the call's timeout covers the body)."""

    status_code: int
    headers: CIMultiDictProxy[str]
    content: bytes


@contextmanager
def partner_errors(partner: str, op: str) -> Iterator[None]:
    """Map aiohttp/transport failures into the qrgw tree (``raise ... from exc``)."""
    try:
        yield
    except PartnerError:
        raise
    except TimeoutError as exc:  # asyncio's, and aiohttp's Server/ConnectionTimeoutError
        raise PartnerUnavailable(f"{op}: timeout", partner=partner, reason="timeout") from exc
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError) as exc:
        raise PartnerUnavailable(f"{op}: {type(exc).__name__}", partner=partner, reason="connection") from exc
    except (aiohttp.ClientError, ValueError) as exc:  # bad answer head, invalid URL ...
        raise PartnerUnavailable(f"{op}: {type(exc).__name__}", partner=partner) from exc


def _verify(ep: PartnerEndpoint) -> ssl.SSLContext | bool:
    """The partner's TLS policy as an SSL context (False: a sandbox without verification);
    also what ``gateway.partnerjwks`` fetches key sets with."""
    if not ep.tls_verify:
        if not ep.sandbox:
            raise ConfigError(f"partners[{ep.id}]: TLS verification can only be disabled for a sandbox")
        return False
    ctx = ssl.create_default_context(cafile=str(ep.ca_bundle) if ep.ca_bundle else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ep.client_cert:
        try:
            ctx.load_cert_chain(str(ep.client_cert), str(ep.client_key) if ep.client_key else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"partners[{ep.id}].client_cert: cannot load ({exc})") from exc
    return ctx


def check_url(ep: PartnerEndpoint, url: str, field: str) -> None:
    """An http(s) URL, and https unless the endpoint is a sandbox."""
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"partners[{ep.id}].{field}: must be an http(s) URL")
    if url.startswith("http://") and not ep.sandbox:
        raise ConfigError(f"partners[{ep.id}].{field}: plain http is allowed only in sandbox mode")


def check_endpoint(ep: PartnerEndpoint) -> None:
    """Refuse what production must never do: plaintext or unverified TLS outside a sandbox."""
    check_url(ep, ep.base_url, "base_url")
    if ep.webhook_url is not None:
        check_url(ep, ep.webhook_url, "webhook_url")
    if ep.http2:
        raise ConfigError(f"partners[{ep.id}].http2: the outbound layer speaks HTTP/1.1 (aiohttp); remove it")
    if ep.client_key and not ep.client_cert:
        raise ConfigError(f"partners[{ep.id}].client_key: given without client_cert")
    if not ep.tls_verify and not ep.sandbox:
        raise ConfigError(f"partners[{ep.id}]: TLS verification can only be disabled for a sandbox")


class OutboundHttp:
    """Owns one pooled ``ClientSession`` per partner, opened on first use inside the running
    loop; ``aclose()`` at shutdown (the payments ``cleanup_ctx`` for the adapters' one, the webhook
    worker's ``stop`` for its own).
    ``observer`` receives every call (the gateway's metrics and traces)."""

    def __init__(self, *, max_connections: int = 100, observer: CallObserver | None = None) -> None:
        self.observer: CallObserver = observer or NullObserver()
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._max = max_connections

    def session(self, ep: PartnerEndpoint) -> aiohttp.ClientSession:
        existing = self._sessions.get(ep.id)
        if existing is not None and not existing.closed:
            return existing
        check_endpoint(ep)
        connector = aiohttp.TCPConnector(limit=self._max, limit_per_host=0, ssl=_verify(ep), ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(
            total=ep.total_timeout_s, sock_connect=ep.connect_timeout_s, sock_read=ep.read_timeout_s
        )
        session = aiohttp.ClientSession(connector=connector, timeout=timeout, headers=_HEADERS)
        self._sessions[ep.id] = session
        return session

    async def call(
        self,
        ep: PartnerEndpoint,
        op: str,
        method: str,
        target: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        auth: QrgwCallAuth | None = None,
        timeout_s: float | None = None,
    ) -> HttpResponse:
        """One call within the endpoint's total timeout (or ``timeout_s``); never retried here.

        ``target`` is a path under ``ep.base_url``, or an absolute URL (a webhook), which must
        pass the same TLS policy."""
        if target.startswith("/"):
            url = ep.base_url + target
        else:
            check_url(ep, target, "webhook_url")
            url = target
        hdrs = dict(headers) if headers else {}
        if body is not None and "Content-Type" not in hdrs:
            hdrs["Content-Type"] = "application/json"
        path = target if target.startswith("/") else URL(target).path  # logged: never a query
        token = self.observer.call_started(ep.id, op, method, path, hdrs)  # may add traceparent
        started = time.perf_counter()
        outcome = "error"
        status: int | None = None
        try:
            with partner_errors(ep.id, op):
                session = self.session(ep)
                if auth is not None:
                    auth.sign(method, url, hdrs, body)
                target_url = URL(url, encoded=True)  # sent exactly as signed
                kw: dict[str, Any] = {}
                if timeout_s is not None:
                    kw["timeout"] = aiohttp.ClientTimeout(total=timeout_s, sock_connect=ep.connect_timeout_s)
                async with session.request(
                    method, target_url, data=body, headers=hdrs, allow_redirects=False, **kw
                ) as r:  # a redirected payment call is a protocol error, not a hop
                    resp = HttpResponse(r.status, r.headers, await r.read())
                status = resp.status_code
                if auth is not None:
                    auth.check(method, target_url.raw_path, hdrs, status, resp.headers, resp.content)
            outcome = "ok" if resp.status_code < 500 else "http_5xx"
            return resp
        except PartnerUnavailable as exc:
            outcome = str(exc.extra.get("reason", "unavailable"))
            raise
        except PartnerProtocolError:
            outcome = "protocol_error"
            raise
        finally:
            elapsed = time.perf_counter() - started
            self.observer.call_ended(token, outcome, status, elapsed)
            _log.info(
                "partner_call",
                partner=ep.id,
                op=op,
                method=method,
                path=path,
                status=status,
                latency_ms=round(elapsed * 1000, 1),
                outcome=outcome,
            )

    def record_outcome(self, partner: str, op: str, kind: str, code: str | None = None) -> None:
        self.observer.outcome(partner, op, kind)
        if kind != "succeeded":
            _log.info("partner_outcome", partner=partner, op=op, kind=kind, code=code)

    async def aclose(self) -> None:
        sessions, self._sessions = self._sessions, {}
        await asyncio.gather(*(s.close() for s in sessions.values()), return_exceptions=True)
