"""The common machinery of a sandbox partner: an aiohttp app per family, playing wallet and
acquirer, with a ledger, fault injection and a control API.

A family subclass declares its routes (``ROUTES``: method, path, op) and translates:
``authenticate`` (signatures, secrets), ``parse`` (wire → ids + model), ``execute`` (model →
ledger → wire answer), ``unknown``/``refused``/``error`` answers in its vocabulary, and
``sign`` of the answer. The flow of one call — authenticate, parse, choose faults, apply,
answer — is the same for every family and lives here.

Control API (unsigned, sandbox only): ``GET /sandbox/ledger``, ``GET /sandbox/events`` (the
webhook inbox, ``adapters.sandbox.inbox``), ``POST /sandbox/faults``,
``GET /sandbox/faults``, ``POST /sandbox/balances`` (``{"payer": "minor units"}``).
"""

from __future__ import annotations

import abc
import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from adapters.sandbox.faults import HEADER, Fault, FaultPlan
from adapters.sandbox.files import WRITERS
from adapters.sandbox.gatewaykeys import GatewayKeys
from adapters.sandbox.inbox import Inbox, keyid_of
from adapters.sandbox.ledger import Ledger
from gateway.signing import KeyRegistry, PublicKeyEntry, Signer, sign_response, verify_request
from schemas import jsonsafe
from schemas.errors import AuthError, KeyUnknown, QrgwError, ValidationFailed

Wire = tuple[int, dict[str, Any]]


@dataclass
class SandboxConfig:
    partner_id: str
    currency: str
    signer: Signer  # the sandbox partner's own key (signs its answers)
    gateway_keys: Sequence[PublicKeyEntry]  # the gateway's public keys (verify its calls)
    client_id: str | None = None  # Alipay+ Client-Id / Kakao Pay cid the gateway must send
    secret_key: str | None = field(default=None, repr=False)  # Kakao Pay SECRET_KEY
    key_version: str = "1"  # Alipay+ keyVersion of ``signer``
    balances: dict[str, int] = field(default_factory=dict)
    default_balance: int | None = 10**9
    seed: int = 0
    hang_s: float = 30.0


class MemoryNonces:
    """In-process replay memory (NonceStore protocol of gateway.signing)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], float] = {}

    async def remember_nonce(self, keyid: str, nonce: str, ttl_s: int) -> bool:
        now = time.monotonic()
        if len(self._seen) > 100_000:
            self._seen = {k: v for k, v in self._seen.items() if v > now}
        key = (keyid, nonce)
        if self._seen.get(key, 0.0) > now:
            return False
        self._seen[key] = now + ttl_s
        return True


class Drop(Exception):
    """Close the connection without answering."""


class Loopback:
    """Start and stop of a sandbox server: ``build_app`` served on ``host:port`` (0 = a free port)."""

    _runner: web.AppRunner | None
    url: str | None

    def build_app(self) -> web.Application:
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port``; returns the base URL."""
        self._runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        self.url = f"http://{host}:{sock.getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class SandboxPartner(Loopback, abc.ABC):
    family: ClassVar[str]
    ROUTES: ClassVar[tuple[tuple[str, str, str], ...]]  # (method, path, op)

    def __init__(self, cfg: SandboxConfig) -> None:
        self.cfg = cfg
        self.partner_id = cfg.partner_id
        self.ledger = Ledger(
            cfg.partner_id, cfg.currency, balances=cfg.balances, default_balance=cfg.default_balance
        )
        self.faults = FaultPlan(seed=cfg.seed, hang_s=cfg.hang_s)
        self.gateway_keys = GatewayKeys(cfg.signer, cfg.gateway_keys)
        self.nonces = MemoryNonces()
        self.calls: dict[str, int] = {}
        self.events: list[dict[str, Any]] = []  # webhook events received from the gateway
        self.inbox = Inbox()  # every webhook delivery, verified or not (GET /sandbox/events)
        self._runner: web.AppRunner | None = None
        self.url: str | None = None

    @property
    def registry(self) -> KeyRegistry:
        """Our key and the gateway's (refreshed from its JWKS on an unknown key id)."""
        return self.gateway_keys.registry

    async def verify_gateway(self, request: web.Request, body: bytes) -> None:
        """A call signed by the gateway with the qrgw profile (§2); ``AuthError`` otherwise."""
        kw: dict[str, Any] = {"method": request.method, "url": str(request.url), "headers": request.headers,
                              "body": body}
        try:
            await verify_request(self.registry, self.nonces, **kw)
        except KeyUnknown:
            if not await self.gateway_keys.refresh():
                raise
            await verify_request(self.registry, self.nonces, **kw)

    # --- family hooks -------------------------------------------------------------------------------
    @abc.abstractmethod
    async def authenticate(self, request: web.Request, body: bytes) -> None:
        """Raise an ``AuthError`` unless the caller is the gateway."""

    @abc.abstractmethod
    def parse(self, op: str, request: web.Request, body: bytes) -> tuple[tuple[str, ...], Any]:
        """Validate the wire (raise ``ValidationFailed``); return the ids (for fault matching)
        and the parsed message."""

    def refine_op(self, op: str, msg: Any) -> str:
        """The operation a parsed message really is (one path may serve two operations)."""
        return op

    @abc.abstractmethod
    def execute(self, op: str, msg: Any) -> Wire: ...

    @abc.abstractmethod
    def unknown(self, op: str, msg: Any) -> Wire: ...

    @abc.abstractmethod
    def refused(self, op: str, msg: Any, code: str) -> Wire: ...

    @abc.abstractmethod
    def error(self, exc: QrgwError) -> Wire: ...

    @abc.abstractmethod
    def sign(self, request: web.Request, status: int, headers: dict[str, str], body: bytes) -> None:
        """Add the family's response signature headers."""

    # --- the flow of one call -------------------------------------------------------------------------
    def _handler(self, op: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            real = op
            try:
                await self.authenticate(request, body)
                ids, msg = self.parse(op, request, body)
                real = self.refine_op(op, msg)
                faults = self.faults.choose(real, ids, request.headers.get(HEADER))
            except QrgwError as exc:
                return self._answer(request, self.error(exc))
            finally:
                self.calls[real] = self.calls.get(real, 0) + 1
            try:
                return await self._run(request, real, msg, faults)
            except Drop:
                return self._drop(request)

        return handle

    async def _run(self, request: web.Request, op: str, msg: Any, faults: list[Fault]) -> web.StreamResponse:
        for f in faults:
            if f.kind == "latency":
                await asyncio.sleep(int(f.value or 0) / 1000)
        for f in faults:
            if not f.before:
                continue
            if f.kind == "5xx":
                return web.Response(status=500, text="sandbox: injected 5xx", content_type="text/plain")
            if f.kind == "U":
                return self._answer(request, self.unknown(op, msg))
            if f.kind == "F":
                return self._answer(request, self.refused(op, msg, f.value or "PROCESS_FAIL"))
            if f.kind == "timeout":
                await asyncio.sleep(self.faults.hang_s)
                return web.Response(status=504, text="sandbox: injected timeout")
            if f.kind == "drop":
                raise Drop
        wire = self.execute(op, msg)
        for f in faults:
            if f.kind == "timeout":
                await asyncio.sleep(self.faults.hang_s)
            if f.kind == "drop":
                raise Drop
        return self._answer(request, wire)

    def _answer(self, request: web.Request, wire: Wire) -> web.Response:
        status, doc = wire
        body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
        ctype = "application/problem+json" if "type" in doc and "title" in doc else "application/json"
        headers = {"Content-Type": ctype}
        self.sign(request, status, headers, body)
        return web.Response(status=status, body=body, headers=headers)

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=499)  # never reaches the caller

    async def _webhook(self, request: web.Request) -> web.Response:
        """Payment events from the gateway (PROTOCOL.md §9): signed with the §2 profile whatever
        the family; de-duplicated on ``event_id``."""
        body = await request.read()
        keyid = keyid_of(request.headers.get("Signature-Input"))
        verified = False
        event: Any = None
        try:
            await self.verify_gateway(request, body)
            verified = True
            event = jsonsafe.loads(body)
            if not isinstance(event, dict) or not isinstance(event.get("event_id"), str):
                raise ValidationFailed("event without event_id")
        except (QrgwError, ValueError) as exc:
            code = exc.code if isinstance(exc, QrgwError) else "INVALID_JSON"
            detail = exc.detail if isinstance(exc, QrgwError) else "body is not JSON"
            status = 401 if isinstance(exc, AuthError) else 400
            self.inbox.record(verified=verified, accepted=False, reason=f"{code}: {detail}",
                              event=event if isinstance(event, dict) else None, keyid=keyid)
            doc = {"type": f"https://errors.qrgw.dev/{code}", "title": code, "status": status, "code": code}
            return self._signed_qrgw(request, status, doc)
        new = all(e.get("event_id") != event["event_id"] for e in self.events)
        if new:
            self.events.append(event)
        self.inbox.record(verified=True, accepted=new, duplicate=not new,
                          reason="ok" if new else "duplicate event_id", event=event, keyid=keyid)
        return self._signed_qrgw(request, 200, {"received": event["event_id"]})

    def _signed_qrgw(self, request: web.Request, status: int, doc: dict[str, Any]) -> web.Response:
        body = json.dumps(doc, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if request.headers.get("Signature"):
            sign_response(
                self.cfg.signer,
                status=status,
                headers=headers,
                body=body,
                req_method=request.method,
                req_path=request.path,
                req_signature=request.headers["Signature"],
            )
        return web.Response(status=status, body=body, headers=headers)

    # --- control API ----------------------------------------------------------------------------------
    async def _ledger(self, request: web.Request) -> web.Response:
        return web.json_response(
            self.ledger.snapshot() | {"calls": self.calls, "faults": self.faults.describe()}
        )

    async def _faults(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                self.faults.configure(jsonsafe.loads(await request.read()))
            except (ValueError, KeyError, TypeError, QrgwError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(self.faults.describe())

    async def _balances(self, request: web.Request) -> web.Response:
        try:
            doc = jsonsafe.loads_object(await request.read())
            for payer, value in doc.items():
                self.ledger.balances[str(payer)] = int(value)
        except (ValueError, AttributeError, QrgwError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({k: str(v) for k, v in self.ledger.balances.items()})

    async def _settlement_file(self, request: web.Request) -> web.Response:
        """The partner's own file of one business day's movements, in its family's format."""
        day = request.query.get("day", "")
        if len(day) != 10:
            return web.json_response({"error": "day=YYYY-MM-DD required"}, status=400)
        text = WRITERS[self.family](self.ledger.movements(day), self.cfg.client_id)
        return web.Response(text=text, content_type="text/csv", charset="utf-8")

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024)
        for method, path, op in self.ROUTES:
            app.router.add_route(method, path, self._handler(op))
        app.router.add_post("/webhooks", self._webhook)
        app.router.add_get("/sandbox/ledger", self._ledger)
        app.router.add_get("/sandbox/settlement-file", self._settlement_file)
        app.router.add_get("/sandbox/events", self.inbox.handler)
        app.router.add_route("*", "/sandbox/faults", self._faults)
        app.router.add_post("/sandbox/balances", self._balances)
        app.router.add_get("/healthz", _ok)
        return app



async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def auth_problem(exc: QrgwError) -> tuple[int, str]:
    """Status and code of an authentication/validation failure (for family ``error`` hooks)."""
    if isinstance(exc, AuthError):
        return 401, exc.code
    if isinstance(exc, ValidationFailed):
        return 422, exc.code
    return exc.status, exc.code
