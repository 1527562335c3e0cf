"""Configuration models of routing (docs/routing.md): what each acquirer serves, the per-wallet
routing policy and the per-partner circuit breaker. ``gateway.config`` embeds them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Coverage(_Strict):
    """``[[partners]] acquires``: merchant countries (QR tag 58, ISO 3166 alpha-2) and transaction
    currencies (tag 53, ISO 4217 alpha-3) this acquirer acquires and settles in. Absent: its own
    ``country`` and ``currency`` only."""

    countries: list[str] = Field(min_length=1)
    currencies: list[str] = Field(min_length=1)

    @classmethod
    def home(cls, country: str, currency: str) -> Coverage:
        return cls(countries=[country], currencies=[currency])


class WalletRule(_Strict):
    """``[[routing_policy.wallets]]``: how one wallet's payments pick among a shared QR's templates."""

    wallet: str
    prefer_own_network: bool = Field(default=False, description="Its own network's template first")
    prefer: list[str] = Field(default_factory=list, description="Identifiers (sub-tag 00) tried first, in order")
    exclude: list[str] = Field(default_factory=list, description="Acquirers never used for this wallet")
    fall_through: bool = Field(
        default=True, description="Paused or circuit-open acquirer: use the next usable template"
    )


class BreakerSettings(_Strict):
    """``[routing_policy.breaker]``: per-partner circuit breaker on consecutive transport failures."""

    failures: int = Field(default=5, ge=1, description="Consecutive unknown outcomes that open the circuit")
    open_s: float = Field(default=30.0, gt=0, description="Open this long, then half-open")
    half_open_probes: int = Field(default=1, ge=1, description="Routes let through at once while half-open")
    probe_timeout_s: float = Field(default=30.0, gt=0, description="A probe with no outcome frees its slot")


class RoutingPolicySettings(_Strict):
    wallets: list[WalletRule] = Field(default_factory=list)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    status_refresh_s: float = Field(default=5.0, gt=0, description="Re-read paused flags from the store")

    def rule(self, wallet: str) -> WalletRule:
        """The wallet's rule; without one, tag order and fall-through."""
        return next((r for r in self.wallets if r.wallet == wallet), None) or WalletRule(wallet=wallet)
