"""The ``alipayplus`` family adapter: the gateway in Alipay+'s seat.

Wallet (MPP) role: ``pay``, ``inquiryPayment``, ``cancelPayment``, ``refund``. Acquirer (ACQP)
role: ``notifyPayment`` (credit), ``inquiryNotifyPayment`` (did the ACQP record it?),
``notifyRefund`` (take back for a cancel or a refund). Requests carry ``Client-Id`` (the
partner's id in the integration), ``Request-Time`` and ``Signature: algorithm=RSA256,
keyVersion=N,signature=...`` over ``"POST <URI>\\n<Client-Id>.<Request-Time>.<body>"``; answers
must be signed the same way with ``Response-Time`` — except an answer whose ``resultStatus`` is
``F`` or ``U`` (Alipay+ does not always sign those; they can never make money move).

Result mapping: ``S`` → succeeded; ``F`` → failed(resultCode), except ``UNKNOWN_EXCEPTION``,
``REQUEST_TRAFFIC_EXCEED_LIMIT`` and ``PAYMENT_IN_PROCESS`` → unknown; ``U`` → unknown. For an
inquiry, ``result`` only says whether the inquiry worked: ``F ORDER_NOT_EXIST`` → failed
(not_found), other ``F`` → unknown, ``S`` → the ``paymentResult`` decides.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from adapters.base import AcquirerAdapter, CreditRequest, DebitRequest, Outcome, WalletAdapter
from adapters.common import dumps, guarded, merchant_ref, parse_as, read_json
from adapters.endpoint import PartnerEndpoint
from adapters.http import HttpResponse, OutboundHttp
from gateway.signing import KeyRegistry, alipay_key_version, alipay_sign, alipay_verify
from schemas import alipayplus as A
from schemas.errors import KeyUnknown, PartnerProtocolError
from schemas.money import MoneyModel

ACQUIRER_ID = "qrgw"  # the gateway aggregates acquirers: it is the acquirerId the MPP sees


def request_time() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def result_outcome(res: A.Result, ref: str | None = None, **detail: Any) -> Outcome:
    if res.resultStatus == "S":
        return Outcome.succeeded(ref, **detail)
    if res.resultStatus == "U" or res.resultCode in A.UNKNOWN_CODES:
        return Outcome.unknown(
            f"{res.resultCode}: {res.resultMessage or ''}".strip(), result_code=res.resultCode
        )
    return Outcome.failed(
        res.resultCode, res.resultMessage or "", not_found=res.resultCode in A.NOT_FOUND_CODES
    )


class AlipayPlusAdapter(WalletAdapter, AcquirerAdapter):
    def __init__(self, ep: PartnerEndpoint, registry: KeyRegistry, http: OutboundHttp) -> None:
        if not ep.client_id:
            raise ValueError(f"partner {ep.id}: the alipayplus family needs client_id")
        self.partner_id = ep.id
        self.ep = ep
        self.client_id = ep.client_id
        self.registry = registry
        self.signer = registry.signer_for("rsa-v1_5-sha256")  # Alipay+ RSA256; KeyUnknown if none
        self.http = http

    async def _post(self, op: str, path: str, msg: A._Request) -> dict[str, Any]:
        body = dumps(msg.dump())
        rt = request_time()
        headers = {
            "Content-Type": "application/json; charset=UTF-8",
            "Client-Id": self.client_id,
            "Request-Time": rt,
            "Signature": alipay_sign(
                self.signer,
                method="POST",
                uri=path,
                client_id=self.client_id,
                request_time=rt,
                body=body,
                key_version=self.ep.key_version,
            ),
        }
        resp = await self.http.call(self.ep, op, "POST", path, body=body, headers=headers)
        if resp.status_code >= 500:
            raise PartnerProtocolError(f"{op}: HTTP {resp.status_code}", partner=self.partner_id)
        doc = read_json(resp, self.partner_id, op)
        res = parse_as(_Envelope, doc, self.partner_id, op).result
        if not self._signed_ok(resp, path, op):
            if res.resultStatus == "S":
                raise PartnerProtocolError(
                    f"{op}: unsigned or badly signed S answer", partner=self.partner_id
                )
            # F/U answers may come unsigned; they are taken at face value (they move no money).
        return doc

    def _signed_ok(self, resp: HttpResponse, path: str, op: str) -> bool:
        header = resp.headers.get("Signature")
        if not header:
            return False
        version = alipay_key_version(header)
        rtime = resp.headers.get("Response-Time")
        cid = resp.headers.get("Client-Id")
        if version is None or not rtime or cid != self.client_id:
            return False
        try:
            key = self.registry.alipay_public(cid, version)
        except KeyUnknown:
            return False
        if key.partner_id != self.partner_id:
            return False
        return alipay_verify(
            key, method="POST", uri=path, client_id=cid, request_time=rtime, body=resp.content, header=header
        )

    # --- wallet (MPP) -------------------------------------------------------------------------------
    def _pay_request(self, req: DebitRequest) -> A.PayRequest:
        m = req.merchant
        acct = m.account
        merchant_id = merchant_ref(acct, req.payment_id)
        quote = None
        q = req.quote
        if (
            q is not None
            and req.amount.currency != req.merchant_amount.currency
            and q.get("rate") is not None
        ):
            quote = A.PaymentQuote(
                quoteId=str(q.get("quote_id") or req.payment_id),
                quoteCurrencyPair=f"{req.merchant_amount.currency}/{req.amount.currency}",
                quotePrice=str(q["rate"]),
                quoteStartTime=str(q["created_at"]) if q.get("created_at") else None,
                quoteExpiryTime=str(q["expires_at"]) if q.get("expires_at") else None,
            )
        return A.PayRequest(
            acquirerId=ACQUIRER_ID,
            pspId=self.client_id,
            paymentRequestId=req.debit_id,
            order=A.Order(
                referenceOrderId=req.payment_id,
                orderDescription=m.name,
                orderAmount=req.merchant_amount,
                merchant=A.OrderMerchant(
                    referenceMerchantId=merchant_id[:64],
                    merchantName=m.name,
                    merchantMCC=(acct.fields.get("mcc") if acct else None) or None,
                    merchantAddress=A.Address(region=m.country, city=m.city or None),
                ),
            ),
            paymentAmount=req.merchant_amount,
            payToAmount=req.amount,
            paymentQuote=quote,
            customerId=req.payer.id,
        )

    async def pay(self, req: DebitRequest) -> Outcome:
        try:
            msg = self._pay_request(req)
        except ValidationError as exc:
            return Outcome.failed(
                "INVALID_REQUEST", f"cannot express this debit in Alipay+: {exc.errors()[0]['msg']}"
            )

        async def run() -> Outcome:
            doc = await self._post("pay", A.PAY, msg)
            ans = parse_as(A.PayResponse, doc, self.partner_id, "pay")
            if ans.result.resultStatus == "S" and not ans.paymentId:
                raise PartnerProtocolError("pay: S without paymentId", partner=self.partner_id)
            return result_outcome(ans.result, ans.paymentId)

        return await guarded(self.http, self.ep, "pay", run)

    def _ids(self, debit_id: str) -> A.PaymentIdRequest:
        return A.PaymentIdRequest(acquirerId=ACQUIRER_ID, pspId=self.client_id, paymentRequestId=debit_id)

    async def inquire(self, debit_id: str) -> Outcome:
        async def run() -> Outcome:
            doc = await self._post("inquire", A.INQUIRY, self._ids(debit_id))
            ans = parse_as(A.InquiryResponse, doc, self.partner_id, "inquire")
            if ans.result.resultStatus != "S":
                if ans.result.resultCode in A.NOT_FOUND_CODES:
                    return Outcome.failed(
                        ans.result.resultCode, ans.result.resultMessage or "", not_found=True
                    )
                return Outcome.unknown(f"inquiry itself failed: {ans.result.resultCode}")
            if ans.paymentResult is None:
                return Outcome.unknown("inquiry: no paymentResult yet")
            return result_outcome(ans.paymentResult, ans.paymentId)

        return await guarded(self.http, self.ep, "inquire", run)

    async def cancel(self, debit_id: str, amount: MoneyModel) -> Outcome:
        async def run() -> Outcome:
            doc = await self._post("cancel", A.CANCEL, self._ids(debit_id))
            return result_outcome(parse_as(A.CancelResponse, doc, self.partner_id, "cancel").result, debit_id)

        return await guarded(self.http, self.ep, "cancel", run)

    async def refund(self, refund_id: str, debit_id: str, amount: MoneyModel) -> Outcome:
        async def run() -> Outcome:
            msg = A.RefundRequest(
                acquirerId=ACQUIRER_ID,
                pspId=self.client_id,
                paymentRequestId=debit_id,
                refundRequestId=refund_id,
                refundAmount=amount,
            )
            ans = parse_as(
                A.RefundResponse, await self._post("refund", A.REFUND, msg), self.partner_id, "refund"
            )
            return result_outcome(ans.result, ans.refundId)

        return await guarded(self.http, self.ep, "refund", run)

    # --- acquirer (ACQP) ----------------------------------------------------------------------------
    async def notify_paid(self, req: CreditRequest) -> Outcome:
        async def run() -> Outcome:
            acct = req.merchant.account
            msg = A.NotifyPaymentRequest(
                paymentResult=A.Result.ok(),
                paymentRequestId=req.credit_id,
                paymentId=req.payment_id,
                acquirerId=ACQUIRER_ID,
                pspId=self.client_id,
                paymentAmount=req.amount,
                paymentTime=request_time(),
                referenceMerchantId=merchant_ref(acct, req.payment_id)[:64] if acct else None,
            )
            doc = await self._post("notify", A.NOTIFY_PAYMENT, msg)
            return result_outcome(
                parse_as(A.AckResponse, doc, self.partner_id, "notify").result, req.credit_id
            )

        return await guarded(self.http, self.ep, "notify", run)

    async def inquire_credit(self, credit_id: str) -> Outcome:
        async def run() -> Outcome:
            msg = A.InquiryNotifyRequest(paymentRequestId=credit_id)
            doc = await self._post("inquire_credit", A.INQUIRY_NOTIFY, msg)
            return result_outcome(
                parse_as(A.AckResponse, doc, self.partner_id, "inquire_credit").result, credit_id
            )

        return await guarded(self.http, self.ep, "inquire_credit", run)

    async def reverse(self, credit_id: str, reversal_id: str, amount: MoneyModel) -> Outcome:
        async def run() -> Outcome:
            msg = A.NotifyRefundRequest(
                refundResult=A.Result.ok(),
                paymentRequestId=credit_id,
                refundRequestId=reversal_id,
                refundAmount=amount,
                refundTime=request_time(),
            )
            ans = parse_as(
                A.AckResponse, await self._post("reverse", A.NOTIFY_REFUND, msg), self.partner_id, "reverse"
            )
            return result_outcome(ans.result, ans.refundId)

        return await guarded(self.http, self.ep, "reverse", run)


class _Envelope(A._Answer):
    result: A.Result
