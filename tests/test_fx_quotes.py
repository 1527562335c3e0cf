"""Locked quotes (expiry, reuse, binding) and refunds at the original rate.

Quotes live in each real Store in turn (``store_case``: MemoryStore, RedisStore, RedisStore on a Cluster)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fx.money import Money
from fx.quotes import Quote, QuoteService, refund_payer_amount
from fx.rates import StaticRates
from fx.settings import FXSettings, PairSettings
from gateway.testing.redis import StoreCase
from schemas.errors import FXError, QuoteExpired, QuoteInvalid, RefundExceedsPayment

T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
RATES = StaticRates.from_strings(
    {"KRW/CNY": "0.005234", "USD/KRW": "1385.20", "USD/EUR": "0.9210", "USD/JPY": "151.30"}
)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(clock: Clock, store_case: StoreCase) -> QuoteService:
    settings = FXSettings(
        default_spread_bps=50,
        pairs={"KRW/CNY": PairSettings(spread_bps=80), "USD/KRW": PairSettings(spread_bps=0, rounding="half_even")},
    )
    return QuoteService(RATES, store_case.store, settings, clock=clock)


KRW_15000 = Money(15000, "KRW")


async def _redeem(
    svc: QuoteService,
    quote_id: str,
    consumer: str,
    partner_id: str = "alipay-cn",
    qr_fingerprint: str = "fp1",
    merchant_amount: Money = KRW_15000,
) -> Quote:
    return await svc.redeem(
        quote_id,
        consumer=consumer,
        partner_id=partner_id,
        qr_fingerprint=qr_fingerprint,
        merchant_amount=merchant_amount,
    )


async def _quote(svc: QuoteService, amount: Money = KRW_15000, to: str = "CNY") -> Quote:
    return await svc.quote(merchant_amount=amount, payer_currency=to, partner_id="alipay-cn", qr_fingerprint="fp1")


async def test_quote_spread_is_charged_to_the_payer_and_rounded_once(service: QuoteService) -> None:
    q = await _quote(service)
    # 0.005234 x 1.008 = 0.005275872; 15000 KRW x that = 79.13808 CNY -> 7914 fen (half-up)
    assert (q.mid_rate, q.spread_bps, q.rate) == (Decimal("0.005234"), 80, Decimal("0.005275872"))
    assert q.payer_amount == Money(7914, "CNY")
    assert q.expires_at - q.created_at == timedelta(seconds=60)
    wire = q.to_wire()
    assert wire["rate"] == "0.005275872" and wire["mid_rate"] == "0.005234" and wire["spread_bps"] == 80
    assert wire["payer_amount"] == {"currency": "CNY", "value": "7914"}
    assert wire["expires_at"] == "2026-11-23T03:01:00.000Z" and "partner_id" not in wire
    assert Quote.from_wire(wire).rate == q.rate and Quote.from_wire(wire).payer_amount == q.payer_amount


async def test_pair_rounding_and_cross_rates_through_usd(service: QuoteService) -> None:
    q = await _quote(service, Money(300, "USD"), "KRW")  # spread 0, 3 x 1385.20 = 4155.6 -> 4156
    assert q.payer_amount == Money(4156, "KRW")
    q = await _quote(service, Money(100000, "KRW"), "EUR")  # (1/1385.20) x 0.9210 x 1.005, cross via USD
    # 0.9210 / 1385.20 = 0.000664885937049...; 100000 KRW x that x 1.005 = 66.82103... EUR
    assert q.mid_rate == Decimal("0.000664885937049") and q.payer_amount == Money(6682, "EUR")
    with pytest.raises(FXError, match="JPY/CNY"):  # one hop through the pivot only: no USD/CNY quoted
        await _quote(service, Money(10000, "JPY"), "CNY")


async def test_unknown_currency_or_pair_and_dust_are_refused(service: QuoteService) -> None:
    for amount, to in ((Money(100, "USD"), "XAU"), (Money(100, "USD"), "ZZZ"), (Money(100, "USD"), "BHD")):
        with pytest.raises(FXError) as err:
            await _quote(service, amount, to)
        assert err.value.code == "CURRENCY_UNSUPPORTED"
    with pytest.raises(FXError):
        await _quote(service, Money(1, "KRW"), "USD")  # 0.07 cent: less than a minor unit


async def test_redeem_once_then_used_and_repeat_by_same_consumer(service: QuoteService) -> None:
    q = await _quote(service)
    got = await _redeem(service, q.quote_id, "pay_1")
    assert got.payer_amount == q.payer_amount and got.rate == q.rate
    assert (await _redeem(service, q.quote_id, "pay_1")).quote_id == q.quote_id
    with pytest.raises(QuoteInvalid, match="used"):
        await _redeem(service, q.quote_id, "pay_2")
    await service.unredeem(q.quote_id, "pay_1")  # payment rejected: the quote is free again
    assert (await _redeem(service, q.quote_id, "pay_2")).quote_id == q.quote_id


@pytest.mark.parametrize(
    "other",
    [
        {"partner_id": "kakaopay-kr"},
        {"qr_fingerprint": "fp2"},
        {"merchant_amount": Money(15001, "KRW")},
        {"merchant_amount": Money(15000, "JPY")},
    ],
)
async def test_redeem_by_another_partner_qr_or_amount_is_refused(
    service: QuoteService, other: dict[str, object]
) -> None:
    q = await _quote(service)
    with pytest.raises(QuoteInvalid) as err:
        await _redeem(service, q.quote_id, "pay_1", **other)  # type: ignore[arg-type]
    assert err.value.code == "QUOTE_INVALID"
    assert (await _redeem(service, q.quote_id, "pay_1")).quote_id == q.quote_id  # nothing consumed


async def test_expired_and_unknown_quotes(service: QuoteService, clock: Clock) -> None:
    q = await _quote(service)
    clock.now = T0 + timedelta(seconds=59, microseconds=999_000)
    fresh = await _quote(service)
    assert (await _redeem(service, fresh.quote_id, "p")).quote_id == fresh.quote_id
    clock.now = T0 + timedelta(seconds=60)
    with pytest.raises(QuoteExpired) as err:
        await _redeem(service, q.quote_id, "pay_1")
    assert err.value.code == "QUOTE_EXPIRED"
    with pytest.raises(QuoteInvalid):
        await _redeem(service, "qt_unknown", "pay_1")


# --- refunds ----------------------------------------------------------------------------------------
def _refund(rate: str, refund: int, before: int, before_p: int, paid_p: int, paid_m: int) -> Money:
    return refund_payer_amount(
        rate_quote={"rate": rate},
        refund=Money(refund, "KRW"),
        refunded_before=Money(before, "KRW"),
        refunded_payer_before=Money(before_p, "CNY"),
        paid_payer=Money(paid_p, "CNY"),
        paid_merchant=Money(paid_m, "KRW"),
    )


def test_refunds_at_the_original_rate_never_drift() -> None:
    # paid 15000 KRW = 7914 fen at 0.005275872; three refunds of 5000 KRW
    first = _refund("0.005275872", 5000, 0, 0, 7914, 15000)  # 26.37936 -> 2638
    second = _refund("0.005275872", 5000, 5000, first.minor, 7914, 15000)  # cumulative 52.75872 -> 5276
    third = _refund("0.005275872", 5000, 10000, first.minor + second.minor, 7914, 15000)
    assert (first.minor, second.minor, third.minor) == (2638, 2638, 2638)
    assert first.minor + second.minor + third.minor == 7914
    assert _refund("0.005275872", 15000, 0, 0, 7914, 15000) == Money(7914, "CNY")  # full: exactly what was paid
    with pytest.raises(RefundExceedsPayment):
        _refund("0.005275872", 5001, 10000, 5276, 7914, 15000)


@given(
    paid_m=st.integers(min_value=1, max_value=10**9),
    rate=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("2000"), places=6),
    cuts=st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=8),
)
def test_refunds_never_exceed_the_payment_and_a_full_refund_returns_it(
    paid_m: int, rate: Decimal, cuts: list[int]
) -> None:
    from fx.quotes import convert

    paid_p = convert(Money(paid_m, "KRW"), rate, "CNY").minor
    done_m = done_p = 0
    for cut in cuts:
        amount = min(cut, paid_m - done_m)
        if amount == 0:
            break
        got = _refund(str(rate), amount, done_m, done_p, paid_p, paid_m)
        assert got.minor >= 0
        done_m, done_p = done_m + amount, done_p + got.minor
        assert done_p <= paid_p
    if done_m < paid_m:
        done_p += _refund(str(rate), paid_m - done_m, done_m, done_p, paid_p, paid_m).minor
    assert done_p == paid_p
