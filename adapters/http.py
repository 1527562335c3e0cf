"""The shared outbound HTTP layer: one pooled ``httpx.AsyncClient`` per partner.

TLS is verified by default (the partner's CA bundle if configured, a client certificate for
mTLS); plain ``http://`` or ``tls_verify=False`` are refused unless the endpoint is a
sandbox. Every call is logged (partner, op, path, status, latency, outcome — never headers,
keys or bodies) and reported to the gateway's ``CallObserver`` (its metrics registry and
traces). Transport errors become ``PartnerUnavailable``,
unparseable or unverifiable answers ``PartnerProtocolError``; adapters turn both into
``Outcome.unknown``.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from adapters.endpoint import PartnerEndpoint
from adapters.observe import CallObserver, NullObserver
from schemas.errors import ConfigError, PartnerError, PartnerProtocolError, PartnerUnavailable

try:  # structlog is configured by the gateway; fall back to a no-op-safe logger if absent
    import structlog

    _log: Any = structlog.get_logger("adapters.http")
except ImportError:  # pragma: no cover
    import logging

    _log = logging.getLogger("adapters.http")


@contextmanager
def partner_errors(partner: str, op: str) -> Iterator[None]:
    """Map httpx/transport failures into the qrgw tree (``raise ... from exc``)."""
    try:
        yield
    except PartnerError:
        raise
    except (httpx.TimeoutException, TimeoutError) as exc:
        raise PartnerUnavailable(f"{op}: timeout", partner=partner, reason="timeout") from exc
    except httpx.DecodingError as exc:
        raise PartnerProtocolError(f"{op}: undecodable answer", partner=partner) from exc
    except (httpx.TransportError, OSError) as exc:
        raise PartnerUnavailable(f"{op}: {type(exc).__name__}", partner=partner, reason="connection") from exc
    except httpx.HTTPError as exc:
        raise PartnerUnavailable(f"{op}: {type(exc).__name__}", partner=partner) from exc


def _verify(ep: PartnerEndpoint) -> ssl.SSLContext | bool:
    if not ep.tls_verify:
        if not ep.sandbox:
            raise ConfigError(f"partners[{ep.id}]: TLS verification can only be disabled for a sandbox")
        return False
    if not ep.ca_bundle and not ep.client_cert:
        return True
    ctx = ssl.create_default_context(cafile=str(ep.ca_bundle) if ep.ca_bundle else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ep.client_cert:
        try:
            ctx.load_cert_chain(str(ep.client_cert), str(ep.client_key) if ep.client_key else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"partners[{ep.id}].client_cert: cannot load ({exc})") from exc
    return ctx


def check_endpoint(ep: PartnerEndpoint) -> None:
    """Refuse what production must never do: plaintext or unverified TLS outside a sandbox."""
    if not ep.base_url.startswith(("https://", "http://")):
        raise ConfigError(f"partners[{ep.id}].base_url: must be an http(s) URL")
    if ep.base_url.startswith("http://") and not ep.sandbox:
        raise ConfigError(f"partners[{ep.id}].base_url: plain http is allowed only in sandbox mode")
    if ep.client_key and not ep.client_cert:
        raise ConfigError(f"partners[{ep.id}].client_key: given without client_cert")


class OutboundHttp:
    """Owns one pooled client per partner; ``aclose()`` at shutdown.

    ``transport`` (tests only) replaces the network for every client, e.g. a respx mock;
    ``observer`` receives every call (the gateway's metrics and traces).
    """

    def __init__(
        self,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 100,
        observer: CallObserver | None = None,
    ) -> None:
        self.observer: CallObserver = observer or NullObserver()
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._eps: dict[str, PartnerEndpoint] = {}
        self._transport = transport
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )

    def client(self, ep: PartnerEndpoint, auth: httpx.Auth | None = None) -> httpx.AsyncClient:
        existing = self._clients.get(ep.id)
        if existing is not None:
            return existing
        check_endpoint(ep)
        timeout = httpx.Timeout(
            connect=ep.connect_timeout_s,
            read=ep.read_timeout_s,
            write=ep.read_timeout_s,
            pool=ep.connect_timeout_s,
        )
        kwargs: dict[str, Any] = {
            "base_url": ep.base_url,
            "timeout": timeout,
            "limits": self._limits,
            "auth": auth,
            "follow_redirects": False,  # a redirected payment call is a protocol error, not a hop
            "headers": {"User-Agent": "qrgw/1", "Accept": "application/json"},
        }
        if self._transport is not None:
            kwargs["transport"] = self._transport
        else:
            kwargs["verify"] = _verify(ep)
            kwargs["http2"] = ep.http2
        client = httpx.AsyncClient(**kwargs)
        self._clients[ep.id] = client
        self._eps[ep.id] = ep
        return client

    async def call(
        self,
        ep: PartnerEndpoint,
        op: str,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
    ) -> httpx.Response:
        """One partner call within the endpoint's total timeout; never retried here."""
        client = self.client(ep, auth)
        hdrs = dict(headers or {})
        if body is not None:
            hdrs.setdefault("Content-Type", "application/json")
        token = self.observer.call_started(ep.id, op, method, path, hdrs)  # may add traceparent
        started = time.perf_counter()
        outcome = "error"
        status: int | None = None
        try:
            with partner_errors(ep.id, op):
                async with asyncio.timeout(ep.total_timeout_s):
                    resp = await client.request(method, path, content=body, headers=hdrs)
                    await resp.aread()
            status = resp.status_code
            outcome = "ok" if status < 500 else "http_5xx"
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
        clients, self._clients = self._clients, {}
        for c in clients.values():
            await c.aclose()
