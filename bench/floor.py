"""The floor: the least a gateway can do for one payment, to measure the gateway against.

``floor.py serve`` answers ``POST /v1/payments`` with only the unavoidable work: verify the
caller's signature (PROTOCOL.md §2, same keys and nonce check as the gateway, in memory), make
two signed loopback calls (a debit and a credit) to ``floor.py respond`` and verify their signed
answers, then sign its own answer. No store, no state machine, no FX, no QR decoding: whatever
the real gateway spends beyond this is its overhead.

``floor.py respond`` is the trivial partner: verifies the call, signs a fixed answer (the same
work a sandbox partner does per call). Keys come from a JSON file (``--keys``):
``{"signer": {"keyid", "alg", "private_key"}, "public": [{"keyid", "partner_id", "alg", "public_key"}]}``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway.signing import (
    KeyRegistry,
    PublicKeyEntry,
    Signer,
    load_private_key,
    load_public_key,
    sign_request,
    sign_response,
    verify_request,
    verify_response,
)
from schemas.errors import AuthError


class MemoryNonces:
    """Replay memory in a dict (the gateway keeps it in its store: that cost is its own)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], float] = {}

    async def remember_nonce(self, keyid: str, nonce: str, ttl_s: int) -> bool:
        now = time.monotonic()
        if len(self._seen) > 200_000:
            self._seen = {k: v for k, v in self._seen.items() if v > now}
        key = (keyid, nonce)
        if self._seen.get(key, 0.0) > now:
            return False
        self._seen[key] = now + ttl_s
        return True


REGISTRY: web.AppKey[KeyRegistry] = web.AppKey("registry", KeyRegistry)
NONCES: web.AppKey[MemoryNonces] = web.AppKey("nonces", MemoryNonces)
SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("session", aiohttp.ClientSession)
RESPONDER: web.AppKey[str] = web.AppKey("responder", str)


def load_keys(path: Path) -> KeyRegistry:
    doc = json.loads(path.read_text())
    s = doc["signer"]
    signer = Signer(s["keyid"], s["alg"], load_private_key(Path(s["private_key"]), s["alg"]))
    entries = [
        PublicKeyEntry(e["keyid"], e["partner_id"], e["alg"], load_public_key(Path(e["public_key"]), e["alg"]))
        for e in doc["public"]
    ]
    return KeyRegistry([signer], entries)


def signed_json(request: web.Request, registry: KeyRegistry, status: int, doc: dict[str, Any]) -> web.Response:
    body = json.dumps(doc, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json"}
    sign_response(registry.signer, status=status, headers=headers, body=body, req_method=request.method,
                  req_path=request.path, req_signature=request.headers.get("Signature", ""))
    return web.Response(status=status, body=body, headers=headers)


async def verified(request: web.Request) -> tuple[bytes, str] | web.Response:
    registry = request.app[REGISTRY]
    body = await request.read()
    try:
        v = await verify_request(registry, request.app[NONCES], method=request.method, url=str(request.url),
                                 headers=request.headers, body=body)
    except AuthError as exc:
        return signed_json(request, registry, 401, {"code": exc.code, "status": 401})
    return body, v.partner_id


# --- the floor gateway -------------------------------------------------------------------------------
async def call(app: web.Application, path: str, doc: dict[str, Any]) -> dict[str, Any]:
    """One signed loopback call; the answer's signature is verified like a partner's."""
    registry = app[REGISTRY]
    url = app[RESPONDER] + path
    body = json.dumps(doc, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json"}
    sign_request(registry.signer, method="POST", url=url, headers=headers, body=body)
    async with app[SESSION].post(url, data=body, headers=headers) as resp:
        data = await resp.read()
        verify_response(registry, status=resp.status, headers=resp.headers, body=data, req_method="POST",
                        req_path=path, req_signature=headers["Signature"], expected_partner="floor-responder")
        answer: dict[str, Any] = json.loads(data)
        return answer


async def payments(request: web.Request) -> web.Response:
    got = await verified(request)
    if isinstance(got, web.Response):
        return got
    body, partner = got
    req = json.loads(body)
    payment_id = "pay_" + secrets.token_hex(8)
    debit = await call(request.app, "/debits", {"debit_id": payment_id + "-d", "payment_id": payment_id,
                                                "payer": req.get("payer"), "amount": req.get("amount")})
    credit = await call(request.app, "/credits", {"credit_id": payment_id + "-c", "payment_id": payment_id,
                                                  "amount": req.get("amount")})
    ok = debit.get("status") == credit.get("status") == "SUCCEEDED"
    doc = {"payment_id": payment_id, "payment_request_id": req.get("payment_request_id"),
           "status": "SUCCEEDED" if ok else "FAILED", "caller": partner}
    return signed_json(request, request.app[REGISTRY], 201, doc)


async def _session_ctx(app: web.Application) -> Any:
    app[SESSION] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
    yield
    await app[SESSION].close()


def build_floor(registry: KeyRegistry, responder: str) -> web.Application:
    app = web.Application()
    app[REGISTRY] = registry
    app[NONCES] = MemoryNonces()
    app[RESPONDER] = responder.rstrip("/")
    app.cleanup_ctx.append(_session_ctx)
    app.router.add_post("/v1/payments", payments)
    app.router.add_get("/healthz", healthz)
    return app


# --- the trivial signed responder --------------------------------------------------------------------
async def respond(request: web.Request) -> web.Response:
    got = await verified(request)
    if isinstance(got, web.Response):
        return got
    body, _ = got
    req = json.loads(body)
    ids = {k: v for k, v in req.items() if k.endswith("_id")}
    return signed_json(request, request.app[REGISTRY], 200, ids | {"status": "SUCCEEDED"})


def build_responder(registry: KeyRegistry) -> web.Application:
    app = web.Application()
    app[REGISTRY] = registry
    app[NONCES] = MemoryNonces()
    app.router.add_post("/debits", respond)
    app.router.add_post("/credits", respond)
    app.router.add_get("/healthz", healthz)
    return app


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def main() -> None:
    p = argparse.ArgumentParser(description="The floor server (minimal payment) and its trivial responder.")
    p.add_argument("role", choices=["serve", "respond"])
    p.add_argument("--keys", type=Path, required=True, help="JSON key file (see module docstring)")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--responder", default="", help="serve: base URL of the responder")
    p.add_argument("--reuse-port", action="store_true", help="SO_REUSEPORT: several processes, one port")
    args = p.parse_args()
    registry = load_keys(args.keys)
    app = build_floor(registry, args.responder) if args.role == "serve" else build_responder(registry)
    web.run_app(app, host=args.host, port=args.port, reuse_port=args.reuse_port or None,
                print=None, access_log=None, shutdown_timeout=1.0)


if __name__ == "__main__":
    main()
