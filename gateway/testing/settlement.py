"""Test helpers for settlement: PaymentRecords built directly (no orchestrator), with quote
snapshots shaped like ``fx.quotes.Quote.to_wire``, and a tiny day-indexed store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from fx.currency import exponent
from gateway.settlement.items import EXACT
from schemas.money import MoneyModel
from schemas.payment import CancelRecord, Merchant, Payer, PaymentRecord, PaymentStatus, RefundRecord, Route

# The sandbox topology (notes/topology.md): partner -> (country, currency).
PARTNERS: dict[str, tuple[str, str]] = {
    "kakaopay-kr": ("KR", "KRW"),
    "alipay-cn": ("CN", "CNY"),
    "openwallet-sg": ("SG", "SGD"),
}
USD_RATES = {"USD/KRW": "1385.20", "USD/CNY": "7.2345", "USD/SGD": "1.3456"}
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 10:00 in Seoul


def mid_rate(merchant_cur: str, payer_cur: str) -> Decimal:
    """Payer major units per merchant major unit, 12 significant digits (like the FX engine)."""
    with localcontext() as ctx:
        ctx.prec = 12
        return Decimal(USD_RATES[f"USD/{payer_cur}"]) / Decimal(USD_RATES[f"USD/{merchant_cur}"])


def convert(minor: int, from_cur: str, rate: Decimal, to_cur: str) -> int:
    with localcontext(EXACT):
        x = (Decimal(minor) * rate).scaleb(exponent(to_cur) - exponent(from_cur))
        return int(x.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def quote_for(merchant: MoneyModel, payer_cur: str, spread_bps: int) -> tuple[MoneyModel, dict[str, Any]]:
    mid = mid_rate(merchant.currency, payer_cur)
    with localcontext() as ctx:
        ctx.prec = 12
        rate = mid * (Decimal(1) + Decimal(spread_bps) / Decimal(10000))
    payer = MoneyModel.of(payer_cur, convert(merchant.minor, merchant.currency, rate, payer_cur))
    quote = {
        "quote_id": f"qt_{merchant.currency}{payer_cur}{merchant.value}",
        "merchant_amount": merchant.model_dump(mode="json"),
        "payer_amount": payer.model_dump(mode="json"),
        "rate": str(rate), "mid_rate": str(mid), "spread_bps": spread_bps,
        "created_at": "2026-03-02T01:00:00Z", "expires_at": "2026-03-02T01:01:00Z",
    }
    return payer, quote


def make_payment(
    payment_id: str, *, wallet: str, acquirer: str, merchant_minor: int, day: str = "2026-03-02",
    status: PaymentStatus = PaymentStatus.SUCCEEDED, spread_bps: int = 50, at: datetime = T0,
    flags: list[str] | None = None, payer: Payer | None = None, reservation: dict[str, Any] | None = None,
) -> PaymentRecord:
    wallet_country, payer_cur = PARTNERS[wallet]
    acq_country, merchant_cur = PARTNERS[acquirer]
    merchant = MoneyModel.of(merchant_cur, merchant_minor)
    kind = "domestic" if wallet_country == acq_country else "cross-border"
    quote = None
    payer_amount = merchant
    if kind == "cross-border":
        payer_amount, quote = quote_for(merchant, payer_cur, spread_bps)
    return PaymentRecord(
        payment_id=payment_id, payment_request_id=f"req-{payment_id}", partner_id=wallet, status=status,
        stage="done", route=Route(wallet=wallet, acquirer=acquirer, kind=kind, identifier="test"),
        merchant=Merchant(name="HANGANG BBQ", city="SEOUL", country=acq_country), qr="QR",
        merchant_amount=merchant, payer_amount=payer_amount, quote=quote,
        payer=payer or Payer(id=f"payer-{wallet}", residency="non-resident", country=wallet_country),
        flags=flags or [], reservation=reservation, business_day=day, created_at=at, updated_at=at,
    )


def refund_payer_amount(rec: PaymentRecord, amount: int) -> int:
    """Proportional at the original rate; the refund completing the payment returns exactly the rest."""
    done = [r for r in rec.refunds if r.status == "SUCCEEDED"]
    before, before_payer = sum(r.amount.minor for r in done), sum(r.payer_amount.minor for r in done)
    if before + amount == rec.merchant_amount.minor:
        return rec.payer_amount.minor - before_payer
    with localcontext(EXACT):
        x = Decimal(rec.payer_amount.minor) * amount / rec.merchant_amount.minor
        return int(x.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def add_refund(rec: PaymentRecord, amount: int, *, day: str, status: str = "SUCCEEDED",
               at: datetime | None = None) -> RefundRecord:
    at = at or rec.created_at + timedelta(hours=1)
    n = len(rec.refunds) + 1
    r = RefundRecord(
        refund_id=f"{rec.payment_id}-rf{n}", refund_request_id=f"rr-{rec.payment_id}-{n}",
        amount=MoneyModel.of(rec.merchant_amount.currency, amount),
        payer_amount=MoneyModel.of(rec.payer_amount.currency, refund_payer_amount(rec, amount)),
        status=status, stage="done", created_at=at, updated_at=at, business_day=day,
    )
    rec.refunds.append(r)
    if status == "SUCCEEDED":
        total = sum(x.amount.minor for x in rec.refunds if x.status == "SUCCEEDED")
        rec.status = PaymentStatus.REFUNDED if total == rec.merchant_amount.minor else PaymentStatus.PARTIALLY_REFUNDED
    return r


def add_cancel(rec: PaymentRecord, *, day: str, status: str = "SUCCEEDED", at: datetime | None = None) -> None:
    at = at or rec.created_at + timedelta(minutes=5)
    rec.cancel = CancelRecord(cancel_request_id=f"cx-{rec.payment_id}", status=status,
                              stage="done", created_at=at, updated_at=at, business_day=day)
    if status == "SUCCEEDED":
        rec.status = PaymentStatus.CANCELLED


@dataclass
class DayIndexStore:
    """``payments_of_day`` / ``get_payment`` over a dict: each record indexed under its own day
    and the days of its cancel and refunds (what ``update_payment(extra_days=...)`` does)."""

    records: dict[str, PaymentRecord] = field(default_factory=dict)

    def put(self, rec: PaymentRecord) -> None:
        self.records[rec.payment_id] = rec

    async def payments_of_day(self, day: str) -> list[str]:
        out = []
        for rec in self.records.values():
            days = {rec.business_day, *(r.business_day for r in rec.refunds)}
            if rec.cancel is not None:
                days.add(rec.cancel.business_day)
            if day in days:
                out.append(rec.payment_id)
        return out

    async def get_payment(self, payment_id: str) -> PaymentRecord | None:
        return self.records.get(payment_id)
