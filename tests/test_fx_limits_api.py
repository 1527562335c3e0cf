"""``GET /v1/limits`` and the national registry over real loopback HTTP: a signed gateway built by
``create_app`` with the real FX bridge (rules of config/gateway.toml, the sandbox ORIS registry,
the sandbox screening list) and fake partners. Responses are verified (QrgwAuth): signed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiohttp import web
from loopback import scrape

import gateway.app
from adapters.sandbox.oris import OrisSandbox
from gateway.app import create_app
from gateway.appkeys import SERVICES
from gateway.config import Settings, load_settings
from gateway.payments.ports import Partners
from gateway.payments.state import RetryPolicy
from gateway.signing import KeyRegistry, QrgwAuth, Signer, generate_key, private_pem, public_jwk
from gateway.store.memory import MemoryStore
from gateway.testing.payments import FAST_POLICY_ARGS, SHANGHAI_STATIC, build_harness
from gateway.testing.signing import entry_for, make_signer

PARTNERS = {"alipay-cn": ("CN", "CNY", ["wallet", "acquirer"]), "kakaopay-kr": ("KR", "KRW", ["wallet", "acquirer"]),
            "acq-only-kr": ("KR", "KRW", ["acquirer"])}
NID = "b" * 64
LIST = Path(__file__).resolve().parent.parent / "config" / "screening_sandbox.toml"


@dataclass
class Gw:
    url: str
    oris: OrisSandbox
    clients: dict[str, httpx.AsyncClient]
    app: web.Application


@pytest.fixture
async def gw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Gw]:
    h = build_harness(MemoryStore())

    async def open_store(_settings: Any) -> Any:
        return h.store

    monkeypatch.setattr(gateway.app, "open_store", open_store)
    oris = OrisSandbox()
    oris_url = await oris.start()
    gw_key = generate_key("ed25519")
    (tmp_path / "gw.pem").write_bytes(private_pem(gw_key))
    signers = {p: make_signer("ed25519", f"{p}-1") for p in PARTNERS}
    raw = load_settings().model_dump(mode="json")  # the shipped [fx] rules, sources and jurisdictions
    raw["fx"]["rates"] = {"table": {"USD/KRW": "1000", "USD/CNY": "8"}}
    raw["fx"]["policy"]["registry"] = {"enabled": True, "url": oris_url, "timeout_s": 1.0, "fallback": "refuse"}
    raw["fx"]["screening"] = {"enabled": True, "list_file": str(LIST)}
    raw.update(
        server={"sandbox": True},
        gateway={"keys": [{"keyid": "qrgw-gw", "alg": "ed25519", "private_key": str(tmp_path / "gw.pem")}]},
        partners=[
            {"id": p, "roles": roles, "country": c, "currency": cur, "family": "qrgw", "base_url": "http://127.0.0.1:1",
             "keys": [{"keyid": s.keyid, "alg": s.alg, "public_key": public_jwk(s.private_key, s.keyid, s.alg)}]}
            for (p, (c, cur, roles)), s in zip(PARTNERS.items(), signers.values(), strict=True)
        ],
    )
    app = create_app(Settings.model_validate(raw))
    app[SERVICES].update(  # real pricing (built from the settings); fake partners and QR codes
        partners=Partners(wallets=dict(h.wallets), acquirers=dict(h.acquirers)), resolver=h.resolver,
        policy=RetryPolicy(**FAST_POLICY_ARGS), recovery_interval_s=0.01,
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    gw_entry = entry_for(Signer("qrgw-gw", "ed25519", gw_key), "qrgw")
    clients = {
        p: httpx.AsyncClient(base_url=url, auth=QrgwAuth(s, KeyRegistry([s], [gw_entry]), "qrgw"))
        for p, s in signers.items()
    }
    yield Gw(url, oris, clients, app)
    for c in clients.values():
        await c.aclose()
    await runner.cleanup()
    await oris.stop()


async def plain(gw: Gw, path: str) -> httpx.Response:
    """An unsigned GET (the event loop also runs the gateway: never a blocking client here)."""
    async with httpx.AsyncClient(base_url=gw.url) as c:
        return await c.get(path)


def pay(rid: str, cny: int, **payer: Any) -> dict[str, Any]:
    return {
        "payment_request_id": rid, "qr": SHANGHAI_STATIC, "amount": {"currency": "CNY", "value": str(cny)},
        "payer": {"id": "kr-payer", "residency": "resident", "country": "KR", "name": "Kim Minji", **payer},
        "payer_currency": "KRW",
    }


def rule(view: dict[str, Any], name: str, country: str = "KR") -> dict[str, Any]:
    return next(r for r in view["rules"] if r["rule"] == name and r["jurisdiction"] == country)


async def test_a_wallet_reads_what_its_payer_may_still_spend(gw: Gw) -> None:
    kakao = gw.clients["kakaopay-kr"]
    r = await kakao.post("/v1/payments", json=pay("p-1", 40_000, national_id_hash=NID))  # CNY 400 = USD 50
    assert r.status_code == 201 and r.json()["status"] == "SUCCEEDED", r.text
    assert gw.oris.used[(NID, datetime.now(ZoneInfo("Asia/Seoul")).year)] == 5_000  # reported to ORIS
    r = await kakao.get("/v1/limits", params={"payer_id": "kr-payer"})  # a signed answer (QrgwAuth verified it)
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["payer_id"] == "kr-payer" and view["identity"] == "national"
    annual = rule(view, "resident_annual_usd")
    limit = annual["limit"]["value"]
    assert annual["used"] == {"currency": "USD", "value": "5000"}
    assert annual["remaining"] == {"currency": "USD", "value": str(int(limit) - 5000)}
    assert annual["confirmed"] is False and "MOEF" in annual["source"]  # 2026 value: effective day assumed
    seoul = ZoneInfo("Asia/Seoul")
    year_end = datetime.combine(date(datetime.now(seoul).year + 1, 1, 1), time(), seoul).astimezone(UTC)
    assert annual["window_end"] == year_end.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    per_payment = rule(view, "resident_per_payment_usd")
    assert per_payment["confirmed"] is True and "used" not in per_payment
    assert rule(view, "nonresident_daily_usd")["used"] == {"currency": "USD", "value": "0"}
    assert view["national"]["status"] == "ok" and view["national"]["used"] == {"currency": "USD", "value": "5000"}
    # the same payer id at another wallet is another payer: nothing used, national view of its own key
    other = (await gw.clients["alipay-cn"].get("/v1/limits", params={"payer_id": "kr-payer"})).json()
    assert other["identity"] == "wallet" and rule(other, "resident_annual_usd")["used"]["value"] == "0"
    assert other["national"]["used"]["value"] == "0"
    metrics = await scrape(gw.app)  # the operator listener's /metrics
    assert 'qrgw_fx_registry_total{op="report",outcome="ok"} 1.0' in metrics
    assert 'qrgw_fx_screening_total{outcome="clear"} 1.0' in metrics


async def test_limits_are_for_wallets_and_need_a_payer_id(gw: Gw) -> None:
    r = await gw.clients["acq-only-kr"].get("/v1/limits", params={"payer_id": "kr-payer"})
    assert r.status_code == 403 and r.json()["code"] == "ROLE_NOT_ALLOWED"  # the roles table answers first
    r = await gw.clients["kakaopay-kr"].get("/v1/limits")
    assert r.status_code == 422 and "payer_id" in r.json()["detail"]
    unsigned = await plain(gw, "/v1/limits?payer_id=kr-payer")
    assert unsigned.status_code == 401


async def test_registry_down_refuses_and_screening_hit_refuses_before_the_debit(gw: Gw) -> None:
    kakao = gw.clients["kakaopay-kr"]
    gw.oris.mode = "down"
    r = await kakao.post("/v1/payments", json=pay("p-2", 10_000))
    assert r.status_code == 503 and r.json()["code"] == "FX_REGISTRY_UNAVAILABLE" and "retry-after" in r.headers
    gw.oris.mode = "up"
    r = await kakao.post("/v1/payments", json=pay("p-3", 10_000, name="Sandbox Sanctioned Person"))
    assert r.status_code == 403 and r.json()["code"] == "SCREENING_HIT"
    view = (await kakao.get("/v1/limits", params={"payer_id": "kr-payer"})).json()
    assert rule(view, "resident_annual_usd")["used"]["value"] == "0"  # neither counted anything
    metrics = await scrape(gw.app)  # the operator listener's /metrics
    assert 'qrgw_fx_registry_total{op="allowance",outcome="unavailable_refused"} 1.0' in metrics


@pytest.mark.slow
async def test_the_sandbox_environment_runs_registry_and_screening_end_to_end(tmp_path: Path) -> None:
    from gateway.demo import run_demo
    from gateway.sandbox_env import SandboxEnvironment

    seen: list[SandboxEnvironment] = []
    summary = await run_demo(tmp_path, emit=None, prepare=seen.append)
    assert summary["ok"] is True, summary.get("failures")
    (env,) = seen
    assert env.settings is not None and env.settings.fx.screening.enabled
    # the Korean payer paying in Shanghai (journey 2) was asked for, then reported: one USD amount counted
    assert env.oris.calls == ["GET allowances", "PUT reports"]
    ((person, _year), used), = env.oris.used.items()
    assert used > 0 and person.startswith("w")  # no national id sent: the wallet-scoped key
