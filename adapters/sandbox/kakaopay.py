"""Sandbox partner of the ``kakaopay`` family: Kakao Pay-style wallet and acquirer.

Checks ``Authorization: SECRET_KEY <key>`` and the qrgw-profile signature on every call,
answers signed with the qrgw profile, errors as HTTP 400 ``{"error_code", "error_message"}``.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from adapters.sandbox import ledger as L
from adapters.sandbox.ledger import Answer, Debit
from adapters.sandbox.qrgw import parse_json
from adapters.sandbox.server import SandboxPartner, Wire
from gateway.signing import sign_response
from schemas import kakaopay as K
from schemas.errors import AuthError, QrgwError, SignatureMissing

CODES = {
    L.INSUFFICIENT: K.ERR_INSUFFICIENT,
    L.NO_PAYER: K.ERR_USER,
    L.CLOSED: K.ERR_CLOSED,
    L.NOT_FOUND: K.ERR_NOT_FOUND,
    L.EXCEEDS: K.ERR_EXCEEDS,
    L.INCONSISTENT: K.ERR_INCONSISTENT,
    L.CURRENCY: K.ERR_PARAM,
}
_BODIES: dict[str, type[BaseModel]] = {
    "pay": K.ApproveRequest,
    "inquire": K.OrderRequest,
    "cancel": K.CancelRequest,
    "notify": K.CreditRequest,
    "inquire_credit": K.OrderRequest,
    "reverse": K.CancelRequest,
}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def err(code: int, message: str, status: int = 400) -> Wire:
    return status, {"error_code": code, "error_message": message}


def refused(ans: Answer) -> Wire:
    return err(CODES.get(ans.code or "", K.ERR_PARAM), ans.message or (ans.code or "refused"))


def _debit_state(d: Debit) -> str:
    if d.cancelled:
        return "CANCEL_PAYMENT"
    if not d.answer.ok:
        return "FAIL_PAYMENT"
    if d.refunded == d.amount:
        return "CANCEL_PAYMENT"
    return "PART_CANCEL_PAYMENT" if d.refunded else "SUCCESS_PAYMENT"


class KakaoPaySandbox(SandboxPartner):
    family = "kakaopay"
    ROUTES = (
        ("POST", K.APPROVE, "pay"),
        ("POST", K.ORDER, "inquire"),
        ("POST", K.CANCEL, "cancel"),
        ("POST", K.CREDIT, "notify"),
        ("POST", K.CREDIT_ORDER, "inquire_credit"),
        ("POST", K.CREDIT_CANCEL, "reverse"),
    )

    @property
    def cid(self) -> str:
        return self.cfg.client_id or "TC0ONETIME"

    async def authenticate(self, request: web.Request, body: bytes) -> None:
        expected = f"SECRET_KEY {self.cfg.secret_key or ''}".encode()
        if not self.cfg.secret_key or not hmac.compare_digest(
            request.headers.get("Authorization", "").encode(), expected
        ):
            raise SignatureMissing("Authorization: SECRET_KEY missing or wrong", kakao_code=K.ERR_AUTH)
        await self.verify_gateway(request, body)

    def parse(self, op: str, request: web.Request, body: bytes) -> tuple[tuple[str, ...], Any]:
        msg = parse_json(body, _BODIES[op])
        if getattr(msg, "cid", self.cid) != self.cid:
            raise AuthError("cid is not the gateway's merchant code", kakao_code=K.ERR_AUTH)
        ids = tuple(
            str(getattr(msg, k))
            for k in ("partner_order_id", "partner_cancel_id", "payment_id")
            if getattr(msg, k, None)
        )
        return ids, msg

    def refine_op(self, op: str, msg: Any) -> str:
        return "refund" if op == "cancel" and msg.partner_cancel_id else op

    def _find(self, msg: K.OrderRequest) -> Debit | None:
        if msg.partner_order_id:
            return self.ledger.inquire_debit(msg.partner_order_id)
        return next((d for d in self.ledger.debits.values() if d.ref == msg.tid), None)

    def execute(self, op: str, msg: Any) -> Wire:
        led = self.ledger
        if op == "pay":
            p: K.ApproveRequest = msg
            a = led.debit(
                p.partner_order_id,
                p.payment_id or p.partner_order_id,
                p.partner_user_id,
                p.total_amount,
                p.currency,
            )
            if not a.ok:
                return refused(a)
            return 200, {
                "aid": f"A{a.ref}",
                "tid": a.ref,
                "cid": self.cid,
                "partner_order_id": p.partner_order_id,
                "partner_user_id": p.partner_user_id,
                "payment_method_type": "MONEY",
                "item_name": p.item_name,
                "status": "SUCCESS_PAYMENT",
                "amount": {"total": p.total_amount, "tax_free": p.tax_free_amount},
                "approved_at": now(),
            }
        if op == "inquire":
            d = self._find(msg)
            if d is None:
                return err(K.ERR_NOT_FOUND, "no such order")
            rest = 0 if d.cancelled or not d.answer.ok else d.amount - d.refunded
            return 200, {
                "tid": d.ref,
                "cid": self.cid,
                "partner_order_id": d.debit_id,
                "status": _debit_state(d),
                "amount": {"total": d.amount, "tax_free": 0},
                "canceled_amount": {"total": d.amount - rest if d.answer.ok else 0, "tax_free": 0},
                "cancel_available_amount": {"total": rest, "tax_free": 0},
            }
        if op == "cancel":
            c: K.CancelRequest = msg
            d = led.inquire_debit(c.partner_order_id)
            if d is not None and d.answer.ok and not d.cancelled and c.cancel_amount != d.amount:
                return err(K.ERR_EXCEEDS, "a whole cancel must name the whole amount")
            a = led.cancel_debit(c.partner_order_id)
            if not a.ok:
                return refused(a)
            return 200, {
                "tid": a.ref,
                "cid": self.cid,
                "partner_order_id": c.partner_order_id,
                "status": "CANCEL_PAYMENT",
                "canceled_amount": {"total": c.cancel_amount, "tax_free": c.cancel_tax_free_amount},
                "canceled_at": now(),
            }
        if op == "refund":
            r: K.CancelRequest = msg
            a = led.refund(r.partner_cancel_id or "", r.partner_order_id, r.cancel_amount, self.cfg.currency)
            if not a.ok:
                return refused(a)
            d = led.inquire_debit(r.partner_order_id)
            assert d is not None
            return 200, {
                "tid": d.ref,
                "cid": self.cid,
                "partner_order_id": r.partner_order_id,
                "status": _debit_state(d),
                "canceled_amount": {"total": r.cancel_amount, "tax_free": r.cancel_tax_free_amount},
                "cancel_available_amount": {"total": d.amount - d.refunded, "tax_free": 0},
                "canceled_at": now(),
            }
        if op == "notify":
            n: K.CreditRequest = msg
            a = led.credit(n.partner_order_id, n.payment_id, n.merchant_id, n.total_amount, n.currency)
            if not a.ok:
                return refused(a)
            return 200, {
                "tid": a.ref,
                "cid": self.cid,
                "partner_order_id": n.partner_order_id,
                "status": "SUCCESS_PAYMENT",
                "amount": {"total": n.total_amount, "tax_free": n.tax_free_amount},
                "approved_at": now(),
            }
        if op == "inquire_credit":
            o: K.OrderRequest = msg
            cr = led.inquire_credit(o.partner_order_id or "")
            if cr is None:
                return err(K.ERR_NOT_FOUND, "no such order")
            state = "SUCCESS_PAYMENT" if cr.answer.ok else "FAIL_PAYMENT"
            if cr.answer.ok and cr.reversed:
                state = "CANCEL_PAYMENT" if cr.reversed == cr.amount else "PART_CANCEL_PAYMENT"
            return 200, {
                "tid": cr.ref,
                "cid": self.cid,
                "partner_order_id": cr.credit_id,
                "status": state,
                "amount": {"total": cr.amount, "tax_free": 0},
            }
        if op == "reverse":
            v: K.CancelRequest = msg
            if not v.partner_cancel_id:
                return err(K.ERR_PARAM, "partner_cancel_id is required")
            a = led.reverse(v.partner_order_id, v.partner_cancel_id, v.cancel_amount, self.cfg.currency)
            if not a.ok:
                return refused(a)
            cr = led.inquire_credit(v.partner_order_id)
            assert cr is not None
            return 200, {
                "tid": cr.ref,
                "cid": self.cid,
                "partner_order_id": v.partner_order_id,
                "status": "CANCEL_PAYMENT" if cr.reversed == cr.amount else "PART_CANCEL_PAYMENT",
                "canceled_amount": {"total": v.cancel_amount, "tax_free": v.cancel_tax_free_amount},
                "canceled_at": now(),
            }
        raise AssertionError(op)

    def unknown(self, op: str, msg: Any) -> Wire:
        return err(K.ERR_SYSTEM, "sandbox: injected temporary system error", status=500)

    def refused(self, op: str, msg: Any, code: str) -> Wire:
        if code.lstrip("-").isdigit():
            return err(int(code), f"sandbox: injected {code}")
        # a named reason travels as Kakao Pay's method result, not as a bad parameter
        status, doc = err(K.ERR_REFUSED, f"sandbox: injected {code}")
        doc["extras"] = {"method_result_code": code, "method_result_message": f"sandbox: injected {code}"}
        return status, doc

    def error(self, exc: QrgwError) -> Wire:
        if "kakao_code" in exc.extra:
            return err(int(exc.extra["kakao_code"]), exc.detail, status=401)
        if isinstance(exc, AuthError):
            return err(K.ERR_AUTH, exc.detail, status=401)
        return err(K.ERR_PARAM, exc.detail)

    def sign(self, request: web.Request, status: int, headers: dict[str, str], body: bytes) -> None:
        req_sig = request.headers.get("Signature")
        if req_sig:
            sign_response(
                self.cfg.signer,
                status=status,
                headers=headers,
                body=body,
                req_method=request.method,
                req_path=request.path,
                req_signature=req_sig,
            )
