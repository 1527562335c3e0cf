"""FX configuration: the ``[fx]`` section of ``config/gateway.toml`` (every key commented there).

Rates, spreads, rounding and the dated policy rule sets are data: a new rate source, pair
spread or legal limit is a change of configuration, not of code. Amounts here are decimal
strings in major units (``"5000"`` USD); floats are refused so that nothing is binary-rounded.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Decimal,
    InvalidOperation,
)
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "ROUNDING",
    "FXSettings",
    "JurisdictionSettings",
    "PairSettings",
    "PolicyRuleSet",
    "PolicySettings",
    "RateSourceSettings",
    "RegistrySettings",
    "Rounding",
    "ScreeningSettings",
    "parse_decimal",
    "parse_pair",
]

Rounding = Literal["half_up", "half_even", "half_down", "up", "down", "ceiling", "floor"]
ROUNDING: dict[str, str] = {
    "half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN, "half_down": ROUND_HALF_DOWN,
    "up": ROUND_UP, "down": ROUND_DOWN, "ceiling": ROUND_CEILING, "floor": ROUND_FLOOR,
}
_PAIR = re.compile(r"^([A-Z]{3})/([A-Z]{3})$")


def parse_pair(key: str) -> tuple[str, str]:
    """``"USD/KRW"`` → ``("USD", "KRW")``; ValueError otherwise."""
    m = _PAIR.match(key)
    if m is None or m.group(1) == m.group(2):
        raise ValueError(f"pair {key!r} must be BASE/QUOTE, two different ISO 4217 codes")
    return m.group(1), m.group(2)


def parse_decimal(value: Any, what: str, *, positive: bool = True) -> Decimal:
    """A decimal string (or int) → Decimal; floats refused (they are already rounded)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(f"{what}: write decimals as strings (\"1385.20\"), not {type(value).__name__}")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int | str):
        try:
            d = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"{what}: {value!r} is not a decimal") from None
    else:
        raise ValueError(f"{what}: {value!r} is not a decimal")
    if not d.is_finite() or (positive and d <= 0) or d < 0:
        raise ValueError(f"{what}: {value!r} must be a finite {'positive' if positive else 'non-negative'} decimal")
    return d


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PairSettings(_Strict):
    """Per ``MERCHANT/PAYER`` currency pair: the spread and the rounding of the payer amount."""

    spread_bps: int | None = Field(default=None, ge=0, le=5000)
    rounding: Rounding | None = None


class RateSourceSettings(_Strict):
    source: Literal["static", "http"] = "static"
    table_file: Path | None = Field(default=None, description="TOML file with a [rates] table")
    table: dict[str, str] = Field(default_factory=dict, description="Inline mid rates, over table_file")
    url: str | None = Field(default=None, description="JSON endpoint for source = http")
    max_age_s: int = Field(default=900, ge=1, description="Refuse to quote from an older table")
    poll_s: int = Field(default=60, ge=1)
    timeout_s: float = Field(default=5.0, gt=0)

    @field_validator("table")
    @classmethod
    def _table(cls, v: dict[str, Any]) -> dict[str, str]:
        for k, r in v.items():
            parse_pair(k)
            parse_decimal(r, f"rate {k}")
        return {k: str(r) for k, r in v.items()}

    @model_validator(mode="after")
    def _http(self) -> RateSourceSettings:
        if self.source == "http" and not (self.url and re.match(r"^https?://[^/\s]+", self.url)):
            raise ValueError("fx.rates.url: an http(s) URL is required when source = \"http\"")
        return self


RULE_VALUES = (
    "resident_per_payment_usd", "resident_annual_usd", "prepaid_ceiling_krw", "nonresident_daily_usd",
    "cdd_usd", "travel_rule_usd", "report_usd",
)
TRAVEL_FIELDS = frozenset({"name", "account", "address", "date_of_birth", "national_id_hash"})


class PolicyRuleSet(_Strict):
    """Values in force from ``effective_from`` (a date in the policy zone) until the next set.

    A set names only what changes: unset values are inherited from the set before it.
    USD amounts are major units, compared with the payment's USD equivalent. ``sources`` gives
    the legal source of each value it sets; ``assumed`` names the values not verified against
    the official text (shown as such by ``qrgw fx policy`` and ``GET /v1/limits``).
    """

    effective_from: date
    note: str | None = None
    resident_per_payment_usd: Decimal | None = None  # resident paying abroad, one payment
    resident_annual_usd: Decimal | None = None  # resident paying abroad, calendar year, per payer
    prepaid_ceiling_krw: Decimal | None = None  # a KRW prepaid-balance payment, one payment
    nonresident_daily_usd: Decimal | None = None  # non-resident paying a Korean merchant, per day
    cdd_usd: Decimal | None = None  # flag cdd_required at or above
    travel_rule_usd: Decimal | None = None  # flag travel_rule above; payer name then required
    report_usd: Decimal | None = None  # flag report above
    # above each threshold (USD, major units) the payer fields required; "a|b" = one of them
    travel_rule_fields: dict[str, list[str]] | None = None
    sources: dict[str, str] = Field(default_factory=dict)
    assumed: list[str] = Field(default_factory=list)

    @field_validator(*RULE_VALUES, mode="before")
    @classmethod
    def _dec(cls, v: Any) -> Decimal | None:
        return None if v is None else parse_decimal(v, "amount")

    @field_validator("travel_rule_fields")
    @classmethod
    def _travel(cls, v: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        for threshold, names in (v or {}).items():
            parse_decimal(threshold, "travel_rule_fields threshold")
            for alt in names:
                unknown = set(alt.split("|")) - TRAVEL_FIELDS
                if unknown:
                    raise ValueError(f"travel_rule_fields: unknown payer field(s) {sorted(unknown)}")
        return v

    @model_validator(mode="after")
    def _named(self) -> PolicyRuleSet:
        known = set(RULE_VALUES) | {"travel_rule_fields"}
        for name in [*self.sources, *self.assumed]:
            if name not in known:
                raise ValueError(f"sources/assumed name {name!r}: not a rule value")
        return self


def _sorted_sets(v: list[PolicyRuleSet]) -> list[PolicyRuleSet]:
    days = [r.effective_from for r in v]
    if len(set(days)) != len(days):
        raise ValueError("two rule sets share one effective_from date")
    return sorted(v, key=lambda r: r.effective_from)


class JurisdictionSettings(_Strict):
    """Another country's rules, applied beside the home country's (``[[fx.policy.jurisdictions]]``).

    ``covers``: ``residents`` — payers with residency ``resident`` and this ``country``;
    ``wallet_payers`` — every payer of a wallet whose home country is ``country``. Its
    "resident" values then apply to such payers paying a merchant outside ``country``.
    """

    country: str = Field(pattern=r"^[A-Z]{2}$")
    zone: str
    covers: Literal["residents", "wallet_payers"] = "residents"
    rules: list[PolicyRuleSet] = Field(default_factory=list)

    @field_validator("rules")
    @classmethod
    def _dates(cls, v: list[PolicyRuleSet]) -> list[PolicyRuleSet]:
        return _sorted_sets(v)


class RegistrySettings(_Strict):
    """The national limit registry (ORIS-style) that sees every channel's payments (docs/fx.md)."""

    enabled: bool = False
    name: str = "ORIS"
    url: str | None = None
    timeout_s: float = Field(default=2.0, gt=0, le=30)
    fallback: Literal["refuse", "count_locally"] = "refuse"
    flush_interval_s: float = Field(default=30.0, gt=0, description="count_locally: resend queued reports this often")

    @model_validator(mode="after")
    def _url(self) -> RegistrySettings:
        if self.enabled and not (self.url and re.match(r"^https?://[^/\s]+", self.url)):
            raise ValueError("fx.policy.registry.url: an http(s) URL is required when enabled")
        return self


class PolicySettings(_Strict):
    enabled: bool = True
    zone: str = Field(default="Asia/Seoul", description="Days and years of the counters, in this zone")
    home_country: str = Field(default="KR", pattern=r"^[A-Z]{2}$")
    rules: list[PolicyRuleSet] = Field(default_factory=list)
    jurisdictions: list[JurisdictionSettings] = Field(default_factory=list)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)

    @field_validator("rules")
    @classmethod
    def _dates(cls, v: list[PolicyRuleSet]) -> list[PolicyRuleSet]:
        return _sorted_sets(v)

    @model_validator(mode="after")
    def _distinct(self) -> PolicySettings:
        countries = [self.home_country, *(j.country for j in self.jurisdictions)]
        if len(set(countries)) != len(countries):
            raise ValueError("fx.policy: one jurisdiction per country (the home country included)")
        return self


class ScreeningSettings(_Strict):
    """Screening of payer and merchant before the debit (docs/fx.md): off unless a list is given."""

    enabled: bool = False
    list_file: Path | None = Field(default=None, description="TOML file with [[entries]] (name, country, action)")
    review_countries: list[str] = Field(default_factory=list, description="Any party here: hold for review")

    @model_validator(mode="after")
    def _file(self) -> ScreeningSettings:
        if self.enabled and self.list_file is None:
            raise ValueError("fx.screening.list_file is required when screening is enabled")
        return self


class FXSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pivot: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    quote_ttl_s: int = Field(default=60, ge=1, le=3600)
    quote_grace_s: int = Field(default=600, ge=0, description="Expired quotes kept to answer QUOTE_EXPIRED")
    default_spread_bps: int = Field(default=50, ge=0, le=5000)
    default_rounding: Rounding = "half_up"
    rate_digits: int = Field(default=12, ge=6, le=28, description="Significant digits of published rates")
    pairs: dict[str, PairSettings] = Field(default_factory=dict, description="Keyed MERCHANT/PAYER")
    rates: RateSourceSettings = Field(default_factory=RateSourceSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    screening: ScreeningSettings = Field(default_factory=ScreeningSettings)

    @field_validator("pairs")
    @classmethod
    def _pairs(cls, v: dict[str, PairSettings]) -> dict[str, PairSettings]:
        for k in v:
            parse_pair(k)
        return v

    def pair(self, merchant: str, payer: str) -> tuple[int, str]:
        """(spread in bps, rounding name) for paying ``merchant`` currency with ``payer`` currency."""
        p = self.pairs.get(f"{merchant}/{payer}")
        default_spread = 0 if merchant == payer else self.default_spread_bps
        spread = p.spread_bps if p is not None and p.spread_bps is not None else default_spread
        rounding = p.rounding if p is not None and p.rounding is not None else self.default_rounding
        return spread, rounding
