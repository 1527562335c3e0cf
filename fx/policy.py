"""Korea's FX rules as dated data (PROTOCOL.md §7), checked before any money moves.

Which rules apply (``home_country`` KR by default):

* a *resident* payer (residency ``resident``, country KR) paying a merchant abroad: the
  per-payment cap and the per-calendar-year cap (USD equivalent), and the prepaid ceiling
  when the payer pays from a KRW balance;
* a non-resident payer paying a Korean merchant: the per-day cap (USD equivalent);
* both: the flags ``travel_rule`` (payer name then required), ``cdd_required``, ``report``;
* anything else (domestic, or neither side Korean): no policy.

The rule set in force is the one whose ``effective_from`` is the latest on or before the
payment's date in the policy zone (Asia/Seoul); days and years of the counters are counted
in that zone too. Counters are reserved atomically through the ``LimitLedger`` port, keyed by
a hash of the payer's country and id, in USD cents.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fx.money import Money
from fx.ports import LimitLedger, LimitRequest
from fx.quotes import convert
from fx.rates import RateProvider
from fx.settings import FXSettings
from schemas.errors import ConfigError, DataRequired, LimitExceeded
from schemas.payment import Payer

__all__ = ["FxPolicy", "PolicyDecision", "PolicyRules", "holder_of"]

USD = "USD"
KRW = "KRW"
Kind = Literal["outbound", "inbound"]


@dataclass(frozen=True)
class PolicyDecision:
    flags: tuple[str, ...]
    usd_equivalent: Money
    reservation: dict[str, Any] | None


LABELS: dict[str, str] = {
    "resident_per_payment_usd": "resident paying abroad, per payment (USD)",
    "resident_annual_usd": "resident paying abroad, per calendar year (USD)",
    "prepaid_ceiling_krw": "prepaid balance, per payment (KRW)",
    "nonresident_daily_usd": "non-resident paying a Korean merchant, per day (USD)",
    "cdd_usd": "flag cdd_required at or above (USD)",
    "travel_rule_usd": "flag travel_rule above, payer name required (USD)",
    "report_usd": "flag report above (USD)",
}


@dataclass(frozen=True)
class PolicyRules:
    """The values in force on one date (inherited across rule sets); None = no such limit."""

    effective_from: date
    notes: tuple[str, ...] = ()
    resident_per_payment_usd: Decimal | None = None
    resident_annual_usd: Decimal | None = None
    prepaid_ceiling_krw: Decimal | None = None
    nonresident_daily_usd: Decimal | None = None
    cdd_usd: Decimal | None = None
    travel_rule_usd: Decimal | None = None
    report_usd: Decimal | None = None

    def describe(self) -> list[str]:
        out = [f"rules in force since {self.effective_from.isoformat()}"]
        out += [f"  ({n})" for n in self.notes]
        for name, label in LABELS.items():
            v = getattr(self, name)
            out.append(f"  {label:<58} {'-' if v is None else f'{v:,}'}")
        return out


def holder_of(payer: Payer) -> str:
    """Counter key of a payer: a hash, so the store never holds payer ids in clear."""
    return hashlib.sha256(f"{payer.country}\x00{payer.id}".encode()).hexdigest()[:32]


def _cents(usd: Decimal) -> int:
    return int(usd.scaleb(2).to_integral_value(rounding=ROUND_HALF_UP))


def _usd(cents: int) -> dict[str, str]:
    return Money(max(0, cents), USD).to_dict()


class FxPolicy:
    def __init__(
        self, settings: FXSettings, ledger: LimitLedger, rates: RateProvider, zone: str | None = None
    ) -> None:
        self.settings = settings
        self.cfg = settings.policy
        self.ledger = ledger
        self.rates = rates
        try:
            self.zone = ZoneInfo(zone or self.cfg.zone)
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"fx.policy.zone: unknown time zone {zone or self.cfg.zone!r}") from exc

    # -- rules ----------------------------------------------------------------------------------
    def rules_at(self, at: date) -> PolicyRules:
        """The rules in force on ``at`` (a date in the policy zone): every set up to it, merged."""
        values: dict[str, Any] = {}
        notes: list[str] = []
        start: date | None = None
        for rs in self.cfg.rules:  # sorted by effective_from
            if rs.effective_from > at:
                break
            start = rs.effective_from
            notes += [rs.note] if rs.note else []
            values.update({k: v for k, v in rs.model_dump().items() if v is not None and k in LABELS})
        if start is None:
            return PolicyRules(effective_from=date.min)
        names = {f.name for f in fields(PolicyRules)}
        return PolicyRules(effective_from=start, notes=tuple(notes), **{k: v for k, v in values.items() if k in names})

    def local_date(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def kind(self, payer: Payer, merchant_country: str) -> Kind | None:
        home = self.cfg.home_country
        resident = payer.residency == "resident" and payer.country == home
        if resident and merchant_country != home:
            return "outbound"
        if not resident and merchant_country == home:
            return "inbound"
        return None

    async def usd_equivalent(self, merchant_amount: Money, payer_amount: Money) -> Money:
        """At the quote's rate when one side is USD, else the merchant amount at the USD mid rate."""
        if merchant_amount.currency == USD:
            return merchant_amount
        if payer_amount.currency == USD:
            return payer_amount
        mid = await self.rates.mid_rate(merchant_amount.currency, USD)
        return convert(merchant_amount, mid, USD, "half_up")

    # -- reserve / release ----------------------------------------------------------------------
    async def reserve(
        self,
        *,
        reservation_id: str,
        payer: Payer,
        merchant_country: str,
        merchant_amount: Money,
        payer_amount: Money,
        at: datetime,
    ) -> PolicyDecision:
        """Check the rules in force at ``at`` and reserve the counters; LimitExceeded / DataRequired."""
        kind = self.kind(payer, merchant_country) if self.cfg.enabled else None
        if kind is None:
            return PolicyDecision((), Money(0, USD), None)
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        local = at.astimezone(self.zone)
        rules = self.rules_at(local.date())
        usd = await self.usd_equivalent(merchant_amount, payer_amount)

        if kind == "outbound":
            cap = rules.resident_per_payment_usd
            if cap is not None and usd.minor > _cents(cap):
                raise LimitExceeded(
                    f"{usd} passes the per-payment cap of USD {cap:,} for a resident paying abroad",
                    limit="resident_per_payment", limit_value=_usd(_cents(cap)), remaining=_usd(_cents(cap)),
                )
            ceiling = rules.prepaid_ceiling_krw
            if ceiling is not None and payer_amount.currency == KRW:
                c = Money.from_decimal(ceiling, KRW)
                if payer_amount > c:
                    raise LimitExceeded(
                        f"{payer_amount} passes the prepaid ceiling of KRW {ceiling:,} per payment",
                        limit="prepaid_ceiling", limit_value=c.to_dict(), remaining=c.to_dict(),
                    )

        flags: list[str] = []
        if rules.travel_rule_usd is not None and usd.minor > _cents(rules.travel_rule_usd):
            flags.append("travel_rule")
            if not (payer.name and payer.name.strip()):
                raise DataRequired(
                    f"payer.name is required above USD {rules.travel_rule_usd:,} (travel rule)", field="payer.name"
                )
        if rules.cdd_usd is not None and usd.minor >= _cents(rules.cdd_usd):
            flags.append("cdd_required")
        if rules.report_usd is not None and usd.minor > _cents(rules.report_usd):
            flags.append("report")

        items: list[LimitRequest] = []
        if kind == "outbound" and rules.resident_annual_usd is not None:
            end = datetime.combine(date(local.year + 1, 1, 1), time(), self.zone)
            items.append(LimitRequest(f"annual:{local.year}", usd.minor, _cents(rules.resident_annual_usd),
                                      self._ttl(at, end)))
        if kind == "inbound" and rules.nonresident_daily_usd is not None:
            end = datetime.combine(local.date() + timedelta(days=1), time(), self.zone)
            items.append(LimitRequest(f"daily:{local.date().isoformat()}", usd.minor,
                                      _cents(rules.nonresident_daily_usd), self._ttl(at, end)))
        if not items:
            return PolicyDecision(tuple(flags), usd, None)

        holder = holder_of(payer)
        res = await self.ledger.reserve_limits(holder, reservation_id, items)
        if not res.ok:
            denied = res.denied if res.denied is not None else items[0]
            used_before = int(res.used.get(denied.counter, 0))
            name = "resident_annual" if denied.counter.startswith("annual:") else "nonresident_daily"
            window = denied.counter.split(":", 1)[1]
            raise LimitExceeded(
                f"{usd} passes the {name.replace('_', ' ')} cap of {Money(denied.cap, USD)} for {window}; "
                f"{Money(max(0, denied.cap - used_before), USD)} remains",
                limit=name, limit_value=_usd(denied.cap), remaining=_usd(denied.cap - used_before), window=window,
            )
        reservation = {
            "reservation_id": reservation_id,
            "holder": holder,
            "amounts": {i.counter: i.amount for i in items},
            "currency": USD,
        }
        return PolicyDecision(tuple(flags), usd, reservation)

    @staticmethod
    def _ttl(at: datetime, window_end: datetime) -> int:
        # a day past the window's end, so a late release still finds its counter
        return max(1, int((window_end - at).total_seconds()) + 86_400)

    async def release(
        self,
        reservation: Mapping[str, Any],
        *,
        fraction: tuple[int, int] | None = None,
        release_id: str | None = None,
    ) -> None:
        """Give counters back: all (``None``) or ``num/den`` of what was reserved (partial refund).

        A fraction rounds down (per counter, in cents): a series of partial refunds may leave a
        few cents counted, never fewer than spent. Releases are idempotent per reservation in the
        store (it never gives back more than the reservation holds).
        """
        holder = str(reservation["holder"])
        rid = str(reservation["reservation_id"])
        if fraction is None or fraction[0] >= fraction[1]:
            await self.ledger.release_limits(holder, rid, None)
            return
        num, den = fraction
        if num <= 0 or den <= 0:
            return
        amounts = {str(c): int(a) * num // den for c, a in dict(reservation.get("amounts", {})).items()}
        await self.ledger.release_limits(holder, rid, amounts, release_id=release_id)
