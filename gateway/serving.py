"""The gateway's HTTP server: aiohttp's, with the connection hardening aiohttp lacks.

- A request head must arrive within ``server.header_timeout_s`` of its first byte (a client
  trickling headers is cut off), its body within ``server.body_timeout_s`` of the head (408
  ``REQUEST_TIMEOUT``), and an idle keep-alive connection closes after ``server.idle_timeout_s``.
- At most ``server.max_connections`` are open: a connection past the cap closes the oldest one
  that is not serving a request (a slow or idle client), or itself when all are busy, so a
  flood of idle sockets never stops signed requests being served.
- What aiohttp's parser refuses before any middleware runs (a header line past
  ``server.max_header_bytes``, too many headers, a broken request line) is answered as signed
  ``application/problem+json`` (431 ``HEADER_TOO_LARGE`` / 400 ``BAD_REQUEST``), not text/plain.

``GatewayRunner`` replaces ``web.AppRunner`` (``qrgw serve`` runs it beside the operator listener:
``gateway.cli.serve``).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestHandler, _ErrInfo

from gateway.api.problems import REQUEST_ID_HEADER, REQUEST_ID_KEY, problem_response
from gateway.appkeys import KEYS
from gateway.config import ServerSettings
from gateway.obs.http import SERVER_NAME
from gateway.signing import KeyRegistry, sign_answer, sign_response
from schemas.errors import HeaderTooLarge, QrgwError, RequestError, RequestTimeout

HEAD_KEPT = 4096
PLACEHOLDER_METHOD = "UNKNOWN"  # aiohttp's stand-in request for a head it could not parse
REQUEST_LINE = re.compile(rb"([A-Z]{1,16}) (/[^ ?#\r\n]{0,2048})[^ \r\n]* HTTP/1\.[01]\r?\n")


def protocol_error(status: int, exc: BaseException | None, message: str | None) -> QrgwError:
    """Our error for what aiohttp's protocol layer answers itself."""
    if isinstance(exc, http_exceptions.LineTooLong) or "too many headers" in (message or "").lower():
        return HeaderTooLarge("the request line, a header line or the header count exceeds the server's limit")
    if status >= 500:
        return QrgwError("internal error; the request id identifies it in our logs")
    err = RequestError(f"malformed HTTP request: {message or status}")
    err.status = status  # type: ignore[misc]
    return err


class GuardedHandler(RequestHandler):
    """One connection: aiohttp's protocol plus head/body deadlines and signed error answers."""

    def __init__(self, manager: GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.limits = manager.limits
        self.registry = manager.registry
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body: Any = None  # payload (StreamReader) of the request being received
        self._head = bytearray()  # the start of the head being received: its request line signs errors

    def data_received(self, data: bytes) -> None:
        count = self._request_count
        if len(self._head) < HEAD_KEPT and (self._body is None or self._body.is_eof()):
            self._head += data[: HEAD_KEPT - len(self._head)]
        super().data_received(data)
        if self._request_count != count:  # a head completed (or failed to parse)
            if self._messages and not isinstance(self._messages[-1][0], _ErrInfo):
                self._head.clear()
            self._cancel("_head_timer")
            payload = self._messages[-1][1] if self._messages else None
            if payload is not None and not payload.is_eof():
                self._cancel("_body_timer")
                self._body = payload
                self._body_timer = self._loop.call_later(self.limits.body_timeout_s, self._body_late, payload)
        elif self._head_timer is None and (self._body is None or self._body.is_eof()):
            self._head_timer = self._loop.call_later(self.limits.header_timeout_s, self._head_late)

    def _cancel(self, name: str) -> None:
        timer = getattr(self, name)
        if timer is not None:
            timer.cancel()
            setattr(self, name, None)

    def _head_late(self) -> None:
        self._head_timer = None
        if self._request_in_progress:
            self.close()  # answer the request being served, then close
        else:
            self.force_close()

    def _body_late(self, payload: Any) -> None:
        self._body_timer = None
        if not payload.is_eof():
            self._lingering_time = 0.0  # do not wait for the rest: close once answered
            payload.set_exception(RequestTimeout(f"request body not received within {self.limits.body_timeout_s} s"))

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel("_head_timer")
        self._cancel("_body_timer")
        super().connection_lost(exc)

    @property
    def idle(self) -> bool:
        """Open and not serving a request (waiting for, or receiving, a head)."""
        return self.transport is not None and not self._request_in_progress

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # too late to answer: let aiohttp drop the connection
            return super().handle_error(request, status, exc, message)
        err = protocol_error(status, exc, message)
        if status < 500:
            self.logger.info("request refused by the HTTP parser: %s (%s)", err.code, message)
        else:
            self.log_exception("error handling request", exc_info=exc)
        rid = request.get(REQUEST_ID_KEY) or f"req_{uuid.uuid4().hex}"
        resp = problem_response(err, rid)
        resp.headers[REQUEST_ID_HEADER] = rid
        resp.headers["Server"] = SERVER_NAME  # answered outside the app: its on_response_prepare never runs
        resp.force_close()
        if request.method != PLACEHOLDER_METHOD:  # a parsed request (an error past the middlewares)
            return sign_answer(self.registry, problem_response, request, resp, _signature(request))
        # The parser gave up: bind the answer to the request line if it was readable (the caller
        # verifies with its own method and path), else to aiohttp's placeholder; nothing else of
        # the request is trusted, so the answer is unbound.
        line = REQUEST_LINE.match(bytes(self._head).lstrip(b"\r\n"))
        method, path = (line.group(1).decode(), line.group(2).decode()) if line else (request.method, "/")
        body = resp.body if isinstance(resp.body, bytes) else b""
        sign_response(self.registry.signer, status=resp.status, headers=resp.headers, body=body,
                      req_method=method, req_path=path, req_signature="")
        return resp


def _signature(request: web.BaseRequest) -> str:
    return ", ".join(request.headers.getall("Signature", []))


class GuardedServer(web.Server):
    """aiohttp's connection manager, making ``GuardedHandler``s and enforcing the cap."""

    def __init__(self, *args: Any, limits: ServerSettings, registry: KeyRegistry, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits, self.registry = limits, registry

    def __call__(self) -> RequestHandler:
        return GuardedHandler(self, loop=self._loop, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        if len(self._connections) <= self.limits.max_connections:
            return
        live = [h for h in self._connections if h.transport is not None]  # closed ones linger a moment
        if len(live) <= self.limits.max_connections:
            return
        # Oldest first (dict order): the longest-held idle socket is the likeliest slow client.
        victim = next((h for h in live if h is not handler and getattr(h, "idle", False)), handler)
        victim.force_close()


class GatewayRunner(web.AppRunner):
    """``web.AppRunner`` serving through ``GuardedServer`` with the ``[server]`` limits."""

    def __init__(self, app: web.Application, limits: ServerSettings, **kwargs: Any) -> None:
        kwargs.setdefault("access_log", None)
        super().__init__(
            app,
            keepalive_timeout=limits.idle_timeout_s,
            max_line_size=limits.max_header_bytes,
            max_field_size=limits.max_header_bytes,
            max_headers=limits.max_headers,
            **kwargs,
        )
        self.limits = limits

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return GuardedServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=plain._loop,
            limits=self.limits,
            registry=self.app[KEYS],
            **plain._kwargs,
        )

