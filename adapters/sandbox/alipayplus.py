"""Sandbox partner of the ``alipayplus`` family: an MPP (wallet) and an ACQP (acquirer) that
Alipay+ — here the gateway — calls. RSA256 signatures both ways; every scalar a string;
results as ``{"resultCode", "resultStatus", "resultMessage"}`` with HTTP 200."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from adapters.sandbox import ledger as L
from adapters.sandbox.ledger import Answer
from adapters.sandbox.qrgw import parse_json
from adapters.sandbox.server import SandboxPartner, Wire
from gateway.signing import alipay_key_version, alipay_sign, alipay_verify
from schemas import alipayplus as A
from schemas.errors import (
    InvalidJSON,
    KeyUnknown,
    QrgwError,
    SignatureInvalid,
    SignatureMissing,
    ValidationFailed,
)

CODES = {
    L.INSUFFICIENT: "USER_BALANCE_NOT_ENOUGH",
    L.NO_PAYER: "USER_NOT_EXIST",
    L.CLOSED: "ORDER_IS_CLOSED",
    L.NOT_FOUND: "ORDER_NOT_EXIST",
    L.EXCEEDS: "REFUND_AMOUNT_EXCEED",
    L.INCONSISTENT: "REPEAT_REQ_INCONSISTENT",
    L.CURRENCY: "CURRENCY_NOT_SUPPORT",
}
_BODIES: dict[str, type[BaseModel]] = {
    "pay": A.PayRequest,
    "inquire": A.PaymentIdRequest,
    "cancel": A.PaymentIdRequest,
    "refund": A.RefundRequest,
    "notify": A.NotifyPaymentRequest,
    "inquire_credit": A.InquiryNotifyRequest,
    "reverse": A.NotifyRefundRequest,
}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def result(status: str, code: str, message: str | None = None) -> dict[str, str]:
    return {
        "resultCode": code,
        "resultStatus": status,
        "resultMessage": message or code.lower().replace("_", " "),
    }


def ok() -> dict[str, str]:
    return result("S", "SUCCESS", "success")


def failed(ans: Answer) -> dict[str, str]:
    return result("F", CODES.get(ans.code or "", ans.code or "PROCESS_FAIL"), ans.message)


class AlipayPlusSandbox(SandboxPartner):
    family = "alipayplus"
    ROUTES = (
        ("POST", A.PAY, "pay"),
        ("POST", A.INQUIRY, "inquire"),
        ("POST", A.CANCEL, "cancel"),
        ("POST", A.REFUND, "refund"),
        ("POST", A.NOTIFY_PAYMENT, "notify"),
        ("POST", A.INQUIRY_NOTIFY, "inquire_credit"),
        ("POST", A.NOTIFY_REFUND, "reverse"),
    )

    async def authenticate(self, request: web.Request, body: bytes) -> None:
        client_id = request.headers.get("Client-Id", "")
        if client_id != self.cfg.client_id:
            raise SignatureInvalid("Client-Id is not this partner's", alipay_code="INVALID_CLIENT")
        request_time = request.headers.get("Request-Time")
        version = alipay_key_version(request.headers.get("Signature", ""))
        if not request_time or version is None:
            raise SignatureMissing("Request-Time or Signature missing", alipay_code="INVALID_SIGNATURE")
        keys = [k for k in self.cfg.gateway_keys if k.key_version in (version, None)]
        if not keys:
            raise KeyUnknown(f"no gateway key with keyVersion {version}", alipay_code="KEY_NOT_FOUND")
        for key in keys:
            if alipay_verify(
                key,
                method=request.method,
                uri=request.path,
                client_id=client_id,
                request_time=request_time,
                body=body,
                header=request.headers["Signature"],
            ):
                return
        raise SignatureInvalid("signature does not verify", alipay_code="INVALID_SIGNATURE")

    def parse(self, op: str, request: web.Request, body: bytes) -> tuple[tuple[str, ...], Any]:
        msg = parse_json(body, _BODIES[op])
        ids = tuple(
            str(getattr(msg, k))
            for k in ("paymentRequestId", "refundRequestId", "paymentId")
            if getattr(msg, k, None)
        )
        return ids, msg

    def execute(self, op: str, msg: Any) -> Wire:
        led = self.ledger
        if op == "pay":
            p: A.PayRequest = msg
            a = led.debit(
                p.paymentRequestId,
                p.order.referenceOrderId,
                p.customerId,
                p.payToAmount.minor,
                p.payToAmount.currency,
            )
            if not a.ok:
                return 200, {"result": failed(a)}
            return 200, {"result": ok(), "paymentId": a.ref, "paymentTime": now(), "customerId": p.customerId}
        if op == "inquire":
            d = led.inquire_debit(msg.paymentRequestId)
            if d is None:
                return 200, {"result": failed(Answer("FAILED", code=L.NOT_FOUND, message="order not exist"))}
            doc: dict[str, Any] = {"result": ok(), "paymentId": d.ref}
            if d.cancelled:
                doc["paymentResult"] = result("F", "ORDER_IS_CLOSED", "payment cancelled")
            elif d.answer.ok:
                doc |= {
                    "paymentResult": ok(),
                    "paymentTime": now(),
                    "payToAmount": {"currency": d.currency, "value": str(d.amount)},
                }
            else:
                doc["paymentResult"] = failed(d.answer)
            return 200, doc
        if op == "cancel":
            a = led.cancel_debit(msg.paymentRequestId)
            return 200, ({"result": ok(), "cancelTime": now()} if a.ok else {"result": failed(a)})
        if op == "refund":
            r: A.RefundRequest = msg
            a = led.refund(
                r.refundRequestId, r.paymentRequestId, r.refundAmount.minor, r.refundAmount.currency
            )
            if not a.ok:
                return 200, {"result": failed(a)}
            return 200, {"result": ok(), "refundId": a.ref, "refundTime": now()}
        if op == "notify":
            n: A.NotifyPaymentRequest = msg
            if n.paymentResult.resultStatus != "S":
                return 200, {"result": ok()}  # a failed payment: acknowledged, nothing to credit
            merchant = n.referenceMerchantId or "unknown-merchant"
            a = led.credit(
                n.paymentRequestId, n.paymentId, merchant, n.paymentAmount.minor, n.paymentAmount.currency
            )
            return 200, {"result": ok() if a.ok else failed(a)}
        if op == "inquire_credit":
            c = led.inquire_credit(msg.paymentRequestId)
            if c is None or not c.answer.ok:
                return 200, {"result": failed(c.answer if c else Answer("FAILED", code=L.NOT_FOUND))}
            return 200, {"result": ok(), "paymentAmount": {"currency": c.currency, "value": str(c.amount)}}
        if op == "reverse":
            v: A.NotifyRefundRequest = msg
            a = led.reverse(
                v.paymentRequestId, v.refundRequestId, v.refundAmount.minor, v.refundAmount.currency
            )
            return 200, ({"result": ok(), "refundId": a.ref} if a.ok else {"result": failed(a)})
        raise AssertionError(op)

    def unknown(self, op: str, msg: Any) -> Wire:
        return 200, {"result": result("U", "UNKNOWN_EXCEPTION", "sandbox: injected unknown")}

    def refused(self, op: str, msg: Any, code: str) -> Wire:
        return 200, {"result": result("F", code, "sandbox: injected failure")}

    def error(self, exc: QrgwError) -> Wire:
        code = exc.extra.get("alipay_code")
        if code is None:
            code = "PARAM_ILLEGAL" if isinstance(exc, InvalidJSON | ValidationFailed) else "PROCESS_FAIL"
        return 200, {"result": result("F", str(code), exc.detail)}

    def sign(self, request: web.Request, status: int, headers: dict[str, str], body: bytes) -> None:
        client_id = self.cfg.client_id or self.partner_id
        response_time = now()
        headers["Client-Id"] = client_id
        headers["Response-Time"] = response_time
        headers["Signature"] = alipay_sign(
            self.cfg.signer,
            method=request.method,
            uri=request.path,
            client_id=client_id,
            request_time=response_time,
            body=body,
            key_version=self.cfg.key_version,
        )
