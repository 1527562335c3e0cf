"""Settlement items: the payments, cancels and refunds of one business day (PROTOCOL.md §9).

Each payment, cancel and refund belongs to exactly one business day (its record's
``business_day``). An item *settles* when it moved money: a payment whose debit and credit
both succeeded (status SUCCEEDED, or later CANCELLED / (PARTIALLY_)REFUNDED), a cancel or a
refund whose status is SUCCEEDED. Other items are listed for information and count nowhere.

FX margin (docs/settlement.md): for a cross-border item, ``mid_equivalent`` is the merchant
amount converted at the quote's mid rate into the payer currency, rounded half-up to the
payer currency's minor unit, and ``margin = payer_amount - mid_equivalent`` (payer currency,
integer minor units). Both are exact integers, so the day balance is checkable to the unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Literal

from fx.currency import exponent
from gateway.settlement.fees import NO_FEES, FeeSchedule, payment_fees, refund_fees
from schemas.payment import PaymentRecord, PaymentStatus

Kind = Literal["payment", "cancel", "refund"]
_SETTLED_PAYMENT = frozenset(
    {PaymentStatus.SUCCEEDED, PaymentStatus.CANCELLED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}
)
# Wide enough that minor units x rate x 10^k is exact for any real amount.
EXACT = Context(prec=80)


@dataclass(frozen=True, slots=True)
class Item:
    kind: Kind
    item_id: str  # payment_id, cancel_request_id or refund_id
    payment_id: str
    business_day: str
    at: datetime
    status: str  # the payment's status for a payment item; the cancel's / refund's otherwise
    settles: bool
    wallet: str
    acquirer: str
    route_kind: str  # domestic | cross-border
    payer_currency: str
    payer_amount: int  # minor units, always >= 0; reversals are signed by ``sign``
    merchant_currency: str
    merchant_amount: int
    rate: str | None
    mid_rate: str | None
    mid_equivalent: int  # payer currency minor units
    margin: int  # payer currency minor units: payer_amount - mid_equivalent
    wallet_fee: int = 0  # payer currency minor units, charged (payment) or returned (reversal)
    acquirer_fee: int = 0  # merchant currency minor units

    @property
    def sign(self) -> int:
        """+1 for a payment (the wallet owes, the acquirer is owed), -1 for a reversal."""
        return 1 if self.kind == "payment" else -1

    @property
    def cross_border(self) -> bool:
        return self.route_kind == "cross-border"

    @property
    def pair(self) -> str:
        """``MERCHANT/PAYER``, the key convention of ``[fx.pairs]``."""
        return f"{self.merchant_currency}/{self.payer_currency}"


def mid_equivalent(merchant_minor: int, merchant_currency: str, mid_rate: Decimal, payer_currency: str) -> int:
    """``merchant_minor`` at ``mid_rate`` (payer major units per merchant major unit), in payer
    minor units, rounded half-up. Exact decimal arithmetic."""
    with localcontext(EXACT):
        scale = exponent(payer_currency) - exponent(merchant_currency)
        value = (Decimal(merchant_minor) * mid_rate).scaleb(scale)
        return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _rates(rec: PaymentRecord) -> tuple[str | None, str | None, Decimal | None]:
    """(rate, mid rate, mid rate used for the margin). Without a recorded mid rate the margin is
    taken at the customer rate (margin 0): a quote snapshot without ``mid_rate`` is a gap the
    balance check reports, never a guess."""
    if rec.route.kind != "cross-border" or rec.quote is None:
        return None, None, None
    rate = rec.quote.get("rate")
    mid = rec.quote.get("mid_rate")
    use = mid if mid is not None else rate
    return (str(rate) if rate is not None else None, str(mid) if mid is not None else None,
            Decimal(str(use)) if use is not None else None)


def _item(rec: PaymentRecord, kind: Kind, item_id: str, day: str, at: datetime, status: str, settles: bool,
          payer: int, merchant: int, fees: tuple[int, int] = (0, 0)) -> Item:
    rate, mid, use = _rates(rec)
    pc, mc = rec.payer_amount.currency, rec.merchant_amount.currency
    mid_eq = merchant if use is None else mid_equivalent(merchant, mc, use, pc)
    if rec.route.kind != "cross-border":
        mid_eq = payer  # domestic: no conversion, no margin
    return Item(
        kind=kind, item_id=item_id, payment_id=rec.payment_id, business_day=day, at=at, status=status,
        settles=settles, wallet=rec.route.wallet, acquirer=rec.route.acquirer, route_kind=rec.route.kind,
        payer_currency=pc, payer_amount=payer, merchant_currency=mc, merchant_amount=merchant,
        rate=rate, mid_rate=mid, mid_equivalent=mid_eq, margin=payer - mid_eq,
        wallet_fee=fees[0] if settles else 0, acquirer_fee=fees[1] if settles else 0,
    )


def items_of(rec: PaymentRecord, day: str | None = None, fees: FeeSchedule = NO_FEES) -> list[Item]:
    """The items of ``rec`` (of business day ``day`` when given), payment first, with their fees."""
    out: list[Item] = []
    whole = payment_fees(rec, fees)
    if day is None or rec.business_day == day:
        out.append(_item(rec, "payment", rec.payment_id, rec.business_day, rec.created_at, str(rec.status),
                         rec.status in _SETTLED_PAYMENT, rec.payer_amount.minor, rec.merchant_amount.minor, whole))
    c = rec.cancel
    if c is not None and (day is None or c.business_day == day):
        out.append(_item(rec, "cancel", c.cancel_request_id, c.business_day, c.updated_at, c.status,
                         c.status == "SUCCEEDED", rec.payer_amount.minor, rec.merchant_amount.minor, whole))
    for r in rec.refunds:
        if day is None or r.business_day == day:
            out.append(_item(rec, "refund", r.refund_id, r.business_day, r.updated_at, r.status,
                             r.status == "SUCCEEDED", r.payer_amount.minor, r.amount.minor,
                             refund_fees(rec, r.refund_id, fees)))
    return out


def items_of_day(records: list[PaymentRecord], day: str, fees: FeeSchedule = NO_FEES) -> list[Item]:
    """Every item of business day ``day``, in a stable order (time, then id)."""
    items = [i for rec in records for i in items_of(rec, day, fees)]
    items.sort(key=lambda i: (i.at, i.payment_id, i.kind != "payment", i.item_id))
    return items
