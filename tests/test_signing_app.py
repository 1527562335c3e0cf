"""The composition root wires signing: create_app over loopback, partner client with QrgwAuth."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

import gateway.app
from gateway.app import create_app
from gateway.config import Settings
from gateway.signing import KeyRegistry, QrgwAuth, Signer, generate_key, private_pem, public_jwk
from gateway.store.memory import MemoryStore
from gateway.testing.signing import entry_for, make_signer
from schemas.errors import ConfigError


class FakeStore(MemoryStore):
    """The embedded store, remembering which nonces the signing path checked."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str]] = []

    async def remember_nonce(self, keyid: str, nonce: str, ttl_s: int) -> bool:
        self.seen.append((keyid, nonce))
        return await super().remember_nonce(keyid, nonce, ttl_s)


@pytest.fixture
async def running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, Signer, KeyRegistry, FakeStore]]:
    store = FakeStore()

    async def fake_open_store(_settings: Any) -> FakeStore:
        return store

    monkeypatch.setattr(gateway.app, "open_store", fake_open_store)
    gw_key = generate_key("ed25519")
    (tmp_path / "gw.pem").write_bytes(private_pem(gw_key))
    partner = make_signer("ecdsa-p256-sha256", "openwallet-sg-1")
    settings = Settings(
        gateway={"keys": [{"keyid": "qrgw-gw", "alg": "ed25519", "private_key": tmp_path / "gw.pem"}]},
        partners=[
            {
                "id": "openwallet-sg",
                "roles": ["wallet"],
                "country": "SG",
                "currency": "SGD",
                "family": "qrgw",
                "base_url": "http://127.0.0.1:1",
                "keys": [
                    {
                        "keyid": partner.keyid,
                        "alg": partner.alg,
                        "public_key": public_jwk(partner.private_key, partner.keyid, partner.alg),
                    }
                ],
            }
        ],
    )
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    partner_view = KeyRegistry([partner], [entry_for(Signer("qrgw-gw", "ed25519", gw_key), "qrgw")])
    yield f"http://127.0.0.1:{port}", partner, partner_view, store
    await runner.cleanup()


async def test_create_app_verifies_and_signs(running: tuple[str, Signer, KeyRegistry, FakeStore]) -> None:
    url, partner, partner_view, store = running
    async with httpx.AsyncClient(base_url=url, auth=QrgwAuth(partner, partner_view, "qrgw")) as client:
        resp = await client.post("/v1/not-yet", json={"x": 1}, headers={"X-Request-Id": "req-abc"})
    # verified (nonce remembered), answered, and the answer's signature checked by QrgwAuth
    assert resp.status_code in (404, 405) and resp.headers["X-Request-Id"] == "req-abc"
    assert len(store.seen) == 1
    async with httpx.AsyncClient(base_url=url) as client:
        unsigned = await client.post("/v1/not-yet", json={"x": 1})
        assert unsigned.status_code == 401 and unsigned.json()["code"] == "SIGNATURE_MISSING"
        assert "Signature" in unsigned.headers
        health = await client.get("/healthz")
        assert health.status_code == 200 and "Signature" not in health.headers
        jwks = (await client.get("/.well-known/jwks.json")).json()
    assert [k["kid"] for k in jwks["keys"]] == ["qrgw-gw"] and len(store.seen) == 1


def test_create_app_needs_a_signing_key() -> None:
    with pytest.raises(ConfigError):
        create_app(Settings())
