"""Routing (PROTOCOL.md §1, docs/routing.md): a merchant QR and a payer wallet -> the acquirer.

Every merchant account template (26-51) of an EMVCo code is a candidate, named by its sub-tag 00;
an Alipay+ MPM code (its own format, no templates) has the candidates ``alipayplus:<domain, lower
case>``, ``alipayplus`` and ``com.alipay``. A candidate is usable when its identifier is routed
(``[[routing]]``), its acquirer acquires in the code's country (tag 58) and currency (tag 53)
(``[[partners]] acquires``), the wallet's policy does not exclude it, it is not paused and its
circuit is not open. The first usable candidate in policy order (tag order when no rule applies)
is chosen; none: ``QR_NO_ROUTE`` naming, per candidate, why not. Checked before any side effect.

Domestic or cross-border is the merchant's country and currency against the payer wallet's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.breaker import CircuitBreaker
from gateway.config import Settings
from gateway.partner_status import PartnerStatus, StaticStatus
from gateway.routing_settings import RoutingPolicySettings
from schemas.errors import NoRoute, PartnerPaused
from schemas.payment import Route
from schemas.qr import AlipayPlusQR, MerchantQR

ALIPAYPLUS_IDENTIFIERS = ("alipayplus", "com.alipay")
# Why a candidate was or was not chosen (the ``reason`` of each candidate; docs/routing.md).
REASONS: dict[str, str] = {
    "chosen": "chosen",
    "usable": "usable, but a candidate before it was chosen",
    "not_routed": "this identifier is not routed here",
    "country_not_acquired": "the acquirer does not acquire merchants of this country",
    "currency_not_acquired": "the acquirer does not acquire in this currency",
    "excluded": "this wallet's routing policy excludes the acquirer",
    "paused": "the acquirer is paused",
    "circuit_open": "the acquirer's circuit is open (consecutive transport failures)",
    "no_fall_through": "this wallet's policy does not fall through past a paused or open acquirer",
}


@dataclass(frozen=True, slots=True)
class PartnerInfo:
    """What routing knows of a partner: home country and currency, and what it acquires in."""

    country: str
    currency: str
    countries: frozenset[str] = frozenset()  # empty: its home country only
    currencies: frozenset[str] = frozenset()

    def acquires_country(self, country: str) -> bool:
        return country in (self.countries or {self.country})

    def acquires_currency(self, currency: str) -> bool:
        return currency in (self.currencies or {self.currency})


@dataclass(frozen=True, slots=True)
class Candidate:
    identifier: str
    tag: str | None  # the template's tag (None for an Alipay+ MPM code)
    acquirer: str | None  # None when the identifier is not routed
    reason: str  # a key of REASONS

    def to_json(self) -> dict[str, Any]:
        return {"identifier": self.identifier, "tag": self.tag, "acquirer": self.acquirer,
                "chosen": self.reason == "chosen", "reason": self.reason, "detail": REASONS[self.reason]}


@dataclass(frozen=True, slots=True)
class Decision:
    route: Route | None
    candidates: list[Candidate]
    country: str  # the merchant's, as routing checked it
    currency: str

    def to_json(self) -> list[dict[str, Any]]:
        return [c.to_json() for c in self.candidates]

    def no_route(self) -> NoRoute:
        if not self.candidates:
            why = "it has no merchant account template"
        else:
            why = "; ".join(
                f"{c.tag + ' ' if c.tag else ''}{c.identifier}: {REASONS[c.reason]}"
                + (f" ({c.acquirer})" if c.acquirer else "")
                for c in self.candidates
            )
        where = f" ({self.country}, {self.currency})" if self.country else ""  # an Alipay+ code prints neither
        return NoRoute(f"no usable route for this code{where}: {why}", candidates=self.to_json())

    def chosen(self) -> Route:
        if self.route is None:
            raise self.no_route()
        return self.route


class RoutingTable:
    def __init__(
        self,
        entries: Mapping[str, str],
        partners: Mapping[str, PartnerInfo],
        policy: RoutingPolicySettings | None = None,
        status: PartnerStatus | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.entries = dict(entries)
        self.partners = dict(partners)
        self.policy = policy or RoutingPolicySettings()
        self.status: PartnerStatus = status or StaticStatus()
        self.breaker = breaker or CircuitBreaker(self.policy.breaker)

    @classmethod
    def from_settings(
        cls, settings: Settings, status: PartnerStatus | None = None, breaker: CircuitBreaker | None = None
    ) -> RoutingTable:
        partners = {
            p.id: PartnerInfo(p.country, p.currency, frozenset(p.coverage.countries), frozenset(p.coverage.currencies))
            for p in settings.partners
        }
        status = status or StaticStatus(p.id for p in settings.partners if p.paused)
        return cls({r.identifier: r.partner for r in settings.routing}, partners, settings.routing_policy,
                   status, breaker or CircuitBreaker(settings.routing_policy.breaker))

    def candidates(self, qr: MerchantQR | AlipayPlusQR) -> list[tuple[str, str | None]]:
        """``(identifier, tag)`` of every candidate of ``qr`` in tag order (not print order)."""
        if isinstance(qr, AlipayPlusQR):
            return [(f"alipayplus:{qr.domain.lower()}", None), *((i, None) for i in ALIPAYPLUS_IDENTIFIERS)]
        accounts = sorted(qr.templates(), key=lambda a: a.tag)
        return [(a.fields["00"], a.tag) for a in accounts if a.fields is not None and "00" in a.fields]

    def _merchant(self, qr: MerchantQR | AlipayPlusQR, acquirer: str | None) -> tuple[str, str]:
        """The merchant's (country, currency): printed on an EMVCo code; an Alipay+ MPM code's
        merchant is its acquirer's (home country and currency)."""
        if isinstance(qr, MerchantQR):
            return qr.country, qr.currency_alpha or qr.currency
        info = self.partners.get(acquirer or "")
        return (info.country, info.currency) if info is not None else ("", "")

    def _static(self, qr: MerchantQR | AlipayPlusQR, payer: str, acquirer: str) -> str | None:
        """Why the candidate can never work for this code and wallet, or None."""
        info = self.partners.get(acquirer)
        if info is None:
            return "not_routed"
        country, currency = self._merchant(qr, acquirer)
        if not info.acquires_country(country):
            return "country_not_acquired"
        if not info.acquires_currency(currency):
            return "currency_not_acquired"
        if acquirer in self.policy.rule(payer).exclude:
            return "excluded"
        return None

    def evaluate(self, qr: MerchantQR | AlipayPlusQR, payer: str, *, admit: bool = False) -> Decision:
        """Every candidate with its reason, and the route (None when no candidate is usable).

        ``admit``: a payment or quote is about to use the route, so a half-open circuit gives it
        a probe slot; a decode preview (False) takes nothing. A quote or payment of a paused
        wallet (``payer``) is refused with PARTNER_PAUSED before anything else."""
        if admit and self.status.paused(payer):
            raise PartnerPaused(f"partner {payer} is paused by the operator", partner=payer)
        rule = self.policy.rule(payer)
        found = [(ident, tag, self.entries.get(ident)) for ident, tag in self.candidates(qr)]

        def rank(item: tuple[int, tuple[str, str | None, str | None]]) -> tuple[int, int, int]:
            n, (ident, _, acq) = item
            own = 0 if rule.prefer_own_network and acq == payer else 1
            pref = rule.prefer.index(ident) if ident in rule.prefer else len(rule.prefer)
            return own, pref, n

        ordered = [c for _, c in sorted(enumerate(found), key=rank)]
        out: list[Candidate] = []
        route: Route | None = None
        blocked = False  # the policy's first choice is paused/open and it does not fall through
        for ident, tag, acq in ordered:
            reason = "not_routed" if acq is None else self._static(qr, payer, acq)
            if reason is None and acq is not None:
                if route is not None:
                    reason = "usable"
                elif blocked:
                    reason = "no_fall_through"
                elif self.status.paused(acq):
                    reason = "paused"
                elif not (self.breaker.allow(acq) if admit else self.breaker.would_allow(acq)):
                    reason = "circuit_open"
                else:
                    reason = "chosen"
                    route = self._route(qr, payer, acq, ident)
                if reason in ("paused", "circuit_open") and not rule.fall_through:
                    blocked = True
            out.append(Candidate(ident, tag, acq, reason or "chosen"))
        country, currency = self._merchant(qr, route.acquirer if route else None)
        return Decision(route, out, country, currency)

    def _route(self, qr: MerchantQR | AlipayPlusQR, payer: str, acquirer: str, ident: str) -> Route:
        country, currency = self._merchant(qr, acquirer)
        wallet = self.partners.get(payer)
        domestic = wallet is not None and (wallet.country, wallet.currency) == (country, currency)
        return Route(wallet=payer, acquirer=acquirer, kind="domestic" if domestic else "cross-border",
                     identifier=ident, acquirer_country=country)

    def resolve(self, qr: MerchantQR | AlipayPlusQR, payer_partner: str, *, admit: bool = False) -> Route:
        """The route for ``payer_partner`` (the wallet) or ``NoRoute`` (QR_NO_ROUTE)."""
        return self.evaluate(qr, payer_partner, admit=admit).chosen()
