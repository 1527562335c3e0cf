"""Locked quotes and refund conversion (PROTOCOL.md §6).

Direction: ``rate`` is payer-currency units per one merchant-currency unit (major units), and
``payer_amount = merchant_amount × rate`` rounded once to the payer currency's minor unit. The
spread is charged to the payer: ``rate = mid × (1 + spread_bps / 10 000)``, so the payer pays
more than at mid. Rates are published with ``rate_digits`` significant digits and the payer
amount is computed from the published rate, so anyone can recompute it from the wire.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal
from typing import Any

from fx.currency import exponent
from fx.money import Money
from fx.ports import QuoteRepository
from fx.rates import RateProvider
from fx.settings import ROUNDING, FXSettings
from schemas.errors import FXError, QuoteExpired, QuoteInvalid, RefundExceedsPayment, ValidationFailed

__all__ = ["Quote", "QuoteService", "convert", "refund_payer_amount", "utcnow"]

CTX = Context(prec=60)  # wide enough that merchant × rate is exact for every wire amount


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_ts(value: Any) -> datetime:
    dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError("timestamp without zone")
    return dt


def significant(x: Decimal, digits: int) -> Decimal:
    """``x`` rounded half-even to ``digits`` significant digits, without exponent noise."""
    if x == 0:
        return Decimal(0)
    q = Decimal(1).scaleb(x.adjusted() - digits + 1)
    return x.quantize(q, context=CTX).normalize(CTX)


def convert(amount: Money, rate: Decimal, to: str, rounding: str = "half_up") -> Money:
    """``amount × rate`` in ``to``, rounded once to its minor unit (exact decimal arithmetic)."""
    exact = CTX.multiply(amount.to_decimal(), rate).scaleb(exponent(to))
    return Money(int(exact.quantize(Decimal(1), rounding=ROUNDING[rounding], context=CTX)), to)


@dataclass(frozen=True)
class Quote:
    quote_id: str
    partner_id: str
    qr_fingerprint: str
    merchant_amount: Money
    payer_amount: Money
    mid_rate: Decimal
    spread_bps: int
    rate: Decimal
    created_at: datetime
    expires_at: datetime

    def to_wire(self) -> dict[str, Any]:
        """The public shape (PROTOCOL.md §5/§6): rates as decimal strings, times RFC 3339 Z."""
        return {
            "quote_id": self.quote_id,
            "merchant_amount": self.merchant_amount.to_dict(),
            "payer_amount": self.payer_amount.to_dict(),
            "rate": str(self.rate),
            "mid_rate": str(self.mid_rate),
            "spread_bps": self.spread_bps,
            "created_at": rfc3339(self.created_at),
            "expires_at": rfc3339(self.expires_at),
        }

    def to_record(self) -> dict[str, Any]:
        """What the repository stores: the wire shape plus the binding (strings, for consume_quote)."""
        return {**self.to_wire(), **self.binding(self.partner_id, self.qr_fingerprint, self.merchant_amount)}

    @staticmethod
    def binding(partner_id: str, qr_fingerprint: str, merchant_amount: Money) -> dict[str, str]:
        return {
            "partner_id": partner_id,
            "qr_fingerprint": qr_fingerprint,
            "merchant_value": str(merchant_amount.minor),
            "merchant_currency": merchant_amount.currency,
        }

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Quote:
        """From ``to_wire`` or ``to_record`` output (binding fields default to empty)."""
        try:
            return cls(
                quote_id=str(d["quote_id"]),
                partner_id=str(d.get("partner_id", "")),
                qr_fingerprint=str(d.get("qr_fingerprint", "")),
                merchant_amount=Money.from_wire(d["merchant_amount"]),
                payer_amount=Money.from_wire(d["payer_amount"]),
                mid_rate=Decimal(str(d["mid_rate"])),
                spread_bps=int(d["spread_bps"]),
                rate=Decimal(str(d["rate"])),
                created_at=_parse_ts(d["created_at"]),
                expires_at=_parse_ts(d["expires_at"]),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise QuoteInvalid(f"stored quote is malformed: {exc}") from exc


class QuoteService:
    """Creates, stores and redeems locked quotes."""

    def __init__(
        self,
        rates: RateProvider,
        repo: QuoteRepository,
        settings: FXSettings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.rates = rates
        self.repo = repo
        self.settings = settings
        self.clock = clock

    async def price(self, merchant_amount: Money, payer_currency: str) -> tuple[Decimal, int, Decimal, Money]:
        """(mid, spread_bps, all-in rate, payer amount) without storing anything."""
        exponent(payer_currency)  # CURRENCY_UNSUPPORTED for unknown / non-payable
        if merchant_amount.minor <= 0:
            raise ValidationFailed("merchant_amount must be a positive amount")
        merchant = merchant_amount.currency
        spread, rounding = self.settings.pair(merchant, payer_currency)
        digits = self.settings.rate_digits
        mid = significant(await self.rates.mid_rate(merchant, payer_currency), digits)
        rate = significant(CTX.multiply(mid, 1 + CTX.divide(Decimal(spread), Decimal(10_000))), digits)
        payer = convert(merchant_amount, rate, payer_currency, rounding)
        if payer.minor <= 0:
            raise FXError(f"{merchant_amount} is less than one minor unit of {payer_currency}")
        return mid, spread, rate, payer

    async def quote(
        self,
        *,
        merchant_amount: Money,
        payer_currency: str,
        partner_id: str,
        qr_fingerprint: str,
        persist: bool = True,
    ) -> Quote:
        """A locked quote; ``persist=False`` skips storing it (the caller keeps it, e.g. a payment
        that prices its own quote and locks it by storing it in its record)."""
        mid, spread, rate, payer = await self.price(merchant_amount, payer_currency)
        now = self.clock()
        q = Quote(
            quote_id="qt_" + secrets.token_urlsafe(18),
            partner_id=partner_id,
            qr_fingerprint=qr_fingerprint,
            merchant_amount=merchant_amount,
            payer_amount=payer,
            mid_rate=mid,
            spread_bps=spread,
            rate=rate,
            created_at=now,
            expires_at=now + timedelta(seconds=self.settings.quote_ttl_s),
        )
        if not persist:
            return q
        # kept past its expiry for a grace period, so a late use answers QUOTE_EXPIRED, not unknown
        await self.repo.put_quote(q.quote_id, q.to_record(), self.settings.quote_ttl_s + self.settings.quote_grace_s)
        return q

    async def peek(self, quote_id: str, *, partner_id: str, qr_fingerprint: str, merchant_amount: Money) -> Quote:
        """The stored quote if it is unexpired and bound to this partner, QR and amount (not consumed)."""
        data = await self.repo.get_quote(quote_id)
        if data is None:
            raise QuoteInvalid("unknown quote")
        stored = Quote.from_wire(data)
        if self.clock() >= stored.expires_at:
            raise QuoteExpired(f"quote expired at {rfc3339(stored.expires_at)}")
        if any(str(data.get(k)) != v for k, v in Quote.binding(partner_id, qr_fingerprint, merchant_amount).items()):
            raise QuoteInvalid("quote bound to another partner, QR or amount")
        return stored

    async def redeem(
        self, quote_id: str, *, partner_id: str, qr_fingerprint: str, merchant_amount: Money, consumer: str
    ) -> Quote:
        """Consume the quote for ``consumer`` (a payment id); a repeat by the same consumer is OK."""
        stored = await self.peek(quote_id, partner_id=partner_id, qr_fingerprint=qr_fingerprint,
                                 merchant_amount=merchant_amount)
        await self.consume(quote_id, partner_id=partner_id, qr_fingerprint=qr_fingerprint,
                           merchant_amount=merchant_amount, consumer=consumer)
        return stored

    async def consume(
        self, quote_id: str, *, partner_id: str, qr_fingerprint: str, merchant_amount: Money, consumer: str
    ) -> None:
        """Mark a (peeked) quote used by ``consumer``; a repeat by the same consumer is OK."""
        expect = Quote.binding(partner_id, qr_fingerprint, merchant_amount)
        use = await self.repo.consume_quote(quote_id, expect, consumer)
        status = str(use.status)
        if status == "OK":
            return
        if status == "MISSING":
            raise QuoteExpired("quote expired")
        if status == "USED":
            raise QuoteInvalid("quote already used")
        raise QuoteInvalid("quote bound to another partner, QR or amount")

    async def unredeem(self, quote_id: str, consumer: str) -> None:
        """Give the quote back (the payment that redeemed it was rejected before any debit)."""
        await self.repo.restore_quote(quote_id, consumer)


def refund_payer_amount(
    *,
    rate_quote: Quote | Mapping[str, Any],
    refund: Money,
    refunded_before: Money,
    refunded_payer_before: Money,
    paid_payer: Money,
    paid_merchant: Money,
) -> Money:
    """Payer-currency amount of refunding ``refund`` (merchant currency) at the quote's rate.

    Cumulative, so rounding never drifts: the refunds of merchant amount ``m`` in total return
    ``min(paid_payer, round(m × rate))`` in total, this one returning the difference from what
    was returned before; the refund that completes the merchant amount returns exactly what
    remains of ``paid_payer``. RefundExceedsPayment when it would pass the merchant amount.
    """
    rate = rate_quote.rate if isinstance(rate_quote, Quote) else Decimal(str(rate_quote["rate"]))
    for a, b in ((refund, paid_merchant), (refunded_before, paid_merchant), (refunded_payer_before, paid_payer)):
        if a.currency != b.currency:
            raise TypeError(f"refund amounts mix {a.currency} and {b.currency}")
    if refund.minor <= 0:
        raise ValidationFailed("refund amount must be positive")
    total_m = refunded_before.minor + refund.minor
    remaining_p = paid_payer.minor - refunded_payer_before.minor
    if total_m > paid_merchant.minor or remaining_p < 0:
        raise RefundExceedsPayment(
            f"refund of {refund} passes what remains ({paid_merchant - refunded_before})",
            remaining=(paid_merchant - refunded_before).to_dict() if paid_merchant >= refunded_before else None,
        )
    if total_m == paid_merchant.minor:
        return Money(remaining_p, paid_payer.currency)
    cumulative = convert(Money(total_m, paid_merchant.currency), rate, paid_payer.currency, "half_up").minor
    this = cumulative - refunded_payer_before.minor
    return Money(max(0, min(this, remaining_p)), paid_payer.currency)
