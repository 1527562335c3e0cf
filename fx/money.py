"""Money: an integer of minor units and an ISO 4217 currency. Never a float.

Conversions to and from decimals are exact (``from_decimal`` refuses anything finer than the
currency's minor unit); arithmetic and ordering across currencies raise TypeError.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from fx.currency import exponent
from schemas.money import MoneyModel

__all__ = ["Money"]


@dataclass(frozen=True, slots=True)
class Money:
    """``minor`` units of ``currency`` (validated: a payable ISO 4217 currency, an int)."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if type(self.minor) is not int:  # bool and float are refused, on purpose
            raise TypeError(f"Money.minor must be int, not {type(self.minor).__name__}")
        exponent(self.currency)  # FXError CURRENCY_UNSUPPORTED when unknown or not payable

    # -- wire -----------------------------------------------------------------------------------
    @classmethod
    def from_wire(cls, m: MoneyModel | Any) -> Money:
        """From the wire model (or a ``{"currency", "value"}`` mapping, validated as the model)."""
        model = m if isinstance(m, MoneyModel) else MoneyModel.model_validate(m)
        return cls(int(model.value), model.currency)

    def to_wire(self) -> MoneyModel:
        return MoneyModel.of(self.currency, self.minor)  # ValueError when negative

    def to_dict(self) -> dict[str, str]:
        return {"currency": self.currency, "value": str(self.minor)}

    # -- decimals -------------------------------------------------------------------------------
    @property
    def exponent(self) -> int:
        return exponent(self.currency)

    @classmethod
    def from_decimal(cls, amount: Decimal, currency: str) -> Money:
        """Exact: ``Decimal("15.05")`` CNY → 1505; ``Decimal("15.055")`` CNY → ValueError."""
        if not isinstance(amount, Decimal) or not amount.is_finite():
            raise ValueError(f"not a finite Decimal: {amount!r}")
        scaled = amount.scaleb(exponent(currency))
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{amount} {currency} is finer than its minor unit")
        return cls(int(scaled), currency)

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        """A major-unit decimal string (``"15.05"``) → Money, exactly; ValueError otherwise."""
        t = text.strip()
        if not t or any(c not in "0123456789.-" for c in t):
            raise ValueError(f"not a decimal amount: {text!r}")
        try:
            return cls.from_decimal(Decimal(t), currency)
        except InvalidOperation as exc:
            raise ValueError(f"not a decimal amount: {text!r}") from exc

    def to_decimal(self) -> Decimal:
        """Exact major-unit value (1505 CNY → Decimal("15.05"))."""
        return Decimal(self.minor).scaleb(-self.exponent)

    def __str__(self) -> str:
        e = self.exponent
        return f"{self.to_decimal():.{e}f} {self.currency}"

    # -- arithmetic (same currency only) --------------------------------------------------------
    def _same(self, other: object, op: str) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot {op} Money and {type(other).__name__}")
        if other.currency != self.currency:
            raise TypeError(f"cannot {op} {self.currency} and {other.currency}")
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.minor + self._same(other, "add").minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.minor - self._same(other, "subtract").minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        return self.minor < self._same(other, "compare").minor

    def __le__(self, other: Money) -> bool:
        return self.minor <= self._same(other, "compare").minor

    def __gt__(self, other: Money) -> bool:
        return self.minor > self._same(other, "compare").minor

    def __ge__(self, other: Money) -> bool:
        return self.minor >= self._same(other, "compare").minor

    def is_zero(self) -> bool:
        return self.minor == 0
