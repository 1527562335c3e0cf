"""The sandbox topology, started in one line for the demo, the tests and the benchmarks.

``async with SandboxEnvironment(tmpdir) as env:`` generates every key at run time (gateway and
partners, into ``tmpdir/keys``), starts the three sandbox partners (one per adapter family) on
free loopback ports in this process, fills ``config/sandbox.toml`` into ``tmpdir/gateway.toml``
and loads it as ``env.settings``. Nothing secret is ever read from the repository.
"""

from __future__ import annotations

import json
import secrets
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from adapters.endpoint import PartnerEndpoint
from adapters.sandbox.alipayplus import AlipayPlusSandbox
from adapters.sandbox.kakaopay import KakaoPaySandbox
from adapters.sandbox.ledger import merge_sums, violations
from adapters.sandbox.oris import OrisSandbox
from adapters.sandbox.qrgw import QrgwSandbox
from adapters.sandbox.server import SandboxConfig, SandboxPartner
from gateway.config import Settings, config_dir, load_settings
from gateway.qr import samples
from gateway.signing import KeyRegistry, PublicKeyEntry, Signer, generate_key, private_pem, public_pem

TEMPLATE = config_dir() / "sandbox.toml"
SCREENING_LIST = TEMPLATE.parent / "screening_sandbox.toml"
GATEWAY_KEYS: tuple[tuple[str, str], ...] = (
    ("qrgw-sbx-ed25519", "ed25519"),  # the qrgw profile (§2): first = current signer
    ("qrgw-sbx-rsa", "rsa-v1_5-sha256"),  # Alipay+ RSA256 towards alipayplus partners
)
PARTNER_ALG = {"qrgw": "ed25519", "kakaopay": "ed25519", "alipayplus": "rsa-v1_5-sha256"}
ALIPAY_KEY_VERSION = "1"
SANDBOXES: dict[str, type[SandboxPartner]] = {
    "qrgw": QrgwSandbox,
    "kakaopay": KakaoPaySandbox,
    "alipayplus": AlipayPlusSandbox,
}
# Seeded payers (minor units of the wallet's currency); any other payer id gets default_balance.
SEED_BALANCES: dict[str, dict[str, int]] = {
    "kakaopay-kr": {"kr-user-1": 2_000_000, "kr-user-broke": 100},
    "alipay-cn": {"cn-tourist-1": 500_000, "cn-tourist-broke": 100},
    "openwallet-sg": {"sg-user-1": 100_000, "sg-user-broke": 100},
}
Merchant = Literal["seoul", "shanghai", "singapore"]


@dataclass(frozen=True)
class GeneratedKey:
    keyid: str
    alg: str
    signer: Signer
    private_path: Path
    public_path: Path


def generate(keys_dir: Path, keyid: str, alg: str) -> GeneratedKey:
    """A fresh key pair written as PEM files (private one 0600)."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    key = generate_key(alg)
    priv = keys_dir / f"{keyid}.pem"
    pub = keys_dir / f"{keyid}.pub.pem"
    priv.write_bytes(private_pem(key))
    priv.chmod(0o600)
    pub.write_bytes(public_pem(key))
    return GeneratedKey(keyid, alg, Signer(keyid=keyid, alg=alg, private_key=key), priv, pub)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class SandboxEnvironment:
    """Keys, three sandbox partners and a gateway ``Settings``; see the module docstring."""

    def __init__(
        self,
        workdir: Path | str,
        *,
        store_url: str = "memory://",
        host: str = "127.0.0.1",
        gateway_port: int | None = None,
        default_balance: int | None = 10**8,
        balances: Mapping[str, Mapping[str, int]] | None = None,
        seed: int = 0,
        hang_s: float = 30.0,
        ports: Mapping[str, int] | None = None,
        overrides: Mapping[str, Any] | None = None,
        fx_sandboxes: bool = True,
    ) -> None:
        self.workdir = Path(workdir)
        self.keys_dir = self.workdir / "keys"
        self.config_path = self.workdir / "gateway.toml"
        self.store_url = store_url
        self.host = host
        self.gateway_port = gateway_port
        self.default_balance = default_balance
        self.balances = {k: dict(v) for k, v in (balances or SEED_BALANCES).items()}
        self.seed = seed
        self.hang_s = hang_s
        self.ports = dict(ports or {})
        self.overrides = dict(overrides or {})
        self.template: dict[str, Any] = tomllib.loads(TEMPLATE.read_text(encoding="utf-8"))
        self.gateway_keys: list[GeneratedKey] = []
        self.partner_key_files: dict[str, GeneratedKey] = {}
        self.partner_keys: dict[str, Signer] = {}
        self._sandboxes: dict[str, SandboxPartner] = {}
        self.oris = OrisSandbox()  # the national limit registry the FX policy asks and reports to
        self.fx_sandboxes = fx_sandboxes  # False: no registry, no screening (the gateway's FX defaults)
        self.settings: Settings | None = None

    # --- lifecycle ---------------------------------------------------------------------------------
    async def __aenter__(self) -> SandboxEnvironment:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self.gateway_keys = [generate(self.keys_dir, kid, alg) for kid, alg in GATEWAY_KEYS]
        gw_public = [
            PublicKeyEntry(
                keyid=k.keyid,
                partner_id="qrgw",
                alg=k.alg,
                public_key=k.signer.private_key.public_key(),
                key_version=ALIPAY_KEY_VERSION if k.alg.startswith("rsa") else None,
            )
            for k in self.gateway_keys
        ]
        try:
            for p in self.template["partners"]:
                gk = generate(self.keys_dir, f"{p['id']}-sbx-1", PARTNER_ALG[p["family"]])
                self.partner_key_files[p["id"]] = gk
                self.partner_keys[p["id"]] = gk.signer
                secret = None
                if p["family"] == "kakaopay":
                    secret = secrets.token_hex(20)
                    path = self.keys_dir / f"{p['id']}.secret"
                    path.write_text(secret + "\n", encoding="utf-8")
                    path.chmod(0o600)
                cfg = SandboxConfig(
                    partner_id=p["id"],
                    currency=p["currency"],
                    signer=gk.signer,
                    gateway_keys=gw_public,
                    client_id=p.get("client_id"),
                    secret_key=secret,
                    key_version=ALIPAY_KEY_VERSION,
                    balances=dict(self.balances.get(p["id"], {})),
                    default_balance=self.default_balance,
                    seed=self.seed,
                    hang_s=self.hang_s,
                )
                sbx = SANDBOXES[p["family"]](cfg)
                await sbx.start(self.host, self.ports.get(p["id"], 0))
                self._sandboxes[p["id"]] = sbx
            if self.fx_sandboxes:
                await self.oris.start(self.host)
            self.config_path.write_text(dump_toml(self.filled_config()), encoding="utf-8")
            for sbx in self._sandboxes.values():  # they follow the gateway's key rotations from its JWKS
                sbx.gateway_keys.jwks_url = f"{self.gateway_url}/.well-known/jwks.json"
            self.settings = load_settings(self.config_path, **self.overrides)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        sandboxes, self._sandboxes = self._sandboxes, {}
        for sbx in sandboxes.values():
            await sbx.stop()
        await self.oris.stop()

    # --- configuration -------------------------------------------------------------------------------
    def filled_config(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(json.dumps(self.template))  # deep copy
        if self.gateway_port is None:
            self.gateway_port = free_port(self.host)
        data["server"] |= {"host": self.host, "port": self.gateway_port}
        data["store"] = {"url": self.store_url}
        data["gateway"]["keys"] = [
            {"keyid": k.keyid, "alg": k.alg, "private_key": str(k.private_path)} for k in self.gateway_keys
        ]
        for p in data["partners"]:
            sbx = self._sandboxes[p["id"]]
            gk = self.partner_key_files[p["id"]]
            p["base_url"] = sbx.url
            p["webhook_url"] = f"{sbx.url}/webhooks"
            key: dict[str, Any] = {"keyid": gk.keyid, "alg": gk.alg, "public_key": str(gk.public_path)}
            if p["family"] == "alipayplus":
                key["key_version"] = ALIPAY_KEY_VERSION
            p["keys"] = [key]
            if p["family"] == "kakaopay":
                p["secret_key_file"] = str(self.keys_dir / f"{p['id']}.secret")
        if not self.fx_sandboxes:
            return data
        # the FX policy's sandboxes: the ORIS-style registry and the fictitious screening list
        fx = data.setdefault("fx", {})
        fx.setdefault("policy", {})["registry"] = {"enabled": True, "url": self.oris.url, "fallback": "refuse"}
        fx["screening"] = {"enabled": True, "list_file": str(SCREENING_LIST)}
        return data

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.gateway_port}"

    def sandbox(self, partner_id: str) -> SandboxPartner:
        """The running sandbox partner: ``.ledger``, ``.faults``, ``.url``, ``.events``."""
        return self._sandboxes[partner_id]

    @property
    def sandboxes(self) -> dict[str, SandboxPartner]:
        return dict(self._sandboxes)

    def endpoints(self) -> dict[str, PartnerEndpoint]:
        assert self.settings is not None, "start() first"
        return {
            p.id: PartnerEndpoint.from_settings(p.model_dump(), sandbox=self.settings.server.sandbox)
            for p in self.settings.partners
        }

    def gateway_registry(self) -> KeyRegistry:
        """The gateway's view: its signers, every partner's public key."""
        entries = [
            PublicKeyEntry(
                keyid=gk.keyid,
                partner_id=pid,
                alg=gk.alg,
                public_key=gk.signer.private_key.public_key(),
                key_version=ALIPAY_KEY_VERSION if gk.alg.startswith("rsa") else None,
            )
            for pid, gk in self.partner_key_files.items()
        ]
        client_ids = {p["client_id"]: p["id"] for p in self.template["partners"] if p.get("client_id")}
        return KeyRegistry([k.signer for k in self.gateway_keys], entries, client_ids=client_ids)

    def partner_registry(self, partner_id: str) -> KeyRegistry:
        """A partner's view (to call the gateway as that partner): its key, the gateway's keys."""
        return self._sandboxes[partner_id].registry

    def violations(self) -> list[str]:
        """Payments where a payer is debited without the merchant credited (or vice versa)."""
        return violations(merge_sums(*(s.ledger for s in self._sandboxes.values())))

    def sample_qr(
        self, merchant: Merchant = "seoul", *, amount: int | None = None, korean: bool = False
    ) -> str:
        return sample_qr(merchant, amount=amount, korean=korean)


# --- sample merchant QR codes: the codec's own samples (encoded by gateway.qr, CRC included) ----
def sample_qr(merchant: Merchant = "seoul", *, amount: int | None = None, korean: bool = False) -> str:
    """The shared QR of the topology's sample merchants; ``amount`` as printed in tag 54."""
    printed = None if amount is None else str(amount)
    if merchant == "seoul":
        return samples.seoul(printed, korean=korean)
    if merchant == "shanghai":
        return samples.shanghai(printed)
    return samples.singapore(printed)


# --- a small TOML writer (tables, arrays of tables, scalars, arrays of scalars) ------------------
def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_scalar(x)}" for k, x in v.items()) + "}"
    return json.dumps(str(v), ensure_ascii=False)


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def dump_toml(data: Mapping[str, Any], prefix: str = "") -> str:
    lines: list[str] = []
    for k, v in data.items():
        if not isinstance(v, dict) and not _is_table_array(v):
            lines.append(f"{k} = {_scalar(v)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, v in data.items():
        name = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            out += f"\n[{name}]\n" + dump_toml(v, name)
        elif _is_table_array(v):
            for item in v:
                out += f"\n[[{name}]]\n" + dump_toml(item, name)
    return out
