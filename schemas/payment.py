"""The persisted payment record and its state machine (PROTOCOL.md §5).

The public ``status`` follows the protocol's machine; the orchestrator's finer ``stage``
(debiting, crediting, reversing ...) lives beside it and never leaks to partners. The store
enforces ``LEGAL_TRANSITIONS`` on every compare-and-set, so an illegal change is an error,
never a silent overwrite. A self-transition (same status) is legal: it records progress
of a stage, a refund or a cancel without changing the public status.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.money import MoneyModel


class PaymentStatus(StrEnum):
    PROCESSING = "PROCESSING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"


S = PaymentStatus
LEGAL_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    S.PROCESSING: frozenset({S.PROCESSING, S.SUCCEEDED, S.FAILED}),
    S.SUCCEEDED: frozenset({S.SUCCEEDED, S.CANCELLED, S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.PARTIALLY_REFUNDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.FAILED: frozenset({S.FAILED}),
    S.CANCELLED: frozenset({S.CANCELLED}),
    S.REFUNDED: frozenset({S.REFUNDED}),
}
FINAL_STATUSES = frozenset({S.FAILED, S.CANCELLED, S.REFUNDED})


def is_legal(old: PaymentStatus, new: PaymentStatus) -> bool:
    return new in LEGAL_TRANSITIONS[old]


class Route(BaseModel):
    model_config = ConfigDict(frozen=True)

    wallet: str
    acquirer: str
    kind: Literal["domestic", "cross-border"]
    identifier: str = Field(description="Sub-tag 00 of the merchant account template that routed it")
    acquirer_country: str | None = Field(
        default=None,
        description="Country the acquirer acquires this merchant in (tag 58 checked against the acquirer's "
        "coverage): the FX policy's direction",
    )


class MerchantAccount(BaseModel):
    identifier: str
    fields: dict[str, str] = Field(default_factory=dict)


class Merchant(BaseModel):
    name: str
    city: str
    country: str
    account: MerchantAccount | None = None


class Payer(BaseModel):
    """The payer as its wallet knows it. ``id`` is the wallet's own id for it (unique per wallet,
    not across wallets); ``national_id_hash`` (docs/protocol-decisions.md) says two wallets'
    payers are one person. The optional fields are travel-rule data (docs/fx.md), required
    only when a payment crosses a threshold that names them."""

    id: str = Field(min_length=1, max_length=128)
    residency: Literal["resident", "non-resident"]
    country: str = Field(pattern=r"^[A-Z]{2}$")
    name: str | None = Field(default=None, max_length=140)
    national_id_hash: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="Lower-case hex SHA-256 of 'CC:national id'"
    )
    account: str | None = Field(default=None, min_length=1, max_length=64, description="Payer's account at its wallet")
    address: str | None = Field(default=None, min_length=1, max_length=280)
    date_of_birth: date | None = None


class Failure(BaseModel):
    code: str
    message: str


class HistoryEntry(BaseModel):
    at: datetime
    status: PaymentStatus
    stage: str
    reason: str


class RefundRecord(BaseModel):
    refund_id: str
    refund_request_id: str
    requested_by: str | None = Field(default=None, description="The caller; its request id's scope")
    amount: MoneyModel  # merchant currency
    payer_amount: MoneyModel
    status: Literal["PROCESSING", "SUCCEEDED", "FAILED"]
    stage: str = "created"
    failure: Failure | None = None
    created_at: datetime
    updated_at: datetime
    business_day: str


class CancelRecord(BaseModel):
    cancel_request_id: str
    requested_by: str | None = Field(default=None, description="The caller; its request id's scope")
    status: Literal["PROCESSING", "SUCCEEDED", "FAILED"]
    stage: str = "created"
    failure: Failure | None = None
    created_at: datetime
    updated_at: datetime
    business_day: str


class PaymentRecord(BaseModel):
    """Everything the gateway knows about one payment; one key in the store, changed only by CAS."""

    payment_id: str
    payment_request_id: str
    partner_id: str = Field(description="The partner that created it (its idempotency scope)")
    status: PaymentStatus = PaymentStatus.PROCESSING
    stage: str = "created"
    version: int = 0
    route: Route
    merchant: Merchant
    qr: str
    merchant_amount: MoneyModel
    payer_amount: MoneyModel
    quote: dict[str, Any] | None = None
    payer: Payer
    failure: Failure | None = None
    flags: list[str] = Field(default_factory=list)
    legs: dict[str, Any] = Field(default_factory=dict, description="debit/credit ids and their outcomes")
    reservation: dict[str, Any] | None = None
    refunds: list[RefundRecord] = Field(default_factory=list)
    cancel: CancelRecord | None = None
    history: list[HistoryEntry] = Field(default_factory=list)
    business_day: str = Field(description="YYYY-MM-DD in the gateway's business-day zone")
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime | None = Field(
        default=None, description="When recovery should next look at it (unknown outcomes back off)"
    )
