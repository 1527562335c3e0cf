"""Settlement reports as JSON documents (PROTOCOL.md §9; layout in docs/settlement.md).

Amounts are integer minor units written as strings. Money that is never negative uses the
wire shape ``{"currency", "value"}``; positions and margins, which can be negative, are signed
integer strings beside an explicit ``currency``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.settlement.items import Item

POSITION_FIELDS = (
    "wallet_gross", "wallet_reversals", "acquirer_gross", "acquirer_reversals", "wallet_fees", "acquirer_fees",
    "net",
)
FX_FIELDS = ("rate", "mid_rate", "mid_equivalent", "margin")  # hidden from partners unless configured
MARGIN_FIELDS = ("items", "payer_amount", "merchant_amount", "mid_equivalent", "margin")


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Position:
    """One partner's money with the gateway in one currency (minor units).

    ``net`` > 0: the partner pays the gateway; < 0: the gateway pays the partner."""

    wallet_gross: int = 0  # payer amounts of its payments as wallet: it owes them
    wallet_reversals: int = 0  # payer amounts given back (cancels, refunds)
    acquirer_gross: int = 0  # merchant amounts of its payments as acquirer: it is owed them
    acquirer_reversals: int = 0  # merchant amounts taken back
    wallet_fees: int = 0  # its fees as wallet, net of fees returned by reversals: it owes them
    acquirer_fees: int = 0  # its fees as acquirer, net of returns: withheld from what it is owed

    @property
    def owes_as_wallet(self) -> int:
        return self.wallet_gross - self.wallet_reversals + self.wallet_fees

    @property
    def owed_as_acquirer(self) -> int:
        return self.acquirer_gross - self.acquirer_reversals - self.acquirer_fees

    @property
    def net(self) -> int:
        return self.owes_as_wallet - self.owed_as_acquirer


@dataclass
class Margin:
    """The gateway's FX result on one ``MERCHANT/PAYER`` pair, net of reversals (signed)."""

    items: int = 0
    payer_amount: int = 0
    merchant_amount: int = 0
    mid_equivalent: int = 0
    margin: int = 0


def positions_of(items: Iterable[Item], partner: str) -> dict[str, Position]:
    """Per currency, the settled money between ``partner`` and the gateway."""
    out: dict[str, Position] = defaultdict(Position)
    for i in items:
        if not i.settles:
            continue
        if i.wallet == partner:
            p = out[i.payer_currency]
            p.wallet_fees += i.sign * i.wallet_fee
            if i.sign > 0:
                p.wallet_gross += i.payer_amount
            else:
                p.wallet_reversals += i.payer_amount
        if i.acquirer == partner:
            p = out[i.merchant_currency]
            p.acquirer_fees += i.sign * i.acquirer_fee
            if i.sign > 0:
                p.acquirer_gross += i.merchant_amount
            else:
                p.acquirer_reversals += i.merchant_amount
    return dict(sorted(out.items()))


def margins_of(items: Iterable[Item]) -> dict[str, Margin]:
    """Per ``MERCHANT/PAYER`` pair, the settled cross-border items' margin, net of reversals."""
    out: dict[str, Margin] = defaultdict(Margin)
    for i in items:
        if not (i.settles and i.cross_border):
            continue
        m = out[i.pair]
        m.items += 1
        m.payer_amount += i.sign * i.payer_amount
        m.merchant_amount += i.sign * i.merchant_amount
        m.mid_equivalent += i.sign * i.mid_equivalent
        m.margin += i.sign * i.margin
    return dict(sorted(out.items()))


def _money(currency: str, minor: int) -> dict[str, str]:
    return {"currency": currency, "value": str(minor)}


def item_json(i: Item, partner: str | None = None, show_fx: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": i.kind,
        "item_id": i.item_id,
        "payment_id": i.payment_id,
        "business_day": i.business_day,
        "at": _rfc3339(i.at),
        "status": i.status,
        "settles": i.settles,
        "route": {"wallet": i.wallet, "acquirer": i.acquirer, "kind": i.route_kind},
        "payer_amount": _money(i.payer_currency, i.payer_amount),
        "merchant_amount": _money(i.merchant_currency, i.merchant_amount),
        "rate": i.rate,
        "mid_rate": i.mid_rate,
        "mid_equivalent": _money(i.payer_currency, i.mid_equivalent),
        "margin": {"currency": i.payer_currency, "value": str(i.margin)},
        "wallet_fee": _money(i.payer_currency, i.wallet_fee),
        "acquirer_fee": _money(i.merchant_currency, i.acquirer_fee),
    }
    if partner is not None:
        doc["role"] = "+".join(r for r, p in (("wallet", i.wallet), ("acquirer", i.acquirer)) if p == partner)
    if not show_fx:
        for f in FX_FIELDS[1:]:
            del doc[f]
    return doc


def positions_json(positions: dict[str, Position]) -> list[dict[str, str]]:
    return [
        {"currency": cur, **{f: str(getattr(p, f)) for f in POSITION_FIELDS}} for cur, p in positions.items()
    ]


def margins_json(margins: dict[str, Margin]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for pair, m in margins.items():
        merchant_cur, payer_cur = pair.split("/")
        out.append({
            "pair": pair,
            "merchant_currency": merchant_cur,
            "payer_currency": payer_cur,
            "items": m.items,
            **{f: str(getattr(m, f)) for f in MARGIN_FIELDS[1:]},
        })
    return out


def partner_report(items: Sequence[Item], partner: str, day: str, zone: str, show_fx: bool = False) -> dict[str, Any]:
    """The report ``GET /v1/settlements/{day}`` answers to ``partner``: its items of the day
    (as wallet or acquirer) with their fees, its net position per currency, and, only when the
    deployment shows it (``show_fx``), the gateway's mid rate and FX margin on its items."""
    mine = [i for i in items if partner in (i.wallet, i.acquirer)]
    doc: dict[str, Any] = {
        "partner_id": partner,
        "business_day": day,
        "zone": zone,
        "generated_at": _rfc3339(datetime.now(UTC)),
        "items": [item_json(i, partner, show_fx) for i in mine],
        "positions": positions_json(positions_of(mine, partner)),
    }
    if show_fx:
        doc["fx_margin"] = margins_json(margins_of(mine))
    return doc


def partners_of(items: Iterable[Item], known: Iterable[str] = ()) -> list[str]:
    ids = set(known)
    for i in items:
        ids.update((i.wallet, i.acquirer))
    return sorted(ids)
