"""The routing table (PROTOCOL.md §1): merchant-account identifiers -> acquirer partners.

A shared QR carries several merchant account templates (26-51); the route goes to the acquirer
of the first template, in tag order, whose identifier (sub-tag 00) is configured. An Alipay+
MPM code (its own format, no templates) routes by the first configured of
``alipayplus:<domain, lower case>``, ``alipayplus`` and ``com.alipay`` (docs/qr.md).
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.config import Settings
from schemas.errors import NoRoute
from schemas.payment import Route
from schemas.qr import AlipayPlusQR, MerchantQR

ALIPAYPLUS_IDENTIFIERS = ("alipayplus", "com.alipay")


class RoutingTable:
    def __init__(self, entries: Mapping[str, str], partner_country: Mapping[str, str]) -> None:
        self.entries = dict(entries)
        self.partner_country = dict(partner_country)

    @classmethod
    def from_settings(cls, settings: Settings) -> RoutingTable:
        return cls(
            {r.identifier: r.partner for r in settings.routing},
            {p.id: p.country for p in settings.partners},
        )

    def candidates(self, qr: MerchantQR | AlipayPlusQR) -> list[str]:
        """The identifiers of ``qr`` that could route it, in the order they are tried."""
        if isinstance(qr, AlipayPlusQR):
            return [f"alipayplus:{qr.domain.lower()}", *ALIPAYPLUS_IDENTIFIERS]
        # Tag order (26 before 27), whatever order the code prints them in.
        accounts = sorted(qr.merchant_accounts, key=lambda a: a.tag)
        return [a.fields["00"] for a in accounts if a.fields is not None and "00" in a.fields]

    def resolve(self, qr: MerchantQR | AlipayPlusQR, payer_partner: str) -> Route:
        """The route for ``payer_partner`` (the wallet) or ``NoRoute`` (QR_NO_ROUTE)."""
        tried = self.candidates(qr)
        for ident in tried:
            acquirer = self.entries.get(ident)
            if acquirer is not None:
                home = self.partner_country.get(acquirer)
                domestic = home is not None and home == self.partner_country.get(payer_partner)
                return Route(
                    wallet=payer_partner,
                    acquirer=acquirer,
                    kind="domestic" if domestic else "cross-border",
                    identifier=ident,
                )
        shown = ", ".join(tried) if tried else "none"
        raise NoRoute(f"no merchant account identifier of this code is routed (identifiers: {shown})")
