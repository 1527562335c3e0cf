"""A gateway over the loopback sandboxes with its operator listener, for the admin tests: real
payments, one store (memory or a real Redis) that a second gateway app can share, and one admin
client per role."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import httpx
from aiohttp import web

import gateway.app
from gateway.admin.auth import new_token, sha256_hex
from gateway.app import create_app
from gateway.appkeys import SERVICES
from gateway.config import Settings
from gateway.obs.admin import create_admin_app
from gateway.payments.state import RetryPolicy
from gateway.qr import samples
from gateway.sandbox_env import SandboxEnvironment, free_port
from gateway.signing import KeyRegistry, QrgwAuth
from gateway.store.base import Store

SEOUL, SHANGHAI = samples.seoul(), samples.shanghai()
FAST = RetryPolicy(call_attempts=2, backoff_base_s=0.005, backoff_cap_s=0.02, inquiry_intervals_s=(0.05, 0.1, 0.2),
                   retry_cap_s=0.2, lease_s=3.0)
ROLES = ("viewer", "operator", "admin")


@dataclass
class Gateway:
    """One gateway process: its partner app, its operator app, their URLs."""

    app: web.Application
    url: str
    admin_url: str
    runners: list[web.AppRunner]
    partners: dict[str, httpx.AsyncClient] = field(default_factory=dict)


@dataclass
class AdminKit:
    env: SandboxEnvironment
    settings: Settings
    tokens: dict[str, str]  # role -> bearer token
    stores: list[Store]
    gateways: list[Gateway] = field(default_factory=list)

    @property
    def gw(self) -> Gateway:
        return self.gateways[0]

    def admin(self, role: str | None, gw: Gateway | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.AsyncClient(base_url=(gw or self.gw).admin_url, headers=headers, timeout=15)

    async def pay(self, rid: str, *, partner: str = "kakaopay-kr", qr: str = SEOUL, value: str = "15000",
                  cur: str = "KRW", payer: str = "kr-user-1", gw: Gateway | None = None) -> httpx.Response:
        body = {"payment_request_id": rid, "qr": qr, "amount": {"currency": cur, "value": value},
                "payer": {"id": payer, "residency": "resident", "country": "KR"}, "payer_currency": "KRW"}
        return await (gw or self.gw).partners[partner].post("/v1/payments", json=body)

    async def final(self, payment_id: str, partner: str = "kakaopay-kr") -> dict[str, Any]:
        for _ in range(400):
            got: dict[str, Any] = (await self.gw.partners[partner].get(f"/v1/payments/{payment_id}")).json()
            if got["status"] != "PROCESSING":
                return got
            await asyncio.sleep(0.025)
        raise AssertionError(f"{payment_id} still PROCESSING")


def operator_settings(settings: Settings) -> tuple[Settings, dict[str, str]]:
    tokens = {role: new_token() for role in ROLES}
    ops = [{"name": f"ana-{role}", "role": role, "token_sha256": sha256_hex(tok)} for role, tok in tokens.items()]
    data = settings.model_dump(mode="python")
    data["admin"] = {"enabled": True, "operators": ops}
    data["routing_policy"]["status_refresh_s"] = 0.05  # another process sees a pause at once
    return Settings.model_validate(data), tokens


async def start_gateway(kit: AdminKit, store: Store, port: int) -> Gateway:
    with mock.patch.object(gateway.app, "open_store", _given(store)):
        app = create_app(kit.settings)
        app[SERVICES].update(policy=FAST, recovery_interval_s=0.02)
        runner, admin_runner = web.AppRunner(app), web.AppRunner(create_admin_app(app))
        await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await admin_runner.setup()
    admin_port = free_port()
    await web.TCPSite(admin_runner, "127.0.0.1", admin_port).start()
    url = f"http://127.0.0.1:{port}"
    gw = Gateway(app, url, f"http://127.0.0.1:{admin_port}", [admin_runner, runner])
    gw_keys = list(kit.env.partner_registry("kakaopay-kr").partner_keys("qrgw"))
    for pid in ("kakaopay-kr", "openwallet-sg"):
        auth = QrgwAuth(kit.env.partner_keys[pid], KeyRegistry([kit.env.partner_keys[pid]], gw_keys), "qrgw")
        gw.partners[pid] = httpx.AsyncClient(base_url=kit.env.gateway_url, timeout=15, auth=auth)
    kit.gateways.append(gw)
    return gw


def _given(store: Store) -> Any:
    async def open_store(_settings: Any) -> Store:
        return store

    return open_store


async def open_stores(kind: str, redis_url: str | None, n: int) -> list[Store]:
    """``n`` handles on one state: the same MemoryStore, or ``n`` Redis connections on one prefix."""
    if kind == "memory":
        from gateway.store.memory import MemoryStore

        return [MemoryStore()] * n
    from gateway.store.redis import RedisStore

    assert redis_url is not None
    prefix = f"adm{uuid.uuid4().hex[:10]}:"
    return [await RedisStore.connect(redis_url, prefix=prefix, timeout_s=5.0) for _ in range(n)]


@contextlib.asynccontextmanager
async def admin_kit(env: SandboxEnvironment, kind: str, redis_url: str | None, processes: int = 1
                    ) -> AsyncIterator[AdminKit]:
    assert env.settings is not None and env.gateway_port is not None
    settings, tokens = operator_settings(env.settings)
    stores = await open_stores(kind, redis_url, processes)
    kit = AdminKit(env, settings, tokens, stores)
    try:
        await start_gateway(kit, stores[0], env.gateway_port)  # the one partners reach (sandbox config)
        for store in stores[1:]:
            await start_gateway(kit, store, free_port())
        yield kit
    finally:
        for gw in kit.gateways:
            for c in gw.partners.values():
                await c.aclose()
            for r in gw.runners:
                try:  # a shutdown that never ends names what it waits for, rather than hanging the run
                    await asyncio.wait_for(r.cleanup(), 30)
                except TimeoutError:
                    pending = sorted(str(t.get_coro()) for t in asyncio.all_tasks() if t is not asyncio.current_task())
                    raise AssertionError(f"gateway shutdown hung; tasks left: {pending}") from None
