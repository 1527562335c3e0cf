"""Request and response bodies of the gateway API (PROTOCOL.md §5).

The OpenAPI document (``/openapi.json``) is generated from these models, so the published
contract and the validation the gateway applies are one and the same.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.money import CURRENCY_PATTERN, MoneyModel
from schemas.payment import Failure, Payer, PaymentRecord, PaymentStatus

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
QR_MAX = 512  # EMVCo MPM payloads are at most 512 characters


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- requests ---------------------------------------------------------------------------------------
class DecodeRequest(_In):
    qr: str = Field(min_length=1, max_length=QR_MAX)


class QuoteRequest(_In):
    qr: str = Field(min_length=1, max_length=QR_MAX)
    amount: MoneyModel | None = Field(default=None, description="Merchant currency; required for a static QR")
    payer_currency: str = Field(pattern=CURRENCY_PATTERN)


class PaymentRequest(_In):
    payment_request_id: str = Field(pattern=ID_PATTERN, description="Idempotency key, unique per partner")
    qr: str = Field(min_length=1, max_length=QR_MAX)
    amount: MoneyModel | None = Field(
        default=None, description="Merchant currency: required for a static QR; equal to tag 54 if given"
    )
    quote_id: str | None = Field(default=None, min_length=1, max_length=128)
    payer: Payer
    payer_currency: str = Field(pattern=CURRENCY_PATTERN)


class CancelRequest(_In):
    cancel_request_id: str = Field(pattern=ID_PATTERN)


class RefundRequest(_In):
    refund_request_id: str = Field(pattern=ID_PATTERN)
    amount: MoneyModel = Field(description="Merchant currency")


# --- responses --------------------------------------------------------------------------------------
class QuoteView(_Out):
    model_config = ConfigDict(frozen=True, extra="allow")

    quote_id: str
    merchant_amount: MoneyModel
    payer_amount: MoneyModel
    rate: str = Field(description="Decimal string, spread included")
    expires_at: datetime


class RouteView(_Out):
    wallet: str
    acquirer: str
    kind: Literal["domestic", "cross-border"]


class MerchantView(_Out):
    name: str
    city: str
    country: str


class RefundView(_Out):
    refund_id: str
    refund_request_id: str
    amount: MoneyModel
    payer_amount: MoneyModel
    status: Literal["PROCESSING", "SUCCEEDED", "FAILED"]
    failure: Failure | None = None
    created_at: datetime
    updated_at: datetime


class CancelView(_Out):
    cancel_request_id: str
    status: Literal["PROCESSING", "SUCCEEDED", "FAILED"]
    failure: Failure | None = None
    created_at: datetime
    updated_at: datetime


class PaymentView(_Out):
    """The public view of a payment; internal stages, legs and reservations never leak."""

    payment_id: str
    payment_request_id: str
    status: PaymentStatus
    route: RouteView
    merchant: MerchantView
    merchant_amount: MoneyModel
    payer_amount: MoneyModel
    quote: dict[str, Any] | None = Field(default=None, description="The locked quote, when cross-border")
    failure: Failure | None = None
    refunds: list[RefundView] = Field(default_factory=list)
    cancel: CancelView | None = None
    flags: list[str] = Field(default_factory=list, description="FX policy flags (e.g. reporting)")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, rec: PaymentRecord) -> PaymentView:
        return cls(
            payment_id=rec.payment_id,
            payment_request_id=rec.payment_request_id,
            status=rec.status,
            route=RouteView(wallet=rec.route.wallet, acquirer=rec.route.acquirer, kind=rec.route.kind),
            merchant=MerchantView(name=rec.merchant.name, city=rec.merchant.city, country=rec.merchant.country),
            merchant_amount=rec.merchant_amount,
            payer_amount=rec.payer_amount,
            quote=rec.quote,
            failure=rec.failure if rec.status == PaymentStatus.FAILED else None,
            refunds=[
                RefundView(
                    refund_id=r.refund_id,
                    refund_request_id=r.refund_request_id,
                    amount=r.amount,
                    payer_amount=r.payer_amount,
                    status=r.status,
                    failure=r.failure,
                    created_at=r.created_at,
                    updated_at=r.updated_at,
                )
                for r in rec.refunds
            ],
            cancel=None
            if rec.cancel is None
            else CancelView(
                cancel_request_id=rec.cancel.cancel_request_id,
                status=rec.cancel.status,
                failure=rec.cancel.failure,
                created_at=rec.cancel.created_at,
                updated_at=rec.cancel.updated_at,
            ),
            flags=[f for f in rec.flags if not f.startswith("_")],
            created_at=rec.created_at,
            updated_at=rec.updated_at,
        )


class Problem(_Out):
    """RFC 9457 problem details (every error answer)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    type: str
    title: str
    status: int
    code: str
    detail: str
    instance: str | None = None


# --- GET /v1/limits (docs/fx.md) --------------------------------------------------------------------
class LimitRuleView(_Out):
    """One limit in force for the caller's payer; ``used``/``remaining``/``window_end`` for counted windows."""

    jurisdiction: str
    rule: str
    description: str
    applies_to: Literal["outbound", "inbound"]
    window: Literal["payment", "day", "year"]
    limit: MoneyModel
    used: MoneyModel | None = None
    remaining: MoneyModel | None = None
    window_end: str | None = Field(default=None, description="RFC 3339 UTC: when the window's counter starts over")
    source: str = Field(description="The legal source of the value")
    confirmed: bool = Field(description="False: the value (or its source) is assumed, not verified")
    rule_set: str = Field(description="effective_from of the rule set it comes from")


class NationalAllowanceView(_Out):
    status: Literal["ok", "unavailable"]
    year: int | None = None
    limit: MoneyModel | None = None
    used: MoneyModel | None = None
    remaining: MoneyModel | None = None


class LimitsView(_Out):
    payer_id: str
    identity: Literal["wallet", "national"]
    as_of: str = Field(description="RFC 3339 UTC")
    rules: list[LimitRuleView]
    national: NationalAllowanceView | None = Field(default=None, description="When a national registry is used")
