"""Keys that change without a restart (gateway.live): partner keys from a JWKS URL, requests in
flight finishing with the keys they started with, and a bad new config refused."""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.appkeys import SERVICES
from gateway.config import Settings, load_settings
from gateway.live import LIVE
from gateway.partnerkit.wire import exchange
from gateway.payments.container import PAYMENTS
from gateway.sandbox_env import SandboxEnvironment, dump_toml
from gateway.signing import KeyRegistry, QrgwAuth, Signer, generate_key, private_pem, public_jwk
from gateway.signing.jwks import entries_from_jwks


@dataclass
class JwksServer:
    """A partner publishing its keys; counts fetches."""

    keys: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fetches: dict[str, int] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.Response:
        pid = request.match_info["pid"]
        self.fetches[pid] = self.fetches.get(pid, 0) + 1
        return web.json_response({"keys": self.keys.get(pid, [])}, headers={"Cache-Control": "max-age=600"})


def signer(kid: str) -> Signer:
    return Signer(kid, "ed25519", generate_key("ed25519"))


def jwk(s: Signer) -> dict[str, Any]:
    return public_jwk(s.private_key, s.keyid, s.alg)


def config(tmp: Path, jwks_base: str, gw_keys: list[tuple[str, str | None]]) -> Path:
    """A gateway config: keys (keyid, not_before), two qrgw partners publishing at jwks_base."""
    keys = []
    for kid, nb in gw_keys:
        pem = tmp / f"{kid}.pem"
        if not pem.exists():
            pem.write_bytes(private_pem(generate_key("ed25519")))
        keys.append({"keyid": kid, "alg": "ed25519", "private_key": str(pem)} | ({"not_before": nb} if nb else {}))
    partners = [
        {"id": pid, "roles": ["wallet"], "country": "SG", "currency": "SGD", "family": "qrgw",
         "base_url": "http://127.0.0.1:1", "jwks_url": f"{jwks_base}/{pid}/jwks.json"}
        for pid in ("openwallet-sg", "otherwallet-sg")
    ]
    path = tmp / "gw.toml"
    path.write_text(dump_toml({"server": {"sandbox": True}, "gateway": {"keys": keys}, "partners": partners}))
    return path


@dataclass
class Running:
    url: str
    app: web.Application
    jwks: JwksServer
    cfg: Path
    release: asyncio.Event
    entered: asyncio.Event

    async def call(self, s: Signer, path: str = "/v1/qr/decode") -> tuple[int, str, str]:
        """(status, answer keyid, verdict) of a signed call as ``s``."""
        async with httpx.AsyncClient() as client:
            doc = (await client.get(self.url + "/.well-known/jwks.json")).json()
            ex = await exchange(client, s, KeyRegistry([], entries_from_jwks(doc, "qrgw")), "POST",
                                self.url + path, b'{"qr":"x"}', expect_partner="qrgw")
        kid = ex.headers.get("signature-input", "").split('keyid="')[-1].split('"')[0]
        return ex.status, kid, ex.verdict


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    jwks = JwksServer()
    japp = web.Application()
    japp.router.add_get("/{pid}/jwks.json", jwks.handle)
    jrunner = web.AppRunner(japp)
    await jrunner.setup()
    jsite = web.TCPSite(jrunner, "127.0.0.1", 0)
    await jsite.start()
    jbase = f"http://127.0.0.1:{jsite._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    cfg = config(tmp_path, jbase, [("gw-1", None)])
    app = create_app(load_settings(cfg))
    app[LIVE].source = (cfg, {})
    release, entered = asyncio.Event(), asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        entered.set()
        await release.wait()
        return web.json_response({"ok": True})

    app.router.add_post("/v1/_slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    yield Running(url, app, jwks, cfg, release, entered)
    release.set()
    await runner.cleanup()
    await jrunner.cleanup()


async def test_partner_keys_come_from_its_jwks_and_new_kids_are_fetched(running: Running) -> None:
    a1, a2, stranger = signer("ow-1"), signer("ow-2"), signer("nobody-1")
    running.jwks.keys["openwallet-sg"] = [jwk(a1)]
    await running.app[LIVE].rebuild("test")  # first fetch happened at start-up with an empty set
    await running.app[LIVE].jwks.fetch(running.app[LIVE].current.settings)
    await running.app[LIVE].rebuild("test")
    assert (await running.call(a1))[0] == 422  # authenticated (the QR is nonsense: 422, not 401)
    running.jwks.keys["openwallet-sg"].append(jwk(a2))  # the partner publishes a new key
    before = dict(running.jwks.fetches)
    status, kid, verdict = await running.call(a2)
    assert (status, kid, verdict) == (422, "gw-1", "ok")
    assert {p: n - before[p] for p, n in running.jwks.fetches.items()} == {"openwallet-sg": 1, "otherwallet-sg": 1}
    before = dict(running.jwks.fetches)
    assert (await running.call(stranger))[0] == 401
    assert (await running.call(stranger))[0] == 401
    assert running.jwks.fetches == before  # unknown keyids: at most one refresh a minute, and one just ran


def test_cache_control_bounds_the_jwks_cache() -> None:
    from gateway.partnerjwks import DEFAULT_TTL_S, MAX_TTL_S, MIN_TTL_S, cache_ttl

    assert cache_ttl("public, max-age=600") == 600
    assert cache_ttl(None) == DEFAULT_TTL_S and cache_ttl("public") == DEFAULT_TTL_S
    assert cache_ttl("max-age=1") == MIN_TTL_S and cache_ttl("no-store") == MIN_TTL_S
    assert cache_ttl("max-age=99999999") == MAX_TTL_S


async def test_plain_http_jwks_is_refused_outside_the_sandbox(running: Running) -> None:
    live = running.app[LIVE]
    running.jwks.keys["openwallet-sg"] = [jwk(signer("ow-1"))]
    prod = live.current.settings.model_copy(update={"server": live.current.settings.server.model_copy(
        update={"sandbox": False})})
    fetched = live.jwks.__class__()
    before = dict(running.jwks.fetches)
    assert not await fetched.fetch(prod)
    assert fetched.entries(["openwallet-sg"]) == [] and running.jwks.fetches == before  # never even asked


async def test_a_kid_published_by_another_partner_is_refused(running: Running) -> None:
    a1 = signer("ow-1")
    running.jwks.keys["openwallet-sg"] = [jwk(a1)]
    live = running.app[LIVE]
    await live.jwks.fetch(live.current.settings)
    running.jwks.keys["otherwallet-sg"] = [jwk(signer("ow-1"))]  # same kid, another partner
    await live.jwks.fetch(live.current.settings)
    await live.rebuild("test")
    assert live.current.registry.public("ow-1").partner_id == "openwallet-sg"
    assert (await running.call(a1))[0] == 422


async def test_in_flight_requests_finish_with_their_keys_and_bad_configs_are_refused(
    running: Running, tmp_path: Path
) -> None:
    a1 = signer("ow-1")
    running.jwks.keys["openwallet-sg"] = [jwk(a1)]
    live = running.app[LIVE]
    await live.jwks.fetch(live.current.settings)
    await live.rebuild("test")
    slow = asyncio.create_task(running.call(a1, "/v1/_slow"))
    await running.entered.wait()  # verified with gw-1's registry, now inside its handler
    # Rotate: gw-2 valid now and newer than gw-1; reload the config as SIGHUP does.
    jbase = live.current.settings.partners[0].jwks_url.rsplit("/", 2)[0]  # type: ignore[union-attr]
    config(tmp_path, jbase, [("gw-1", None), ("gw-2", "2020-01-01T00:00:00Z")])
    assert await live.reload()
    assert live.current.registry.signer.keyid == "gw-2"
    from gateway.obs.ready import _keys

    assert _keys(running.app)["keyids"] == ["gw-1", "gw-2"]  # readiness sees the reloaded keys
    assert running.app[SERVICES]["webhooks"].signer.keyid == "gw-2"  # events are signed by the new key too
    running.release.set()
    status, kid, verdict = await slow
    assert (status, kid, verdict) == (200, "gw-1", "ok")  # started before the swap: old signer
    assert (await running.call(a1))[1:] == ("gw-2", "ok")
    # A config that does not load is refused; the running one stays.
    generation = live.current.generation
    running.cfg.write_text("[gateway\nbroken")
    assert not await live.reload()
    assert live.current.generation == generation and (await running.call(a1))[1:] == ("gw-2", "ok")


def test_partner_needs_keys_or_a_jwks_url() -> None:
    from schemas.errors import ConfigError

    partner = {"id": "openwallet-sg", "roles": ["wallet"], "country": "SG", "currency": "SGD",
               "family": "qrgw", "base_url": "https://p.example"}
    with pytest.raises(ValueError, match="jwks_url"):
        Settings(partners=[partner])
    assert Settings(partners=[partner | {"jwks_url": "https://p.example/jwks.json"}]).partners[0].jwks_url
    with pytest.raises(ConfigError):
        entries_from_jwks({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AA", "kid": "k"}]}, "p")  # no alg
    assert json.dumps(entries_from_jwks({"keys": []}, "p")) == "[]"


async def test_a_reload_swaps_adapters_and_routing_and_payments_go_on(sandbox_env: SandboxEnvironment) -> None:
    env = sandbox_env
    assert env.settings is not None
    app = create_app(env.settings)
    app[LIVE].source = (env.config_path, {})
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", env.gateway_port).start()
    me = env.partner_keys["kakaopay-kr"]
    gw_keys = list(env.partner_registry("kakaopay-kr").partner_keys("qrgw"))
    client = httpx.AsyncClient(base_url=env.gateway_url, timeout=15,
                               auth=QrgwAuth(me, KeyRegistry([me], gw_keys), "qrgw"))
    original = env.config_path.read_text(encoding="utf-8")
    try:
        before = app[PAYMENTS].orchestrator.partners.wallets["kakaopay-kr"]
        data = tomllib.loads(original)
        data["routing"] = [r for r in data["routing"] if r["partner"] != "kakaopay-kr"]
        next(p for p in data["partners"] if p["id"] == "kakaopay-kr")["roles"] = ["acquirer"]
        env.config_path.write_text(dump_toml(data), encoding="utf-8")
        assert await app[LIVE].reload()
        route = (await client.post("/v1/qr/decode", json={"qr": env.sample_qr("seoul")})).json()["route"]
        assert route is None or route["acquirer"] != "kakaopay-kr"
        pay = {"payment_request_id": "live-1", "qr": env.sample_qr("seoul", amount=15000),
               "payer": {"id": "kr-user-1", "residency": "resident", "country": "KR"}, "payer_currency": "KRW"}
        refused = await client.post("/v1/payments", json=pay)
        assert refused.status_code == 403 and refused.json()["code"] == "ROLE_NOT_ALLOWED"  # roles reloaded too
        env.config_path.write_text(original, encoding="utf-8")
        assert await app[LIVE].reload()
        after = app[PAYMENTS].orchestrator.partners.wallets["kakaopay-kr"]
        assert after is not before  # new adapters (the current keys, URLs, timeouts)
        r = await client.post("/v1/payments", json=pay)
        assert r.status_code == 201 and r.json()["status"] == "SUCCEEDED", r.text
    finally:
        await client.aclose()
        await runner.cleanup()
