"""Wire shape of money (PROTOCOL.md §3): ``{"currency": "KRW", "value": "15000"}``.

Only the format is checked here; whether the currency exists and what its exponent is
belongs to ``fx.currency`` (a higher layer).

An amount a partner sends is at most ``MAX_MINOR_UNITS`` (15 digits of minor units, in every
currency; docs/fx.md): the check runs when a model is validated with the ``EDGE`` context
(``gateway.api.edge.read_json``), so amounts the gateway computes itself are not refused.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

CURRENCY_PATTERN = r"^[A-Z]{3}$"
MINOR_UNITS_PATTERN = r"^(0|[1-9][0-9]{0,30})$"
# 15 digits: a product with any rate we quote (<= 13 significant digits) stays inside the 28
# digits of the default Decimal context, so conversion is exact.
MAX_MINOR_UNITS = 10**15 - 1
EDGE: dict[str, Any] = {"edge": True}  # validation context of partner input
AMOUNT_TOO_LARGE = "amount_too_large"  # pydantic error type; read_json answers it AMOUNT_TOO_LARGE


class MoneyModel(BaseModel):
    """An amount in minor units of an ISO 4217 currency, as a string of a non-negative integer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    currency: str = Field(pattern=CURRENCY_PATTERN, examples=["KRW"])
    value: str = Field(pattern=MINOR_UNITS_PATTERN, examples=["15000"])

    @field_validator("value")
    @classmethod
    def _at_most_max(cls, v: str, info: ValidationInfo) -> str:
        if isinstance(info.context, dict) and info.context.get("edge") and len(v) > len(str(MAX_MINOR_UNITS)):
            raise PydanticCustomError(
                AMOUNT_TOO_LARGE, "amount exceeds the maximum of {max} minor units", {"max": MAX_MINOR_UNITS}
            )
        return v

    @property
    def minor(self) -> int:
        return int(self.value)

    @classmethod
    def of(cls, currency: str, minor: int) -> MoneyModel:
        if minor < 0:
            raise ValueError("money is never negative on the wire")
        return cls(currency=currency, value=str(minor))
