"""Wire shape of money (PROTOCOL.md §3): ``{"currency": "KRW", "value": "15000"}``.

Only the format is checked here; whether the currency exists and what its exponent is
belongs to ``fx.currency`` (a higher layer).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

CURRENCY_PATTERN = r"^[A-Z]{3}$"
MINOR_UNITS_PATTERN = r"^(0|[1-9][0-9]{0,30})$"


class MoneyModel(BaseModel):
    """An amount in minor units of an ISO 4217 currency, as a string of a non-negative integer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    currency: str = Field(pattern=CURRENCY_PATTERN, examples=["KRW"])
    value: str = Field(pattern=MINOR_UNITS_PATTERN, examples=["15000"])

    @property
    def minor(self) -> int:
        return int(self.value)

    @classmethod
    def of(cls, currency: str, minor: int) -> MoneyModel:
        if minor < 0:
            raise ValueError("money is never negative on the wire")
        return cls(currency=currency, value=str(minor))
