"""The FX policy (PROTOCOL.md §7), checked before any money moves; rules in fx.rules.

For each jurisdiction that has a say (fx.rules.Jurisdiction.kind): the rules in force on the
payment's date in that jurisdiction's zone apply.

* ``outbound`` (a covered payer paying abroad): the per-payment cap, the calendar-year cap (USD
  equivalent), the prepaid ceiling when the payer pays from a KRW balance;
* ``inbound`` (anyone else paying a local merchant): the per-day cap (USD equivalent);
* both: flags ``travel_rule`` (with the payer fields its thresholds require), ``cdd_required``,
  ``report``.

Counters are reserved atomically, all jurisdictions at once, through the ``LimitLedger`` port,
keyed by the payer's holder (fx.identity: wallet + payer id, or national id), in USD cents,
named ``<country>:annual:<year>`` / ``<country>:daily:<date>``. The home country's annual cap
is also checked with, and reported to, the national registry when one is configured (fx.registry).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fx.identity import binding_key, holder_of
from fx.money import Money
from fx.ports import LimitRequest, PolicyStore
from fx.quotes import convert
from fx.rates import RateProvider
from fx.registry import PENDING_FLAG, RegistryGuard
from fx.rules import Jurisdiction, Kind, PolicyRules, jurisdictions_of
from fx.settings import FXSettings
from fx.travel import check_travel_data, required_fields
from schemas.errors import LimitExceeded
from schemas.payment import Payer

__all__ = ["FxPolicy", "PolicyDecision", "PolicyRules", "holder_of"]

USD = "USD"
KRW = "KRW"
BINDING_TTL_S = 400 * 86_400  # a calendar year and a margin: as long as an annual counter


@dataclass(frozen=True)
class PolicyDecision:
    flags: tuple[str, ...]
    usd_equivalent: Money
    reservation: dict[str, Any] | None


def _cents(usd: Decimal) -> int:
    return int(usd.scaleb(2).to_integral_value(rounding=ROUND_HALF_UP))


def _usd(cents: int) -> dict[str, str]:
    return Money(max(0, cents), USD).to_dict()


def window_end(kind: str, local: datetime, j: Jurisdiction) -> datetime:
    """End of the counter window containing ``local`` (a time in ``j``'s zone)."""
    if kind == "year":
        return datetime.combine(date(local.year + 1, 1, 1), time(), j.zone)
    return datetime.combine(local.date() + timedelta(days=1), time(), j.zone)


def counter_name(j: Jurisdiction, kind: str, local: datetime) -> str:
    window = str(local.year) if kind == "year" else local.date().isoformat()
    return f"{j.country}:{'annual' if kind == 'year' else 'daily'}:{window}"


class FxPolicy:
    def __init__(
        self,
        settings: FXSettings,
        ledger: PolicyStore,
        rates: RateProvider,
        zone: str | None = None,
        registry: RegistryGuard | None = None,
    ) -> None:
        self.settings = settings
        self.cfg = settings.policy
        self.ledger = ledger
        self.rates = rates
        self.jurisdictions = jurisdictions_of(self.cfg, zone)
        self.home = self.jurisdictions[0]
        self.zone = self.home.zone
        self.registry = registry

    # -- rules (home jurisdiction; others through self.jurisdictions) ----------------------------
    def rules_at(self, at: date) -> PolicyRules:
        return self.home.rules_at(at)

    def local_date(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def kind(self, payer: Payer, merchant_country: str, wallet_country: str | None = None) -> Kind | None:
        return self.home.kind(payer, merchant_country, wallet_country)

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
        wallet: str,
        merchant_country: str,
        merchant_amount: Money,
        payer_amount: Money,
        at: datetime,
        wallet_country: str | None = None,
    ) -> PolicyDecision:
        """Check the rules in force at ``at`` and reserve the counters; LimitExceeded / DataRequired
        / RegistryUnavailable. ``wallet`` (partner id) scopes the payer id."""
        if not self.cfg.enabled:
            return PolicyDecision((), Money(0, USD), None)
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        applying: list[tuple[Jurisdiction, Kind, datetime, PolicyRules]] = []
        for j in self.jurisdictions:
            k = j.kind(payer, merchant_country, wallet_country)
            local = at.astimezone(j.zone)
            rules = j.rules_at(local.date()) if k is not None else None
            if k is not None and rules is not None and rules.in_force:
                applying.append((j, k, local, rules))
        if not applying:
            return PolicyDecision((), Money(0, USD), None)
        usd = await self.usd_equivalent(merchant_amount, payer_amount)
        usd_dec = usd.to_decimal()

        flags: list[str] = []
        required: list[str] = []
        items: list[LimitRequest] = []
        registry_year: int | None = None
        for j, k, local, rules in applying:
            if k == "outbound":
                self._per_payment(j, rules, usd, payer_amount)
            if rules.travel_rule_usd is not None and usd.minor > _cents(rules.travel_rule_usd):
                flags.append("travel_rule")
                required += [f for f in (required_fields(rules.travel_rule_fields, usd_dec) or ["name"])
                             if f not in required]
            if rules.cdd_usd is not None and usd.minor >= _cents(rules.cdd_usd):
                flags.append("cdd_required")
            if rules.report_usd is not None and usd.minor > _cents(rules.report_usd):
                flags.append("report")
            cap, window = ((rules.resident_annual_usd, "year") if k == "outbound"
                           else (rules.nonresident_daily_usd, "day"))
            if cap is not None:
                ttl = max(1, int((window_end(window, local, j) - at).total_seconds()) + 86_400)
                items.append(LimitRequest(counter_name(j, window, local), usd.minor, _cents(cap), ttl))
                if j is self.home and window == "year" and self.registry is not None:
                    registry_year = local.year
        flags = list(dict.fromkeys(flags))  # one flag however many jurisdictions raise it
        if required:
            check_travel_data(payer, required)

        holder = holder_of(payer, wallet)
        reservation: dict[str, Any] = {
            "reservation_id": reservation_id, "holder": holder, "amounts": {i.counter: i.amount for i in items},
            "currency": USD, "usd_equivalent": usd.to_dict(),
        }
        if required:
            reservation["travel_rule"] = required  # the fields required; their values are on the payer
        if not items:
            return PolicyDecision(tuple(flags), usd, reservation if required else None)
        person = payer.national_id_hash or holder
        answered = True
        if registry_year is not None and self.registry is not None:
            answered = await self.registry.check(person, registry_year, usd)
        await self._reserve_local(holder, reservation_id, items, usd)
        told = False  # the registry holds (or the queue will send) this payment's report
        try:  # from here a failure must give back what was just counted, here and at the registry
            if registry_year is not None and self.registry is not None:
                if answered:
                    answered = await self.registry.report(person, reservation_id, registry_year, usd)
                else:
                    self.registry.queue(person, reservation_id, registry_year, usd)
                told = True
                reservation["registry"] = {"person": person, "year": registry_year, "amount": usd.minor,
                                           "reported": answered}
                if not answered:
                    flags.append(PENDING_FLAG)
            if payer.national_id_hash:  # once accepted: GET /v1/limits of this wallet's payer id reads the person
                bound = json.dumps({"holder": holder, "person": payer.national_id_hash}).encode()
                await self.ledger.put_blob(binding_key(wallet, payer.id), bound, BINDING_TTL_S)
        except BaseException:
            await self.ledger.release_limits(holder, reservation_id, None)
            if told and self.registry is not None:
                await self.registry.release(person, reservation_id, None)  # or drops the queued report
            raise
        return PolicyDecision(tuple(flags), usd, reservation)

    def _per_payment(self, j: Jurisdiction, rules: PolicyRules, usd: Money, payer_amount: Money) -> None:
        cap = rules.resident_per_payment_usd
        if cap is not None and usd.minor > _cents(cap):
            raise LimitExceeded(
                f"{usd} passes the per-payment cap of USD {cap:,} for a resident paying abroad ({j.country})",
                limit="resident_per_payment", limit_value=_usd(_cents(cap)), remaining=_usd(_cents(cap)),
                jurisdiction=j.country,
            )
        ceiling = rules.prepaid_ceiling_krw
        if ceiling is not None and payer_amount.currency == KRW:
            c = Money.from_decimal(ceiling, KRW)
            if payer_amount > c:
                raise LimitExceeded(
                    f"{payer_amount} passes the prepaid ceiling of KRW {ceiling:,} per payment",
                    limit="prepaid_ceiling", limit_value=c.to_dict(), remaining=c.to_dict(), jurisdiction=j.country,
                )

    async def _reserve_local(self, holder: str, reservation_id: str, items: list[LimitRequest], usd: Money) -> None:
        res = await self.ledger.reserve_limits(holder, reservation_id, items)
        if res.ok:
            return
        denied = res.denied if res.denied is not None else items[0]
        used_before = int(res.used.get(denied.counter, 0))
        country, what, window = denied.counter.split(":", 2)
        name = "resident_annual" if what == "annual" else "nonresident_daily"
        # the counters named here are this payer's own (holder = wallet + id, or one person)
        raise LimitExceeded(
            f"{usd} passes the {name.replace('_', ' ')} cap of {Money(denied.cap, USD)} for {window}; "
            f"{Money(max(0, denied.cap - used_before), USD)} remains",
            limit=name, limit_value=_usd(denied.cap), remaining=_usd(denied.cap - used_before), window=window,
            jurisdiction=country,
        )

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
        store (it never gives back more than the reservation holds). The registry is told too.
        """
        holder = str(reservation["holder"])
        rid = str(reservation["reservation_id"])
        reg = reservation.get("registry")
        full = fraction is None or fraction[0] >= fraction[1]
        if full:
            await self.ledger.release_limits(holder, rid, None)
        else:
            assert fraction is not None
            num, den = fraction
            if num <= 0 or den <= 0:
                return
            amounts = {str(c): int(a) * num // den for c, a in dict(reservation.get("amounts", {})).items()}
            await self.ledger.release_limits(holder, rid, amounts, release_id=release_id)
        if isinstance(reg, Mapping) and self.registry is not None:
            part = None if full or fraction is None else int(reg["amount"]) * fraction[0] // fraction[1]
            await self.registry.release(str(reg["person"]), rid, part)
