"""Configuration: ``config/gateway.toml`` defaults, a ``--config`` file layered over them, then
``QRGW_*`` environment variables (``QRGW_SERVER__PORT=9000``; nested keys joined by ``__``).

Layering merges tables key by key; a list (``partners``, ``routing``, ``gateway.keys``) given
by the later layer replaces the earlier one whole. Relative paths resolve against the folder
of the file that names them. Anything wrong raises ``ConfigError`` with one line naming the
file, the key and the problem.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from fx.settings import FXSettings
from gateway.routing_settings import Coverage, RoutingPolicySettings
from schemas.errors import ConfigError


def config_dir() -> Path:
    """The folder of the shipped ``*.toml`` defaults: ``gateway/_defaults`` in an installed wheel
    (``setup.py`` copies ``config/`` there), else the checkout's ``config/`` (editable installs)."""
    here = Path(__file__).resolve().parent
    packaged = here / "_defaults"
    return packaged if (packaged / "gateway.toml").is_file() else here.parent / "config"


DEFAULTS_FILE = config_dir() / "gateway.toml"
PATH_KEYS = frozenset(
    {"private_key", "public_key", "tls_cert", "tls_key", "client_ca", "ca_bundle", "client_cert",
     "client_key", "table_file", "secret_key_file", "list_file"}
)
Algorithm = Literal["ed25519", "ecdsa-p256-sha256", "rsa-pss-sha512", "rsa-v1_5-sha256"]
Role = Literal["wallet", "acquirer"]
Family = Literal["qrgw", "alipayplus", "kakaopay"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("public_url", "base_url"),  # base_url: its name before
        description="The URL partners call (scheme://host[:port]); requests must be signed for its @authority. "
        "Unset: the address the connection reached (local use)",
    )
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # Connection hardening (gateway.serving): a slow or idle client cannot hold a socket for long.
    header_timeout_s: float = Field(default=10.0, gt=0, description="From a request's first byte to its full head")
    body_timeout_s: float = Field(default=30.0, gt=0, description="From the head to the last byte of the body")
    idle_timeout_s: float = Field(default=75.0, gt=0, description="Keep-alive: idle connection closed after")
    max_connections: int = Field(default=512, ge=1, description="Open connections; past it the oldest idle one goes")
    max_header_bytes: int = Field(default=8190, ge=1024, description="One header line (or the request line)")
    max_headers: int = Field(default=64, ge=8, description="Header fields per request")
    request_timeout_s: float = Field(default=30.0, gt=0)
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = Field(default=None, description="CA bundle: require partner client certs (mTLS)")
    sandbox: bool = Field(default=False, description="Sandbox mode: loopback HTTP to partners allowed")

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s?#@]+/?$", v):
            raise ValueError("must be scheme://host[:port] (http or https, no path)")
        return v.rstrip("/") if v else v


class StoreSettings(_Strict):
    url: str = "memory://"
    pool_size: int = Field(default=64, ge=1)
    timeout_s: float = Field(default=2.0, gt=0)
    # A call whose reply is lost is repeated (identically: every store call is safe to repeat) until it
    # answers or this much time has passed; then the outcome is unknown and the request answers 503.
    repeat_budget_s: float = Field(default=5.0, ge=0, le=60)

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not re.match(r"^(memory://|redis://|rediss://|redis\+cluster://|unix://)", v):
            raise ValueError("must be memory://, redis://, rediss://, redis+cluster:// or unix://")
        return v


class GatewayKey(_Strict):
    keyid: str = Field(min_length=1, max_length=128)
    alg: Algorithm
    private_key: Path
    not_before: datetime | None = None
    not_after: datetime | None = None


class GatewaySettings(_Strict):
    keys: list[GatewayKey] = Field(default_factory=list)
    client_id: str = Field(default="qrgw", description="Our Client-Id towards alipayplus partners")


class PartnerKey(_Strict):
    keyid: str = Field(min_length=1, max_length=128)
    alg: Algorithm
    public_key: Path | dict[str, Any] = Field(description="PEM file, or an inline JWK table")
    not_before: datetime | None = None
    not_after: datetime | None = None
    key_version: str | None = Field(default=None, description="Alipay+ keyVersion this key answers to")


class RateLimit(_Strict):
    rate_per_s: float = Field(default=200.0, gt=0)
    burst: int = Field(default=400, ge=1)


class PartnerSettings(_Strict):
    id: str = Field(pattern=r"^[a-z0-9-]{3,32}$")
    roles: list[Role] = Field(min_length=1)
    country: str = Field(pattern=r"^[A-Z]{2}$")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    family: Family
    base_url: str
    webhook_url: str | None = None
    keys: list[PartnerKey] = Field(default_factory=list)
    jwks_url: str | None = Field(default=None, description="JWK Set URL of the partner's public keys (kid+alg)")
    client_id: str | None = Field(default=None, description="Alipay+ Client-Id of this partner")
    secret_key_file: Path | None = Field(default=None, description="Kakao Pay SECRET_KEY, read from a file")
    secret_key_env: str | None = Field(default=None, description="...or from this environment variable")
    connect_timeout_s: float = Field(default=2.0, gt=0)
    read_timeout_s: float = Field(default=5.0, gt=0)
    total_timeout_s: float = Field(default=8.0, gt=0)
    http2: bool = False
    ca_bundle: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    acquires: Coverage | None = Field(default=None, description="Merchant countries/currencies it acquires")
    paused: bool = Field(default=False, description="Routing skips it (an admin can pause it in the store too)")

    @property
    def coverage(self) -> Coverage:
        return self.acquires or Coverage.home(self.country, self.currency)

    @field_validator("base_url", "webhook_url", "jwks_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("must be an http(s) URL")
        return v.rstrip("/") if v else v

    @model_validator(mode="after")
    def _some_key(self) -> PartnerSettings:
        if not self.keys and self.jwks_url is None:
            raise ValueError("keys: at least one key, or a jwks_url")
        return self


class RoutingEntry(_Strict):
    identifier: str = Field(min_length=1, max_length=32)
    partner: str


class BusinessDaySettings(_Strict):
    zone: str = "Asia/Seoul"
    cancel_cutoff: str = Field(default="24:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")


class WebhookSettings(_Strict):
    horizon_s: float = Field(default=86400.0, gt=0, description="Give up (dead-letter) this long after the first try")
    base_delay_s: float = Field(default=1.0, gt=0, description="First retry delay; doubles per attempt, full jitter")
    max_delay_s: float = Field(default=300.0, gt=0, description="Cap of one retry delay")
    concurrency: int = Field(default=16, ge=1, description="Events delivered at once per process")
    timeout_s: float = Field(default=10.0, gt=0, description="One POST to a partner")


class PaymentSettings(_Strict):
    """Retry/inquiry budget of partner calls (docs/payments.md)."""

    call_attempts: int = Field(default=3, ge=1, le=10)
    backoff_base_s: float = Field(default=0.2, gt=0)
    backoff_cap_s: float = Field(default=2.0, gt=0)
    inquiry_intervals_s: list[float] = Field(default=[1.0, 2.0, 5.0, 10.0, 30.0, 60.0], min_length=1)
    retry_cap_s: float = Field(default=60.0, gt=0)
    lease_s: float = Field(default=30.0, gt=0, description="A driver's hold on a payment")
    recovery_interval_s: float = Field(default=0.5, gt=0)


class LoggingSettings(_Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "json", "console"] = "auto"


class OperatorSettings(_Strict):
    """One person (or script) allowed on the admin API; the token itself is never stored."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")
    role: Literal["viewer", "operator", "admin"]
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the bearer token")


class AdminSettings(_Strict):
    """The operator listener (``/metrics``, the admin API, the console): never the partner port."""

    enabled: bool = Field(default=False, description="Off unless configured")
    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=0, le=65535)
    operators: list[OperatorSettings] = Field(default_factory=list)
    session_ttl_s: int = Field(default=8 * 3600, ge=60, description="Console login cookie lifetime")

    @model_validator(mode="after")
    def _distinct_operators(self) -> AdminSettings:
        for what in ("name", "token_sha256"):
            seen = [getattr(o, what) for o in self.operators]
            if len(set(seen)) != len(seen):
                raise ValueError(f"admin.operators: two operators share a {what}")
        return self


class TracingSettings(_Strict):
    """OpenTelemetry tracing: off by default; on, spans go to an OTLP/HTTP collector."""

    enabled: bool = False
    otlp_endpoint: str | None = Field(default=None, description="e.g. http://127.0.0.1:4318/v1/traces")
    service_name: str = Field(default="qrgw", min_length=1)
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0, description="Of root traces; callers' choice kept")


class FeeRate(_Strict):
    """One role's fee: ``bps`` of the item's amount (its own currency) plus ``fixed`` minor units."""

    bps: int = Field(default=0, ge=0, le=10000)
    fixed: int = Field(default=0, ge=0)


class PartnerFees(_Strict):
    wallet: FeeRate = Field(default_factory=FeeRate)
    acquirer: FeeRate = Field(default_factory=FeeRate)


class SettlementSettings(_Strict):
    """PROTOCOL.md §9.1 windows and fees (docs/settlement.md)."""

    cutoff: str = Field(default="24:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$",
                        description="Local time (business_day.zone) closing the window of a business day")
    auto_close: bool = Field(default=True, description="Close due windows from the server (one process, a lease)")
    check_interval_s: float = Field(default=30.0, gt=0, description="How often a server looks for a due window")
    show_fx_margin: bool = Field(default=False, description="Partner reports show the mid rate and FX margin")
    fees: dict[str, PartnerFees] = Field(default_factory=dict, description="Per partner id, per role")


class Settings(BaseSettings):
    """The whole configuration; see ``config/gateway.toml`` for every key with a comment."""

    model_config = SettingsConfigDict(
        env_prefix="QRGW_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    server: ServerSettings = Field(default_factory=ServerSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    partners: list[PartnerSettings] = Field(default_factory=list)
    routing: list[RoutingEntry] = Field(default_factory=list)
    routing_policy: RoutingPolicySettings = Field(default_factory=RoutingPolicySettings)
    fx: FXSettings = Field(default_factory=FXSettings)
    business_day: BusinessDaySettings = Field(default_factory=BusinessDaySettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    payments: PaymentSettings = Field(default_factory=PaymentSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    settlement: SettlementSettings = Field(default_factory=SettlementSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats files: operators override one key without editing the file.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        ids = [p.id for p in self.partners]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"partners: duplicate id {sorted(dup)[0]!r}")
        by_id = {p.id: p for p in self.partners}
        keyids = [k.keyid for p in self.partners for k in p.keys] + [k.keyid for k in self.gateway.keys]
        dupk = {k for k in keyids if keyids.count(k) > 1}
        if dupk:
            raise ValueError(f"keys: key id {sorted(dupk)[0]!r} is used twice")
        for i, r in enumerate(self.routing):
            partner = by_id.get(r.partner)
            if partner is None:
                raise ValueError(f"routing[{i}].partner: unknown partner {r.partner!r}")
            if "acquirer" not in partner.roles:
                raise ValueError(f"routing[{i}].partner: {r.partner!r} has no acquirer role")
        for i, w in enumerate(self.routing_policy.wallets):
            for pid in (w.wallet, *w.exclude):
                if pid not in by_id:
                    raise ValueError(f"routing_policy.wallets[{i}]: unknown partner {pid!r}")
        if self.admin.enabled and (self.admin.host, self.admin.port) == (self.server.host, self.server.port):
            raise ValueError("admin.port: the operator listener must not share the partner port")
        idents = [r.identifier for r in self.routing]
        dupi = {i for i in idents if idents.count(i) > 1}
        if dupi:
            raise ValueError(f"routing: identifier {sorted(dupi)[0]!r} is routed twice")
        unknown = sorted(set(self.settlement.fees) - set(by_id)) if self.partners else []
        if unknown:
            raise ValueError(f"settlement.fees: unknown partner {unknown[0]!r}")
        return self

    def partner(self, partner_id: str) -> PartnerSettings | None:
        return next((p for p in self.partners if p.id == partner_id), None)


# --- loading -------------------------------------------------------------------------------------
def _resolve_paths(node: Any, base: Path) -> Any:
    """Make relative paths of PATH_KEYS absolute against ``base`` (the naming file's folder)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            if k in PATH_KEYS and isinstance(v, str) and v and not os.path.isabs(v):
                out[k] = str((base / v).resolve())
            else:
                out[k] = _resolve_paths(v, base)
        return out
    if isinstance(node, list):
        return [_resolve_paths(v, base) for v in node]
    return node


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    return _resolve_paths(raw, path.resolve().parent)  # type: ignore[no-any-return]


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_settings(path: Path | str | None = None, **overrides: Any) -> Settings:
    """Defaults, then ``path`` layered over them, then ``overrides`` (tests), then QRGW_* env."""
    data = read_toml(DEFAULTS_FILE)
    source = DEFAULTS_FILE
    if path is not None:
        source = Path(path)
        data = _merge(data, read_toml(source))
    if overrides:
        data = _merge(data, overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = _loc(tuple(err["loc"])) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{source}: {where}: {msg}{more}") from None
