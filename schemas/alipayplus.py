"""Alipay+ wire messages (the gateway plays Alipay+ towards MPP wallets and ACQP acquirers).

Alipay+ rules kept here: every scalar is a string; amounts are ``{"currency", "value"}`` in
minor units; optional fields are omitted (``dump`` drops ``None``), never sent as ``""``.
Requests are strict; answers tolerant of extra fields.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.money import MoneyModel

ResultStatus = Literal["S", "F", "U"]
# Result codes whose resultStatus is U, or that mean "unknown" whatever the status says.
UNKNOWN_CODES = frozenset({"UNKNOWN_EXCEPTION", "REQUEST_TRAFFIC_EXCEED_LIMIT", "PAYMENT_IN_PROCESS"})
NOT_FOUND_CODES = frozenset({"ORDER_NOT_EXIST", "PAYMENT_NOT_EXIST"})

PAY = "/aps/api/v1/payments/pay"
INQUIRY = "/aps/api/v1/payments/inquiryPayment"
CANCEL = "/aps/api/v1/payments/cancelPayment"
REFUND = "/aps/api/v1/payments/refund"
NOTIFY_PAYMENT = "/aps/api/v1/payments/notifyPayment"
NOTIFY_REFUND = "/aps/api/v1/payments/notifyRefund"
INQUIRY_NOTIFY = "/aps/api/v1/payments/inquiryNotifyPayment"

S64 = Field(min_length=1, max_length=64)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def dump(self) -> dict[str, Any]:
        """The JSON object to send: optional fields omitted, never ``""``."""
        return self.model_dump(mode="json", exclude_none=True)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class Result(_Answer):
    resultCode: str = S64
    resultStatus: ResultStatus
    resultMessage: str | None = None

    @classmethod
    def ok(cls) -> Result:
        return cls(resultCode="SUCCESS", resultStatus="S", resultMessage="success")


class PaymentQuote(_Request):
    quoteId: str = S64
    quoteCurrencyPair: str = Field(pattern=r"^[A-Z]{3}/[A-Z]{3}$")
    quotePrice: str = Field(pattern=r"^[0-9]+(\.[0-9]+)?$")
    quoteStartTime: str | None = None
    quoteExpiryTime: str | None = None


class Address(_Request):
    region: str = Field(pattern=r"^[A-Z]{2}$")
    city: str | None = None


class OrderMerchant(_Request):
    referenceMerchantId: str = S64
    merchantName: str
    merchantMCC: str | None = None
    merchantAddress: Address | None = None


class Order(_Request):
    referenceOrderId: str = S64
    orderDescription: str
    orderAmount: MoneyModel
    merchant: OrderMerchant


class PayRequest(_Request):
    """Alipay+ → MPP ``pay``: debit ``payToAmount`` (wallet currency) from ``customerId``."""

    acquirerId: str = S64
    pspId: str = S64
    paymentRequestId: str = S64
    order: Order
    paymentAmount: MoneyModel  # what the merchant is to receive (order currency)
    payToAmount: MoneyModel  # what the MPP deducts from the user (MPP currency)
    paymentQuote: PaymentQuote | None = None
    customerId: str = Field(min_length=1, max_length=128)
    paymentExpiryTime: str | None = None


class PayResponse(_Answer):
    result: Result
    paymentId: str | None = None
    paymentTime: str | None = None
    customerId: str | None = None


class PaymentIdRequest(_Request):
    """``inquiryPayment`` / ``cancelPayment`` to the MPP: the original paymentRequestId."""

    acquirerId: str = S64
    pspId: str = S64
    paymentRequestId: str = S64


class InquiryResponse(_Answer):
    result: Result
    paymentResult: Result | None = None
    paymentId: str | None = None
    paymentTime: str | None = None
    paymentAmount: MoneyModel | None = None
    payToAmount: MoneyModel | None = None


class CancelResponse(_Answer):
    result: Result
    cancelTime: str | None = None


class RefundRequest(_Request):
    acquirerId: str = S64
    pspId: str = S64
    paymentRequestId: str = S64
    refundRequestId: str = S64
    refundAmount: MoneyModel  # MPP currency (what goes back to the user)
    refundReason: str | None = None


class RefundResponse(_Answer):
    result: Result
    refundId: str | None = None
    refundTime: str | None = None


class NotifyPaymentRequest(_Request):
    """Alipay+ → ACQP ``notifyPayment``: the payment succeeded; credit the merchant."""

    paymentResult: Result
    paymentRequestId: str = S64  # the ACQP-side order id (our credit id)
    paymentId: str = S64  # Alipay+'s id (the gateway's payment id)
    acquirerId: str = S64
    pspId: str = S64
    paymentAmount: MoneyModel  # merchant currency
    paymentTime: str
    referenceMerchantId: str | None = None


class NotifyRefundRequest(_Request):
    """Alipay+ → ACQP ``notifyRefund``: take ``refundAmount`` back from the merchant."""

    refundResult: Result
    paymentRequestId: str = S64
    refundRequestId: str = S64
    refundAmount: MoneyModel  # merchant currency
    refundTime: str
    refundReason: str | None = None  # "CANCEL" for a cancel, "REFUND" for a refund


class InquiryNotifyRequest(_Request):
    paymentRequestId: str = S64


class AckResponse(_Answer):
    """The ACQP's answer to a notification (``result`` only; ``refundId`` on a refund)."""

    result: Result
    refundId: str | None = None
    paymentAmount: MoneyModel | None = None
