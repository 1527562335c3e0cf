"""Scheme fees (PROTOCOL.md §9.1): per partner and role, ``bps`` of the item's amount in its own
currency plus ``fixed`` minor units, rounded half-up once per item.

A wallet pays its fee on the payer amount (payer currency), an acquirer on the merchant amount
(merchant currency); both are owed to the gateway. A cancel returns the whole fee of the payment;
a refund returns the fee in proportion to what it reverses, computed on the running total of the
payment's succeeded refunds so that refunding everything returns exactly the fee charged
(each refund's share is still one rounding: ``round(fee x refunded_after / amount) -
round(fee x refunded_before / amount)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from schemas.payment import PaymentRecord

_BPS = Decimal(10000)


@dataclass(frozen=True, slots=True)
class Rate:
    bps: int = 0
    fixed: int = 0

    def on(self, minor: int) -> int:
        """The fee of an amount of ``minor`` units (0 for a zero amount: nothing moved)."""
        if minor <= 0:
            return 0
        return _half_up(Decimal(minor) * self.bps / _BPS) + self.fixed


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Partner id -> role -> Rate; an absent partner or role pays nothing."""

    rates: Mapping[str, Mapping[str, Rate]]

    def rate(self, partner: str, role: str) -> Rate:
        return self.rates.get(partner, {}).get(role, _FREE)

    @classmethod
    def from_settings(cls, fees: Mapping[str, object]) -> FeeSchedule:
        """From ``Settings.settlement.fees`` (``PartnerFees`` models: ``.wallet`` / ``.acquirer``)."""
        out: dict[str, dict[str, Rate]] = {}
        for partner, pf in fees.items():
            out[partner] = {role: Rate(getattr(pf, role).bps, getattr(pf, role).fixed)
                            for role in ("wallet", "acquirer")}
        return cls(out)


_FREE = Rate()
NO_FEES = FeeSchedule({})


def _half_up(x: Decimal) -> int:
    return int(x.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _share(fee: int, part: int, whole: int) -> int:
    return _half_up(Decimal(fee) * part / whole) if whole else 0


def payment_fees(rec: PaymentRecord, fees: FeeSchedule) -> tuple[int, int]:
    """(wallet fee in payer minor units, acquirer fee in merchant minor units) of the payment."""
    return (fees.rate(rec.route.wallet, "wallet").on(rec.payer_amount.minor),
            fees.rate(rec.route.acquirer, "acquirer").on(rec.merchant_amount.minor))


def refund_fees(rec: PaymentRecord, refund_id: str, fees: FeeSchedule) -> tuple[int, int]:
    """The fees a succeeded refund returns (wallet, acquirer): its proportional share, on the
    running total of the payment's succeeded refunds in their recorded order."""
    wallet_fee, acquirer_fee = payment_fees(rec, fees)
    before_p = before_m = 0
    for r in rec.refunds:
        if r.status != "SUCCEEDED":
            continue
        after_p, after_m = before_p + r.payer_amount.minor, before_m + r.amount.minor
        if r.refund_id == refund_id:
            P, M = rec.payer_amount.minor, rec.merchant_amount.minor
            return (_share(wallet_fee, after_p, P) - _share(wallet_fee, before_p, P),
                    _share(acquirer_fee, after_m, M) - _share(acquirer_fee, before_m, M))
        before_p, before_m = after_p, after_m
    return 0, 0
