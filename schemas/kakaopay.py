"""Kakao Pay-style wire messages (``/online/v1/payment/...``), server to server.

Kakao Pay conventions kept: snake_case names, ``cid`` (the merchant code the gateway holds at
the partner), ``tid`` (the partner's transaction id), ``partner_order_id`` / ``partner_user_id``
(our ids), integer amounts in KRW (``total_amount``, ``tax_free_amount``), partial cancels with
``cancel_amount`` / ``cancel_tax_free_amount``, errors as ``{"error_code": <negative int>,
"error_message"}`` with HTTP 400. Extensions for a QR payment already confirmed by the payer
in the wallet app (no ``ready``/``pg_token`` redirect): documented in docs/adapters.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

APPROVE = "/online/v1/payment/qr/approve"
ORDER = "/online/v1/payment/order"
CANCEL = "/online/v1/payment/cancel"
CREDIT = "/online/v1/payment/merchant/credit"
CREDIT_ORDER = "/online/v1/payment/merchant/order"
CREDIT_CANCEL = "/online/v1/payment/merchant/cancel"

PaymentState = Literal[
    "SUCCESS_PAYMENT", "CANCEL_PAYMENT", "PART_CANCEL_PAYMENT", "FAIL_PAYMENT", "QUIT_PAYMENT", "IN_PROGRESS"
]
# error_code values the sandbox (and our adapter) use. Negative, as Kakao Pay's are.
ERR_NOT_FOUND = -780  # no such order / tid
ERR_INSUFFICIENT = -797  # payer balance too low
ERR_USER = -798  # partner_user_id unknown
ERR_CLOSED = -702  # order already cancelled (a late approve after a cancel)
ERR_EXCEEDS = -721  # cancel_amount larger than what remains
ERR_INCONSISTENT = -722  # same id, different content
ERR_PARAM = -2  # bad parameter
ERR_REFUSED = -799  # refused for a reason of the payment method or merchant: extras.method_result_code
ERR_AUTH = -401  # SECRET_KEY or signature wrong
ERR_SYSTEM = -9798  # temporary system error: outcome unknown

Amount = Field(ge=0, le=10**15)
ID = Field(min_length=1, max_length=128)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ApproveRequest(_Request):
    cid: str = ID
    partner_order_id: str = ID  # our debit id: the idempotency key
    partner_user_id: str = ID  # the payer at the wallet
    item_name: str = Field(min_length=1, max_length=100)
    quantity: int = Field(default=1, ge=1)
    total_amount: int = Amount
    tax_free_amount: int = Amount
    currency: str = Field(default="KRW", pattern=r"^[A-Z]{3}$")
    payment_id: str | None = None  # the gateway's payment id, for the partner's records


class PaymentAmount(_Answer):
    total: int
    tax_free: int = 0


class ApproveResponse(_Answer):
    aid: str | None = None
    tid: str
    cid: str
    partner_order_id: str
    status: PaymentState
    amount: PaymentAmount
    approved_at: str | None = None


class OrderRequest(_Request):
    cid: str = ID
    tid: str | None = None
    partner_order_id: str | None = None


class OrderResponse(_Answer):
    tid: str | None = None
    cid: str
    partner_order_id: str
    status: PaymentState
    amount: PaymentAmount | None = None
    canceled_amount: PaymentAmount | None = None
    cancel_available_amount: PaymentAmount | None = None


class CancelRequest(_Request):
    """Without ``partner_cancel_id``: cancel the whole order (recorded even if never received).
    With it: a partial cancel (a refund) idempotent on that id."""

    cid: str = ID
    tid: str | None = None
    partner_order_id: str = ID
    partner_cancel_id: str | None = None
    cancel_amount: int = Amount
    cancel_tax_free_amount: int = Amount
    cancel_vat_amount: int | None = None


class CancelResponse(_Answer):
    tid: str | None = None
    cid: str
    partner_order_id: str
    status: PaymentState
    canceled_amount: PaymentAmount | None = None
    cancel_available_amount: PaymentAmount | None = None
    canceled_at: str | None = None


class CreditRequest(_Request):
    """The gateway tells the acquirer its merchant is paid (merchant currency, integer)."""

    cid: str = ID
    partner_order_id: str = ID  # our credit id
    merchant_id: str = ID
    merchant_name: str
    total_amount: int = Amount
    tax_free_amount: int = Amount
    currency: str = Field(default="KRW", pattern=r"^[A-Z]{3}$")
    payment_id: str = ID


class ErrorBody(_Answer):
    error_code: int
    error_message: str = ""
    extras: dict[str, Any] | None = None
