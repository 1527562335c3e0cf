"""Wire messages of the ``qrgw`` adapter family (PROTOCOL.md §8): gateway → partner calls.

Requests are strict (a sandbox or a partner rejects unknown fields); answers are read
tolerantly (extra fields ignored) so a partner may add to them without breaking us.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.money import MoneyModel

PartnerStatus = Literal["SUCCEEDED", "FAILED", "PROCESSING"]
ID = r"^[A-Za-z0-9_.:-]{1,128}$"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class PartnerFailure(_Answer):
    code: str = Field(min_length=1, max_length=64)
    message: str = ""


class DebitPayer(_Request):
    id: str = Field(min_length=1, max_length=128)


class DebitMerchant(_Request):
    name: str
    city: str
    country: str = Field(pattern=r"^[A-Z]{2}$")


class CreditMerchantAccount(_Request):
    identifier: str
    fields: dict[str, str] = Field(default_factory=dict)


class CreditMerchant(_Request):
    account: CreditMerchantAccount
    name: str
    city: str
    country: str = Field(pattern=r"^[A-Z]{2}$")


class DebitBody(_Request):
    debit_id: str = Field(pattern=ID)
    payment_id: str = Field(pattern=ID)
    payer: DebitPayer
    amount: MoneyModel
    merchant_amount: MoneyModel
    quote: dict[str, object] | None = None
    merchant: DebitMerchant


class DebitAnswer(_Answer):
    debit_id: str
    status: PartnerStatus
    failure: PartnerFailure | None = None


class CancelAnswer(_Answer):
    debit_id: str
    status: Literal["CANCELLED", "FAILED", "PROCESSING"]
    failure: PartnerFailure | None = None


class RefundBody(_Request):
    refund_id: str = Field(pattern=ID)
    debit_id: str = Field(pattern=ID)
    amount: MoneyModel


class RefundAnswer(_Answer):
    refund_id: str
    status: PartnerStatus
    failure: PartnerFailure | None = None


class CreditBody(_Request):
    credit_id: str = Field(pattern=ID)
    payment_id: str = Field(pattern=ID)
    merchant: CreditMerchant
    amount: MoneyModel


class CreditAnswer(_Answer):
    credit_id: str
    status: PartnerStatus
    failure: PartnerFailure | None = None


class ReversalBody(_Request):
    reversal_id: str = Field(pattern=ID)
    amount: MoneyModel


class ReversalAnswer(_Answer):
    reversal_id: str
    status: PartnerStatus
    failure: PartnerFailure | None = None


class Problem(_Answer):
    """RFC 9457 problem document as partners answer it (only what we read)."""

    code: str | None = None
    detail: str | None = None
    status: int | None = None
