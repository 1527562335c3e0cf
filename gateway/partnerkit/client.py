"""The partner side of the wire for ``qrgw call``: a client config naming the gateway and the
partner keys to sign with, and one signed call whose answer is verified.

Client config (TOML; paths relative to the file)::

    gateway_url = "https://gw.example.com"
    default_partner = "openwallet-sg"
    # gateway_jwks = "gateway-jwks.json"   # pinned gateway keys; default: <gateway_url>/.well-known/jwks.json
    [[partners]]
    id = "openwallet-sg"
    keyid = "openwallet-sg-2026-01"
    alg = "ed25519"
    private_key = "keys/openwallet-sg-2026-01.pem"
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.config import Algorithm, read_toml
from gateway.partnerkit.wire import Exchange, exchange
from gateway.signing import KeyRegistry, Signer, load_private_key
from gateway.signing.jwks import entries_from_jwks
from schemas.errors import ConfigError


class ClientPartner(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z0-9-]{3,32}$")
    keyid: str = Field(min_length=1, max_length=128)
    alg: Algorithm
    private_key: Path


class ClientConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    gateway_url: str = Field(pattern=r"^https?://[^/\s]+")
    default_partner: str | None = None
    gateway_jwks: Path | None = None
    partners: list[ClientPartner] = Field(min_length=1)

    def partner(self, partner_id: str | None) -> ClientPartner:
        wanted = partner_id or self.default_partner or self.partners[0].id
        for p in self.partners:
            if p.id == wanted:
                return p
        raise ConfigError(f"partner {wanted!r} is not in the client config ({[p.id for p in self.partners]})")


def load_client_config(path: Path) -> ClientConfig:
    raw = read_toml(path)
    if isinstance(raw.get("gateway_jwks"), str):  # read_toml resolves only the gateway's path keys
        raw["gateway_jwks"] = str((path.resolve().parent / raw["gateway_jwks"]).resolve())
    try:
        return ClientConfig(**raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "(top level)"
        raise ConfigError(f"{path}: {where}: {err['msg']}") from None


def client_config_doc(gateway_url: str, partners: list[dict[str, str]]) -> dict[str, Any]:
    """A client config as a TOML-ready mapping (``qrgw sandbox`` writes one)."""
    return {"gateway_url": gateway_url, "default_partner": partners[0]["id"], "partners": partners}


async def gateway_keys(cfg: ClientConfig, client: httpx.AsyncClient) -> KeyRegistry:
    """The gateway's public keys: pinned in the config, else its JWKS over the same (TLS) origin."""
    if cfg.gateway_jwks is not None:
        try:
            doc = json.loads(cfg.gateway_jwks.read_bytes())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{cfg.gateway_jwks}: cannot read a JWK Set ({exc})") from exc
    else:
        resp = await client.get(cfg.gateway_url.rstrip("/") + "/.well-known/jwks.json")
        if resp.status_code != 200:
            raise ConfigError(f"gateway JWKS answered HTTP {resp.status_code}")
        doc = resp.json()
    return KeyRegistry([], entries_from_jwks(doc, "qrgw"))


async def call(
    cfg: ClientConfig, partner_id: str | None, method: str, path: str, body: bytes | None
) -> Exchange:
    """Sign ``method path`` as the partner, send it, verify the gateway's signed answer."""
    p = cfg.partner(partner_id)
    signer = Signer(p.keyid, p.alg, load_private_key(p.private_key, p.alg))
    if not path.startswith("/"):
        raise ConfigError(f"PATH must start with '/' (got {path!r})")
    async with httpx.AsyncClient(timeout=30.0) as client:
        verifier = await gateway_keys(cfg, client)
        return await exchange(client, signer, verifier, method.upper(), cfg.gateway_url.rstrip("/") + path,
                              body, expect_partner="qrgw")


def write_sandbox_client_config(env: Any) -> Path:
    """``<dir>/qrgw-client.toml`` for a running ``SandboxEnvironment``: every sandbox partner's key
    (first = default), so ``qrgw call --config`` works against ``qrgw serve`` of that sandbox."""
    from gateway.sandbox_env import dump_toml

    partners = [
        {"id": pid, "keyid": gk.keyid, "alg": gk.alg, "private_key": str(gk.private_path)}
        for pid, gk in sorted(env.partner_key_files.items(), key=lambda kv: kv[0] != "openwallet-sg")
    ]
    path: Path = env.workdir / "qrgw-client.toml"
    path.write_text(dump_toml(client_config_doc(env.gateway_url, partners)), encoding="utf-8")
    return path
