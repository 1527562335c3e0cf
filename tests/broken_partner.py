"""A deliberately broken ``qrgw`` family partner (test-only): the project's sandbox partner with
one misbehaviour switched on, so that the conformance runner is shown to find each one.

``BROKEN`` maps each misbehaviour to the conformance check that must catch it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from adapters.sandbox.qrgw import QrgwSandbox
from adapters.sandbox.server import SandboxConfig, Wire
from gateway.signing import sign_response, verify_request
from schemas.errors import AuthError, DigestMismatch
from schemas.partner import DebitBody

BROKEN = {
    "unbound-answers": "signed-answers",  # signs answers without binding them to the request
    "repeat-not-idempotent": "debit-idempotent",  # a repeated debit id answers something else
    "repeat-credit-not-idempotent": "credit-idempotent",
    "repeat-refund-not-idempotent": "refund-idempotent",
    "inquiry-unknown-200": "inquiry-unknown-404",  # an unknown id answers 200 FAILED
    "cancel-forgets": "cancel-before-debit",  # a cancel before the debit is not recorded
    "any-currency": "amounts-and-currencies",  # books a debit whatever its currency
    "no-digest-check": "tampered-signature-refused",  # ignores a Content-Digest mismatch
    "no-replay-check": "replayed-signature-refused",  # forgets nonces
    "no-expiry-check": "expired-signature-refused",  # verifies as of the signature's creation
    "any-key": "unknown-key-refused",  # answers requests it cannot authenticate
    "webhook-unverified": "webhooks-accepted",  # accepts events without checking their signature
    "webhook-dup": "webhooks-deduplicated",  # processes a re-delivered event_id again
}
# Not broken, only less observable: no /sandbox/events inbox (the check says N/A, not FAIL).
QUIET = "no-inbox"
_CREATED = re.compile(r";created=(\d+)")


class _YesNonces:
    async def remember_nonce(self, keyid: str, nonce: str, ttl_s: int) -> bool:
        return True


class BrokenQrgwSandbox(QrgwSandbox):
    def __init__(self, cfg: SandboxConfig, broken: str) -> None:
        assert broken in BROKEN or broken == QUIET, broken
        super().__init__(cfg)
        self.broken = broken
        self._answers = 0
        if broken == "no-replay-check":
            self.nonces = _YesNonces()  # type: ignore[assignment]

    def build_app(self) -> web.Application:
        app = super().build_app()
        if self.broken == QUIET:

            @web.middleware
            async def hide_inbox(request: web.Request, handler: Any) -> web.StreamResponse:
                if request.path == "/sandbox/events":
                    raise web.HTTPNotFound()
                return await handler(request)

            app.middlewares.append(hide_inbox)
        return app

    async def authenticate(self, request: web.Request, body: bytes) -> None:
        if self.broken == "any-key":
            return
        now = None
        if self.broken == "no-expiry-check":
            m = _CREATED.search(request.headers.get("Signature-Input", ""))
            now = float(m.group(1)) + 1 if m else None
        try:
            await verify_request(self.registry, self.nonces, method=request.method, url=str(request.url),
                                 headers=request.headers, body=body, now=now)
        except DigestMismatch:
            if self.broken != "no-digest-check":
                raise

    def execute(self, op: str, msg: Any) -> Wire:
        b = self.broken
        if b == "inquiry-unknown-200" and op == "inquire" and self.ledger.inquire_debit(msg) is None:
            return 200, {"debit_id": msg, "status": "FAILED", "failure": {"code": "UNKNOWN", "message": "?"}}
        if b == "cancel-forgets" and op == "cancel" and self.ledger.inquire_debit(msg) is None:
            return 200, {"debit_id": msg, "status": "CANCELLED"}
        if b == "any-currency" and op == "pay":
            m: DebitBody = msg
            msg = m.model_copy(update={"amount": m.amount.model_copy(update={"currency": self.ledger.currency})})
        status, doc = super().execute(op, msg)
        repeat = {"repeat-not-idempotent": "pay", "repeat-credit-not-idempotent": "notify",
                  "repeat-refund-not-idempotent": "refund"}.get(b)
        if op == repeat:
            self._answers += 1
            doc = doc | {"status": "PROCESSING" if self._answers % 2 == 0 else doc["status"]}
        return status, doc

    def sign(self, request: web.Request, status: int, headers: dict[str, str], body: bytes) -> None:
        if self.broken != "unbound-answers":
            super().sign(request, status, headers, body)
            return
        sign_response(self.cfg.signer, status=status, headers=headers, body=body,
                      req_method=request.method, req_path=request.path, req_signature="")

    async def _webhook(self, request: web.Request) -> web.Response:
        if self.broken not in ("webhook-unverified", "webhook-dup"):
            return await super()._webhook(request)
        body = await request.read()
        if self.broken == "webhook-dup":
            try:
                await verify_request(self.registry, self.nonces, method=request.method, url=str(request.url),
                                     headers=request.headers, body=body)
            except AuthError as exc:
                return self._signed_qrgw(request, 401, {"code": exc.code})
        event = json.loads(body)
        self.events.append(event)
        self.inbox.record(verified=self.broken == "webhook-dup", accepted=True, reason="ok", event=event)
        return self._signed_qrgw(request, 200, {"received": event["event_id"]})


__all__ = ["BROKEN", "QUIET", "BrokenQrgwSandbox"]
