"""The ``kakaopay`` family adapter: Kakao Pay-style ``/online/v1/payment/...`` calls, server to
server for a QR payment the payer already confirmed in the wallet app.

Every call carries ``Authorization: SECRET_KEY <key>`` and is signed with the qrgw profile
(``QrgwCallAuth``), which also verifies every answer. Amounts are integers in minor units.

Mapping: an approve answered ``SUCCESS_PAYMENT`` → succeeded(tid); an error body
``{"error_code", "error_message", "extras"?}`` with HTTP 400 → failed(``extras.method_result_code``
when given, else the error code's name); HTTP 5xx, 401/403/429,
error code -9798 (system) → unknown. Inquiry states: ``SUCCESS_PAYMENT`` /
``PART_CANCEL_PAYMENT`` → succeeded; ``CANCEL_PAYMENT`` → failed(CANCELLED); ``FAIL_PAYMENT`` /
``QUIT_PAYMENT`` → failed; ``IN_PROGRESS`` → unknown; error -780 → failed(not_found).
"""

from __future__ import annotations

from typing import Any

from adapters.base import AcquirerAdapter, CreditRequest, DebitRequest, Outcome, WalletAdapter
from adapters.common import dumps, guarded, merchant_ref, parse_as, read_json
from adapters.endpoint import PartnerEndpoint
from adapters.http import OutboundHttp
from gateway.signing import KeyRegistry, QrgwCallAuth
from schemas import kakaopay as K
from schemas.errors import PartnerProtocolError
from schemas.money import MoneyModel

ERROR_NAMES = {
    K.ERR_INSUFFICIENT: "INSUFFICIENT_BALANCE",
    K.ERR_USER: "USER_NOT_FOUND",
    K.ERR_CLOSED: "ORDER_CLOSED",
    K.ERR_NOT_FOUND: "ORDER_NOT_FOUND",
    K.ERR_EXCEEDS: "CANCEL_AMOUNT_EXCEEDS",
    K.ERR_INCONSISTENT: "REQUEST_INCONSISTENT",
    K.ERR_PARAM: "INVALID_PARAMETER",
}
_UNKNOWN_ERRORS = frozenset({K.ERR_SYSTEM})


class KakaoPayAdapter(WalletAdapter, AcquirerAdapter):
    def __init__(self, ep: PartnerEndpoint, registry: KeyRegistry, http: OutboundHttp) -> None:
        if not ep.secret_key:
            raise ValueError(f"partner {ep.id}: the kakaopay family needs a SECRET_KEY")
        self.partner_id = ep.id
        self.ep = ep
        self.cid = ep.client_id or "TC0ONETIME"
        self.http = http
        self.auth = QrgwCallAuth(registry.signer, registry, ep.id)
        self._authz = f"SECRET_KEY {ep.secret_key}"

    async def _post(
        self, op: str, path: str, msg: K._Request
    ) -> tuple[dict[str, Any] | None, Outcome | None]:
        """The answer document on 200, else the outcome the error means."""
        headers = {"Authorization": self._authz, "Content-Type": "application/json"}
        resp = await self.http.call(
            self.ep, op, "POST", path, body=dumps(msg.dump()), headers=headers, auth=self.auth
        )
        if resp.status_code >= 500 or resp.status_code in (401, 403, 408, 429):
            return None, Outcome.unknown(f"{op}: HTTP {resp.status_code}", http_status=resp.status_code)
        doc = read_json(resp, self.partner_id, op)
        if resp.status_code == 200:
            return doc, None
        err = parse_as(K.ErrorBody, doc, self.partner_id, op)
        if err.error_code in _UNKNOWN_ERRORS:
            return None, Outcome.unknown(f"{op}: {err.error_code} {err.error_message}")
        reason = (err.extras or {}).get("method_result_code")
        if isinstance(reason, str) and reason:  # the payment method's or merchant's own reason
            name = reason
        else:
            name = ERROR_NAMES.get(err.error_code, f"KAKAOPAY_{err.error_code}")
        return None, Outcome.failed(
            name, err.error_message, not_found=err.error_code == K.ERR_NOT_FOUND, error_code=err.error_code
        )

    def _check(self, op: str, got: str, want: str) -> None:
        if got != want:
            raise PartnerProtocolError(f"{op}: answer is about order {got!r}", partner=self.partner_id)

    # --- wallet -----------------------------------------------------------------------------------
    async def pay(self, req: DebitRequest) -> Outcome:
        async def run() -> Outcome:
            msg = K.ApproveRequest(
                cid=self.cid,
                partner_order_id=req.debit_id,
                partner_user_id=req.payer.id,
                item_name=(req.merchant.name or "QR payment")[:100],
                total_amount=req.amount.minor,
                tax_free_amount=0,
                currency=req.amount.currency,
                payment_id=req.payment_id,
            )
            doc, out = await self._post("pay", K.APPROVE, msg)
            if out is not None:
                return out
            assert doc is not None
            ans = parse_as(K.ApproveResponse, doc, self.partner_id, "pay")
            self._check("pay", ans.partner_order_id, req.debit_id)
            if ans.status != "SUCCESS_PAYMENT":
                return Outcome.unknown(f"pay: approve answered {ans.status}")
            if ans.amount.total != req.amount.minor:
                raise PartnerProtocolError("pay: approved amount differs", partner=self.partner_id)
            return Outcome.succeeded(ans.tid)

        return await guarded(self.http, self.ep, "pay", run)

    async def _order(self, op: str, path: str, order_id: str) -> Outcome:
        doc, out = await self._post(op, path, K.OrderRequest(cid=self.cid, partner_order_id=order_id))
        if out is not None:
            return out
        assert doc is not None
        ans = parse_as(K.OrderResponse, doc, self.partner_id, op)
        self._check(op, ans.partner_order_id, order_id)
        if ans.status in ("SUCCESS_PAYMENT", "PART_CANCEL_PAYMENT"):
            return Outcome.succeeded(ans.tid)
        if ans.status == "CANCEL_PAYMENT":
            return Outcome.failed("CANCELLED", "the order was cancelled")
        if ans.status in ("FAIL_PAYMENT", "QUIT_PAYMENT"):
            return Outcome.failed(ans.status, "the order did not complete")
        return Outcome.unknown(f"{op}: order {ans.status}")

    async def inquire(self, debit_id: str) -> Outcome:
        return await guarded(self.http, self.ep, "inquire", lambda: self._order("inquire", K.ORDER, debit_id))

    async def _cancel(self, op: str, path: str, order_id: str, cancel_id: str | None, amount: int) -> Outcome:
        msg = K.CancelRequest(
            cid=self.cid,
            partner_order_id=order_id,
            partner_cancel_id=cancel_id,
            cancel_amount=amount,
            cancel_tax_free_amount=0,
        )
        doc, out = await self._post(op, path, msg)
        if out is not None:
            return out
        assert doc is not None
        ans = parse_as(K.CancelResponse, doc, self.partner_id, op)
        self._check(op, ans.partner_order_id, order_id)
        if ans.status in ("CANCEL_PAYMENT", "PART_CANCEL_PAYMENT"):
            return Outcome.succeeded(ans.tid)
        return Outcome.unknown(f"{op}: cancel answered {ans.status}")

    async def cancel(self, debit_id: str, amount: MoneyModel) -> Outcome:
        return await guarded(
            self.http,
            self.ep,
            "cancel",
            lambda: self._cancel("cancel", K.CANCEL, debit_id, None, amount.minor),
        )

    async def refund(self, refund_id: str, debit_id: str, amount: MoneyModel) -> Outcome:
        return await guarded(
            self.http,
            self.ep,
            "refund",
            lambda: self._cancel("refund", K.CANCEL, debit_id, refund_id, amount.minor),
        )

    # --- acquirer ---------------------------------------------------------------------------------
    async def notify_paid(self, req: CreditRequest) -> Outcome:
        async def run() -> Outcome:
            acct = req.merchant.account
            msg = K.CreditRequest(
                cid=self.cid,
                partner_order_id=req.credit_id,
                merchant_id=merchant_ref(acct, req.payment_id),
                merchant_name=req.merchant.name,
                total_amount=req.amount.minor,
                tax_free_amount=0,
                currency=req.amount.currency,
                payment_id=req.payment_id,
            )
            doc, out = await self._post("notify", K.CREDIT, msg)
            if out is not None:
                return out
            assert doc is not None
            ans = parse_as(K.ApproveResponse, doc, self.partner_id, "notify")
            self._check("notify", ans.partner_order_id, req.credit_id)
            if ans.status != "SUCCESS_PAYMENT":
                return Outcome.unknown(f"notify: credit answered {ans.status}")
            return Outcome.succeeded(ans.tid)

        return await guarded(self.http, self.ep, "notify", run)

    async def inquire_credit(self, credit_id: str) -> Outcome:
        return await guarded(
            self.http,
            self.ep,
            "inquire_credit",
            lambda: self._order("inquire_credit", K.CREDIT_ORDER, credit_id),
        )

    async def reverse(self, credit_id: str, reversal_id: str, amount: MoneyModel) -> Outcome:
        return await guarded(
            self.http,
            self.ep,
            "reverse",
            lambda: self._cancel("reverse", K.CREDIT_CANCEL, credit_id, reversal_id, amount.minor),
        )
