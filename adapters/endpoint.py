"""``PartnerEndpoint``: everything an adapter needs to reach one partner (no gateway imports).

Built by the composition root from ``gateway.config.PartnerSettings`` via
``PartnerEndpoint.from_settings(partner.model_dump(), sandbox=settings.server.sandbox)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.errors import ConfigError


@dataclass(frozen=True)
class PartnerEndpoint:
    id: str
    family: str  # "qrgw" | "alipayplus" | "kakaopay"
    roles: tuple[str, ...]
    country: str
    currency: str
    base_url: str
    client_id: str | None = None  # Alipay+ Client-Id / Kakao Pay cid
    secret_key: str | None = field(default=None, repr=False)  # Kakao Pay SECRET_KEY
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 5.0
    total_timeout_s: float = 8.0
    http2: bool = False
    ca_bundle: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    sandbox: bool = False
    tls_verify: bool = True  # False only with sandbox=True (OutboundHttp refuses otherwise)
    key_version: str = "1"  # the Alipay+ keyVersion partners know the gateway's key by
    webhook_url: str | None = None  # where the gateway POSTs events (same TLS policy as base_url)

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    @classmethod
    def from_settings(
        cls, p: Mapping[str, Any], *, sandbox: bool = False, with_secret: bool = True
    ) -> PartnerEndpoint:
        """From a ``PartnerSettings.model_dump()``; reads the Kakao secret from its file or env
        (``with_secret=False``: not needed, e.g. for webhook delivery)."""
        secret: str | None = None
        if not with_secret:
            pass
        elif p.get("secret_key_file"):
            path = Path(p["secret_key_file"])
            try:
                secret = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"partners[{p['id']}].secret_key_file: cannot read {path}") from exc
        elif p.get("secret_key_env"):
            secret = os.environ.get(p["secret_key_env"])
            if not secret:
                raise ConfigError(f"partners[{p['id']}].secret_key_env: {p['secret_key_env']} is not set")
        if with_secret and p["family"] == "kakaopay" and not secret:
            raise ConfigError(
                f"partners[{p['id']}]: the kakaopay family needs secret_key_file or secret_key_env"
            )
        return cls(
            id=p["id"],
            family=p["family"],
            roles=tuple(p["roles"]),
            country=p["country"],
            currency=p["currency"],
            base_url=p["base_url"],
            client_id=p.get("client_id"),
            secret_key=secret,
            connect_timeout_s=p.get("connect_timeout_s", 2.0),
            read_timeout_s=p.get("read_timeout_s", 5.0),
            total_timeout_s=p.get("total_timeout_s", 8.0),
            http2=bool(p.get("http2", False)),
            ca_bundle=_path(p.get("ca_bundle")),
            client_cert=_path(p.get("client_cert")),
            client_key=_path(p.get("client_key")),
            sandbox=sandbox,
            webhook_url=p.get("webhook_url"),
        )


def _path(v: Any) -> Path | None:
    return Path(v) if v else None
