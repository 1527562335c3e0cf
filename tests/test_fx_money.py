"""Currencies, Money and exact conversion: hand-checked tables and rounding properties."""

from __future__ import annotations

from decimal import Decimal, localcontext

import iso4217
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fx.currency import by_numeric, currencies, exponent, is_known, is_payable
from fx.money import Money
from fx.quotes import convert
from schemas.errors import FXError
from schemas.money import MoneyModel


def test_every_active_iso4217_currency_is_known_with_numeric_and_exponent() -> None:
    table = currencies()
    assert len(table) == len(list(iso4217.Currency)) > 150
    assert (table["KRW"].numeric, exponent("KRW")) == ("410", 0)
    assert (table["JPY"].numeric, exponent("JPY")) == ("392", 0)
    assert (table["CNY"].numeric, exponent("CNY")) == ("156", 2)
    assert (exponent("USD"), exponent("EUR"), exponent("SGD"), exponent("HKD"), exponent("THB")) == (2, 2, 2, 2, 2)
    assert (exponent("KWD"), exponent("BHD")) == (3, 3)
    assert by_numeric("410") == "KRW" and by_numeric("36") == "AUD" and by_numeric("036") == "AUD"


def test_currencies_without_minor_units_are_known_but_not_payable() -> None:
    assert is_known("XAU") and not is_payable("XAU")
    with pytest.raises(FXError) as err:
        Money(1, "XAU")
    assert err.value.code == "CURRENCY_UNSUPPORTED"
    for bad in ("ABC", "krw", "", "999"):
        with pytest.raises(FXError):
            exponent(bad)
    with pytest.raises(FXError):
        by_numeric("000")


def test_money_validates_and_round_trips_the_wire() -> None:
    m = Money.from_wire(MoneyModel(currency="CNY", value="1505"))
    assert m == Money(1505, "CNY") and m.to_decimal() == Decimal("15.05") and str(m) == "15.05 CNY"
    assert m.to_wire() == MoneyModel(currency="CNY", value="1505")
    assert Money.from_wire({"currency": "KRW", "value": "15000"}).minor == 15000
    with pytest.raises(TypeError):
        Money(1.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(True, "USD")
    with pytest.raises(FXError):
        Money.from_wire({"currency": "ZZZ", "value": "1"})


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("15.05", "CNY", 1505),
        ("15000", "KRW", 15000),
        ("0.001", "KWD", 1),
        ("1.234", "BHD", 1234),
        ("12", "JPY", 12),
        ("15.50", "CNY", 1550),
        ("0", "USD", 0),
        ("123456789012345.67", "USD", 12345678901234567),
    ],
)
def test_decimal_conversions_are_exact(text: str, currency: str, minor: int) -> None:
    m = Money.parse(text, currency)
    assert m.minor == minor and Money.from_decimal(m.to_decimal(), currency) == m


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("15.055", "CNY"),
        ("1.5", "KRW"),
        ("0.0001", "KWD"),
        ("1e3", "USD"),
        ("NaN", "USD"),
        ("", "USD"),
        ("1,000", "KRW"),
    ],
)
def test_amounts_finer_than_the_minor_unit_or_not_decimal_are_refused(text: str, currency: str) -> None:
    with pytest.raises(ValueError):
        Money.parse(text, currency)


def test_arithmetic_across_currencies_is_a_type_error() -> None:
    a, b = Money(100, "USD"), Money(100, "EUR")
    assert a + Money(1, "USD") == Money(101, "USD") and a - Money(1, "USD") == Money(99, "USD")
    assert Money(1, "USD") < a <= a and a > Money(1, "USD") >= Money(1, "USD")
    for op in (lambda: a + b, lambda: a - b, lambda: a < b, lambda: a >= b, lambda: a + 1):  # type: ignore[operator]
        with pytest.raises(TypeError):
            op()
    assert a != b


# Hand-checked: merchant amount x rate, rounded once to the target's minor unit.
CASES = [
    # (amount minor, from, rate, to, rounding, expected minor)  # hand arithmetic
    (15000, "KRW", "0.005234", "CNY", "half_up", 7851),  # 78.51 CNY exactly
    (1, "KRW", "0.005234", "CNY", "half_up", 1),  # 0.5234 fen -> 1
    (95, "KRW", "0.005234", "CNY", "half_up", 50),  # 49.723 fen -> 50
    (100, "USD", "1385.5", "KRW", "half_up", 1386),  # 1385.5 exactly: boundary, up
    (300, "USD", "1385.5", "KRW", "half_up", 4157),  # 4156.5: half-up -> 4157
    (300, "USD", "1385.5", "KRW", "half_even", 4156),  # 4156.5: half-even -> 4156
    (300, "USD", "1385.5", "KRW", "down", 4156),
    (300, "USD", "1385.5", "KRW", "up", 4157),
    (100, "USD", "1385.4999", "KRW", "half_up", 1385),  # just below the boundary
    (100, "USD", "1385.5001", "KRW", "half_even", 1386),  # just above it
    (1234, "USD", "151.30", "JPY", "half_up", 1867),  # 1867.042 JPY
    (1000, "JPY", "0.006609", "USD", "half_up", 661),  # 6.609 USD
    (1005, "EUR", "0.3339", "KWD", "half_up", 3356),  # 3.355695 KWD -> 3355.695 fils
    (1234, "BHD", "2.6525", "USD", "half_up", 327),  # 3.273185 USD
    (1, "USD", "0.377", "BHD", "half_up", 4),  # 3.77 fils
    (10**15 - 1, "KRW", "0.000721", "USD", "half_up", 72100000000000),  # 720999999999.999279 USD
    (1, "KRW", "0.000222", "KWD", "half_up", 0),  # 0.222 fils: less than a minor unit
    (10**30, "JPY", "1", "JPY", "half_up", 10**30),
]


@pytest.mark.parametrize(("amount", "src", "rate", "dst", "rounding", "expected"), CASES)
def test_conversion_table(amount: int, src: str, rate: str, dst: str, rounding: str, expected: int) -> None:
    assert convert(Money(amount, src), Decimal(rate), dst, rounding) == Money(expected, dst)


CODES = ["KRW", "JPY", "CNY", "USD", "EUR", "KWD", "BHD"]


@given(
    amount=st.integers(min_value=0, max_value=10**18),
    src=st.sampled_from(CODES),
    dst=st.sampled_from(CODES),
    rate=st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("100000"), places=8),
    rounding=st.sampled_from(["half_up", "half_even", "down", "up"]),
)
def test_rounding_error_is_below_one_minor_unit(amount: int, src: str, dst: str, rate: Decimal, rounding: str) -> None:
    out = convert(Money(amount, src), rate, dst, rounding)
    with localcontext() as ctx:
        ctx.prec = 80  # exact for every drawn value
        exact = Decimal(amount).scaleb(-exponent(src)) * rate * Decimal(10) ** exponent(dst)
        err = abs(Decimal(out.minor) - exact)
    assert err < 1
    if rounding.startswith("half"):
        assert err <= Decimal("0.5")
