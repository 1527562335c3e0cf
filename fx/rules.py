"""Dated rule sets per jurisdiction: which values are in force on a date, and where they come from.

A jurisdiction (``[fx.policy]`` for the home country, ``[[fx.policy.jurisdictions]]`` for the
others) has its own zone, its own dated sets and its own reading of whom it covers. The set in
force is the latest whose ``effective_from`` is on or before the date; a set inherits what it
does not name, with that value's source and its confirmed/assumed mark.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fx.settings import RULE_VALUES, PolicyRuleSet, PolicySettings
from schemas.errors import ConfigError
from schemas.payment import Payer

__all__ = ["LABELS", "LIMITS", "Jurisdiction", "Kind", "PolicyRules", "jurisdictions_of"]

Kind = Literal["outbound", "inbound"]

LABELS: dict[str, str] = {
    "resident_per_payment_usd": "resident paying abroad, per payment (USD)",
    "resident_annual_usd": "resident paying abroad, per calendar year (USD)",
    "prepaid_ceiling_krw": "prepaid balance, per payment (KRW)",
    "nonresident_daily_usd": "non-resident paying a local merchant, per day (USD)",
    "cdd_usd": "flag cdd_required at or above (USD)",
    "travel_rule_usd": "flag travel_rule above (USD)",
    "report_usd": "flag report above (USD)",
}
# the values that are limits (what GET /v1/limits lists): name -> (kind, window, currency)
LIMITS: dict[str, tuple[Kind, str, str]] = {
    "resident_per_payment_usd": ("outbound", "payment", "USD"),
    "prepaid_ceiling_krw": ("outbound", "payment", "KRW"),
    "resident_annual_usd": ("outbound", "year", "USD"),
    "nonresident_daily_usd": ("inbound", "day", "USD"),
}


@dataclass(frozen=True)
class PolicyRules:
    """The values in force on one date (inherited across sets); None = no such limit.

    ``in_force`` is False before the jurisdiction's first set (then nothing applies)."""

    effective_from: date
    in_force: bool = True
    country: str = ""
    first_set: date | None = None
    notes: tuple[str, ...] = ()
    resident_per_payment_usd: Decimal | None = None
    resident_annual_usd: Decimal | None = None
    prepaid_ceiling_krw: Decimal | None = None
    nonresident_daily_usd: Decimal | None = None
    cdd_usd: Decimal | None = None
    travel_rule_usd: Decimal | None = None
    report_usd: Decimal | None = None
    travel_rule_fields: dict[str, list[str]] | None = None
    sources: dict[str, str] = field(default_factory=dict)
    assumed: frozenset[str] = frozenset()

    def source(self, name: str) -> tuple[str, bool]:
        """(legal source, confirmed) of one value."""
        return self.sources.get(name, "no source recorded"), name in self.sources and name not in self.assumed

    def describe(self) -> list[str]:
        if not self.in_force:
            first = self.first_set.isoformat() if self.first_set else "never (no rule set configured)"
            return [f"{self.country}: no rule set in force yet; the first takes effect on {first}"]
        out = [f"{self.country}: rules in force since {self.effective_from.isoformat()}"]
        out += [f"  ({n})" for n in self.notes]
        for name, label in LABELS.items():
            v = getattr(self, name)
            if v is None:
                out.append(f"  {label:<58} -")
                continue
            src, confirmed = self.source(name)
            out.append(f"  {label:<58} {v:,}{'' if confirmed else '  [ASSUMED]'}")
            out.append(f"      source: {src}")
        for threshold, names in sorted((self.travel_rule_fields or {}).items(), key=lambda kv: Decimal(kv[0])):
            mark = "" if self.source("travel_rule_fields")[1] else "  [ASSUMED]"
            out.append(f"  travel-rule data above USD {Decimal(threshold):,}: {', '.join(names)}{mark}")
        if self.travel_rule_fields:
            out.append(f"      source: {self.source('travel_rule_fields')[0]}")
        return out


def _merge(country: str, sets: list[PolicyRuleSet], at: date) -> PolicyRules:
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    assumed: set[str] = set()
    notes: list[str] = []
    start: date | None = None
    for rs in sets:  # sorted by effective_from
        if rs.effective_from > at:
            break
        start = rs.effective_from
        notes += [rs.note] if rs.note else []
        for name in (*RULE_VALUES, "travel_rule_fields"):
            v = getattr(rs, name)
            if v is None:
                continue
            values[name] = v
            # a value restated without a source keeps no stale one; its mark is the set's
            sources.pop(name, None)
            if name in rs.sources:
                sources[name] = rs.sources[name]
            assumed.discard(name)
            if name in rs.assumed:
                assumed.add(name)
    first = sets[0].effective_from if sets else None
    if start is None:
        return PolicyRules(effective_from=date.min, in_force=False, country=country, first_set=first)
    return PolicyRules(effective_from=start, country=country, first_set=first, notes=tuple(notes),
                       sources=sources, assumed=frozenset(assumed), **values)


@dataclass(frozen=True)
class Jurisdiction:
    country: str
    zone: ZoneInfo
    covers: Literal["residents", "wallet_payers"]
    sets: tuple[PolicyRuleSet, ...]

    def rules_at(self, at: date) -> PolicyRules:
        return _merge(self.country, list(self.sets), at)

    def kind(self, payer: Payer, merchant_country: str, wallet_country: str | None) -> Kind | None:
        """``outbound``: a covered payer paying a merchant abroad; ``inbound``: anyone else paying
        a local merchant; None: the payment is not this jurisdiction's business."""
        if self.covers == "residents":
            covered = payer.residency == "resident" and payer.country == self.country
        else:
            covered = wallet_country == self.country
        if covered and merchant_country != self.country:
            return "outbound"
        if not covered and merchant_country == self.country:
            return "inbound"
        return None


def _zone(name: str, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"{where}: unknown time zone {name!r}") from exc


def jurisdictions_of(cfg: PolicySettings, zone: str | None = None) -> tuple[Jurisdiction, ...]:
    """The home jurisdiction first (``zone`` overrides its zone), then the others in config order."""
    home = Jurisdiction(cfg.home_country, _zone(zone or cfg.zone, "fx.policy.zone"), "residents", tuple(cfg.rules))
    others = [
        Jurisdiction(j.country, _zone(j.zone, f"fx.policy.jurisdictions[{j.country}].zone"), j.covers, tuple(j.rules))
        for j in cfg.jurisdictions
    ]
    return (home, *others)

