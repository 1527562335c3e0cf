"""The day balance across all partners, and the record checks of ``qrgw settle --check``.

Per currency C, over the settled items of the day (docs/settlement.md, "The balance")::

    owed_by_wallets(C) - owed_to_acquirers(C) - margin(C) - fees(C) - fx_sold(C) + fx_bought(C) = 0

``owed_by_wallets`` (fees included) / ``owed_to_acquirers`` (net of their fees) are summed from
every partner's report (each item counted through the partners on its route), ``fees`` from the
items (wallet fees in the payer currency, acquirer fees in the merchant currency), ``margin`` /
``fx_sold`` (the mid-rate equivalents the gateway converts out of C) / ``fx_bought`` (merchant amounts it converts
into C) from the FX table. All terms are integer minor units: the check is exact.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation, localcontext
from typing import Any

from fx.currency import exponent
from gateway.settlement.items import EXACT, Item
from gateway.settlement.report import margins_of, partners_of, positions_of
from schemas.payment import PaymentRecord, PaymentStatus

BALANCE_FIELDS = (
    "owed_by_wallets", "owed_to_acquirers", "margin", "fees", "fx_sold", "fx_bought", "difference",
)


@dataclass(frozen=True, slots=True)
class Offense:
    payment_id: str
    item_id: str
    code: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"payment_id": self.payment_id, "item_id": self.item_id, "code": self.code, "detail": self.detail}


@dataclass
class CurrencyBalance:
    owed_by_wallets: int = 0
    owed_to_acquirers: int = 0
    margin: int = 0
    fees: int = 0
    fx_sold: int = 0
    fx_bought: int = 0

    @property
    def difference(self) -> int:
        return (self.owed_by_wallets - self.owed_to_acquirers - self.margin - self.fees - self.fx_sold
                + self.fx_bought)


def day_balance(items: Sequence[Item]) -> dict[str, CurrencyBalance]:
    """Per currency, the terms of the balance equation from the partners' reports and the FX table."""
    out: dict[str, CurrencyBalance] = defaultdict(CurrencyBalance)
    for partner in partners_of(items):
        mine = [i for i in items if partner in (i.wallet, i.acquirer)]
        for cur, p in positions_of(mine, partner).items():
            out[cur].owed_by_wallets += p.owes_as_wallet
            out[cur].owed_to_acquirers += p.owed_as_acquirer
    for i in items:
        if i.settles:
            out[i.payer_currency].fees += i.sign * i.wallet_fee
            out[i.merchant_currency].fees += i.sign * i.acquirer_fee
    for pair, m in margins_of(items).items():
        merchant_cur, payer_cur = pair.split("/")
        out[payer_cur].margin += m.margin
        out[payer_cur].fx_sold += m.mid_equivalent
        out[merchant_cur].fx_bought += m.merchant_amount
    return dict(sorted(out.items()))


def _residuals(i: Item) -> dict[str, int]:
    """One settled item's own contribution to each currency's difference (0 when it balances)."""
    r: dict[str, int] = defaultdict(int)
    r[i.payer_currency] += i.sign * i.payer_amount
    r[i.merchant_currency] -= i.sign * i.merchant_amount
    if i.cross_border:
        r[i.payer_currency] -= i.sign * (i.margin + i.mid_equivalent)
        r[i.merchant_currency] += i.sign * i.merchant_amount
    return {c: v for c, v in r.items() if v}


def balance_offenses(items: Sequence[Item]) -> list[Offense]:
    """Items that do not balance on their own, then any currency whose total does not."""
    out: list[Offense] = []
    for i in items:
        if i.settles and (res := _residuals(i)):
            detail = ", ".join(f"{c} {v:+d}" for c, v in sorted(res.items()))
            out.append(Offense(i.payment_id, i.item_id, "ITEM_UNBALANCED", f"{i.kind} leaves {detail}"))
    for cur, b in day_balance(items).items():
        if b.difference:
            out.append(Offense("", "", "DAY_UNBALANCED", f"{cur}: difference {b.difference:+d}"))
    return out


def _rate_bounds(rec: PaymentRecord, rate: str) -> tuple[int, int] | None:
    with localcontext(EXACT):
        try:
            x = (Decimal(rec.merchant_amount.minor) * Decimal(rate)).scaleb(
                exponent(rec.payer_amount.currency) - exponent(rec.merchant_amount.currency)
            )
        except (InvalidOperation, ValueError):
            return None
        return int(x.to_integral_value(ROUND_FLOOR)), int(x.to_integral_value(ROUND_CEILING))


def _quote_offenses(rec: PaymentRecord) -> list[str]:
    q = rec.quote
    if q is None:
        return ["cross-border payment without a quote snapshot"]
    out: list[str] = []
    if q.get("mid_rate") is None:
        out.append("quote snapshot has no mid_rate: margin taken at the customer rate")
    for name, money in (("merchant_amount", rec.merchant_amount), ("payer_amount", rec.payer_amount)):
        if name in q and q[name] != money.model_dump(mode="json"):
            out.append(f"quote {name} {q[name]} differs from the payment's {money.model_dump(mode='json')}")
    bounds = _rate_bounds(rec, str(q.get("rate")))
    if bounds is None:
        out.append(f"quote rate {q.get('rate')!r} is not a decimal")
    elif not bounds[0] <= rec.payer_amount.minor <= bounds[1]:
        out.append(f"payer amount {rec.payer_amount.minor} is not merchant amount x rate {bounds}")
    return out


def record_offenses(rec: PaymentRecord) -> list[Offense]:
    """Inconsistencies of one payment record that would make a report wrong."""
    out: list[str] = []
    P, M = rec.payer_amount, rec.merchant_amount
    if rec.route.kind == "domestic" and (P.currency != M.currency or P.minor != M.minor):
        out.append(f"domestic payment with payer {P.minor} {P.currency} != merchant {M.minor} {M.currency}")
    if rec.route.kind == "cross-border" and rec.status != PaymentStatus.FAILED:
        out.extend(_quote_offenses(rec))
    done = [r for r in rec.refunds if r.status == "SUCCEEDED"]
    for r in rec.refunds:
        if r.amount.currency != M.currency or r.payer_amount.currency != P.currency:
            out.append(f"refund {r.refund_id} currencies differ from the payment's")
        if r.business_day < rec.business_day:
            out.append(f"refund {r.refund_id} on {r.business_day}, before its payment's day")
    refunded, refunded_payer = sum(r.amount.minor for r in done), sum(r.payer_amount.minor for r in done)
    if refunded > M.minor or refunded_payer > P.minor:
        out.append(f"refunds {refunded}/{refunded_payer} exceed the payment {M.minor}/{P.minor}")
    st = rec.status
    if st == PaymentStatus.REFUNDED and (refunded, refunded_payer) != (M.minor, P.minor):
        out.append(f"REFUNDED but refunds total {refunded}/{refunded_payer} of {M.minor}/{P.minor}")
    if st == PaymentStatus.PARTIALLY_REFUNDED and not 0 < refunded < M.minor:
        out.append(f"PARTIALLY_REFUNDED but refunds total {refunded} of {M.minor}")
    if st in (PaymentStatus.SUCCEEDED, PaymentStatus.PROCESSING, PaymentStatus.FAILED) and done:
        out.append(f"{st} with {len(done)} succeeded refund(s)")
    cancelled = rec.cancel is not None and rec.cancel.status == "SUCCEEDED"
    if cancelled != (st == PaymentStatus.CANCELLED):
        out.append(f"status {st} but cancel {rec.cancel.status if rec.cancel else 'absent'}")
    if cancelled and done:
        out.append("cancelled and refunded")
    if rec.cancel is not None and rec.cancel.business_day < rec.business_day:
        out.append(f"cancel on {rec.cancel.business_day}, before its payment's day")
    return [Offense(rec.payment_id, rec.payment_id, "RECORD_INCONSISTENT", d) for d in out]


def balance_json(balance: dict[str, CurrencyBalance]) -> list[dict[str, Any]]:
    return [{"currency": c, **{f: str(getattr(b, f)) for f in BALANCE_FIELDS}} for c, b in balance.items()]
