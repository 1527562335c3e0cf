"""The gateway API over real loopback HTTP, for tests: ``create_app`` with signing on a real
socket, fake partners / pricing / QR from ``gateway.testing.payments``, and one signed httpx
client per partner (signing for the gateway's own URL)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
from aiohttp import web

import gateway.app
from gateway.app import create_app
from gateway.appkeys import SERVICES
from gateway.config import Settings
from gateway.payments.ports import Partners
from gateway.payments.state import RetryPolicy
from gateway.serving import GatewayRunner
from gateway.signing import KeyRegistry, PublicKeyEntry, QrgwAuth, Signer, generate_key, private_pem, public_jwk
from gateway.store.base import Store
from gateway.store.memory import MemoryStore
from gateway.testing.payments import FAST_POLICY_ARGS, SEOUL_STATIC, Harness, build_harness
from gateway.testing.signing import entry_for, make_signer

PAY = {
    "payment_request_id": "p-1",
    "qr": SEOUL_STATIC,
    "amount": {"currency": "KRW", "value": "15000"},
    "payer": {"id": "cn-payer", "residency": "non-resident", "country": "CN"},
    "payer_currency": "CNY",
}
BOTH = ("wallet", "acquirer")
# partner id -> (country, currency, roles)
PARTNERS: dict[str, tuple[str, str, Sequence[str]]] = {
    "alipay-cn": ("CN", "CNY", BOTH),
    "kakaopay-kr": ("KR", "KRW", BOTH),
    "openwallet-sg": ("SG", "SGD", BOTH),
}


@dataclass
class Api:
    url: str
    app: web.Application
    runner: web.AppRunner
    h: Harness
    clients: dict[str, httpx.AsyncClient]
    signers: dict[str, Signer]
    gateway_key: PublicKeyEntry  # what partners verify the gateway's answers with

    def __getitem__(self, partner: str) -> httpx.AsyncClient:
        return self.clients[partner]

    def auth(self, partner: str) -> QrgwAuth:
        signer = self.signers[partner]
        return QrgwAuth(signer, KeyRegistry([signer], [self.gateway_key]), "qrgw")


def _given(store: Store) -> Callable[[Any], Awaitable[Store]]:
    async def open_store(_settings: Any) -> Store:
        return store

    return open_store


@contextlib.asynccontextmanager
async def serve_api(
    tmp_path: Path,
    partners: Mapping[str, tuple[str, str, Sequence[str]]] = PARTNERS,
    *,
    server: Mapping[str, Any] | None = None,
    rate_limits: Mapping[str, Mapping[str, Any]] | None = None,
    hardened: bool = False,
) -> AsyncIterator[Api]:
    """Serve the API on 127.0.0.1 (a free port); ``hardened`` serves it through ``GatewayRunner``
    (the connection limits of ``qrgw serve``) instead of a plain ``web.AppRunner``."""
    h = build_harness(MemoryStore())
    gw_key = generate_key("ed25519")
    (tmp_path / "gw.pem").write_bytes(private_pem(gw_key))
    signers = {p: make_signer("ed25519", f"{p}-1") for p in partners}
    settings = Settings(
        server={"sandbox": True, "max_body_bytes": 2048, **(server or {})},
        gateway={"keys": [{"keyid": "qrgw-gw", "alg": "ed25519", "private_key": tmp_path / "gw.pem"}]},
        partners=[
            {
                "id": p,
                "roles": list(roles),
                "country": country,
                "currency": currency,
                "family": "qrgw",
                "base_url": "http://127.0.0.1:1",
                "keys": [{"keyid": s.keyid, "alg": s.alg, "public_key": public_jwk(s.private_key, s.keyid, s.alg)}],
                "rate_limit": dict((rate_limits or {}).get(p, {})),
            }
            for (p, (country, currency, roles)), s in zip(partners.items(), signers.values(), strict=True)
        ],
    )
    app = create_app(settings)
    app[SERVICES].update(
        partners=Partners(wallets=dict(h.wallets), acquirers=dict(h.acquirers)),
        pricing=h.pricing,
        resolver=h.resolver,
        policy=RetryPolicy(**FAST_POLICY_ARGS),
        clock=h.clock,
        recovery_interval_s=0.01,
    )
    runner = GatewayRunner(app, settings.server) if hardened else web.AppRunner(app)
    with mock.patch.object(gateway.app, "open_store", _given(h.store)):  # the store cleanup_ctx runs here
        await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    api = Api(url, app, runner, h, {}, signers, entry_for(Signer("qrgw-gw", "ed25519", gw_key), "qrgw"))
    api.clients.update({p: httpx.AsyncClient(base_url=url, auth=api.auth(p)) for p in signers})
    try:
        yield api
    finally:
        for c in api.clients.values():
            await c.aclose()
        await runner.cleanup()


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert ``r`` is the problem+json answer ``status`` / ``code``; return its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["code"] == code and body["status"] == status and body["instance"] == r.headers["x-request-id"]
    return body
