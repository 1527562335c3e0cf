"""Sandbox partner of the ``qrgw`` family (PROTOCOL.md §8 table), signed with the §2 profile."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from adapters.common import merchant_ref
from adapters.sandbox.ledger import NOT_FOUND, Answer
from adapters.sandbox.server import SandboxPartner, Wire, auth_problem
from gateway.signing import sign_response
from schemas.errors import QrgwError, ValidationFailed
from schemas.jsonsafe import loads
from schemas.partner import CreditBody, DebitBody, RefundBody, ReversalBody

_BODIES: dict[str, type[BaseModel]] = {
    "pay": DebitBody,
    "refund": RefundBody,
    "notify": CreditBody,
    "reverse": ReversalBody,
}


def problem(status: int, code: str, detail: str) -> Wire:
    return status, {
        "type": f"https://errors.qrgw.dev/{code}",
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "code": code,
        "detail": detail,
    }


def parse_json(body: bytes, model: type[BaseModel]) -> Any:
    doc = loads(body or b"{}")  # InvalidJSON, bounded depth and number length (schemas.jsonsafe)
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(body)"
        raise ValidationFailed(f"{where}: {err['msg']}") from exc


def _state(ans: Answer, key: str, ident: str) -> dict[str, Any]:
    doc: dict[str, Any] = {key: ident, "status": ans.status}
    if not ans.ok:
        doc["failure"] = {"code": ans.code, "message": ans.message or ans.code}
    return doc


class QrgwSandbox(SandboxPartner):
    family = "qrgw"
    ROUTES = (
        ("POST", "/qrgw/v1/debits", "pay"),
        ("GET", "/qrgw/v1/debits/{debit_id}", "inquire"),
        ("POST", "/qrgw/v1/debits/{debit_id}/cancel", "cancel"),
        ("POST", "/qrgw/v1/refunds", "refund"),
        ("POST", "/qrgw/v1/credits", "notify"),
        ("GET", "/qrgw/v1/credits/{credit_id}", "inquire_credit"),
        ("POST", "/qrgw/v1/credits/{credit_id}/reversals", "reverse"),
    )

    async def authenticate(self, request: web.Request, body: bytes) -> None:
        await self.verify_gateway(request, body)

    def parse(self, op: str, request: web.Request, body: bytes) -> tuple[tuple[str, ...], Any]:
        path_id = request.match_info.get("debit_id") or request.match_info.get("credit_id") or ""
        if op in ("inquire", "inquire_credit", "cancel"):
            return (path_id,), path_id
        msg = parse_json(body, _BODIES[op])
        if op == "reverse":
            return (path_id, msg.reversal_id), (path_id, msg)
        ids = tuple(
            str(getattr(msg, k))
            for k in ("debit_id", "credit_id", "refund_id", "payment_id")
            if hasattr(msg, k)
        )
        return ids, msg

    def execute(self, op: str, msg: Any) -> Wire:
        led = self.ledger
        if op == "pay":
            m: DebitBody = msg
            a = led.debit(m.debit_id, m.payment_id, m.payer.id, m.amount.minor, m.amount.currency)
            return 200, _state(a, "debit_id", m.debit_id)
        if op == "inquire":
            d = led.inquire_debit(msg)
            if d is None:
                return problem(404, "DEBIT_NOT_FOUND", "no debit with this id")
            if d.cancelled:
                return 200, {
                    "debit_id": msg,
                    "status": "FAILED",
                    "failure": {"code": "CANCELLED", "message": "cancelled"},
                }
            return 200, _state(d.answer, "debit_id", msg)
        if op == "cancel":
            a = led.cancel_debit(msg)
            if a.ok:
                return 200, {"debit_id": msg, "status": "CANCELLED"}
            return 200, {
                "debit_id": msg,
                "status": "FAILED",
                "failure": {"code": a.code, "message": a.message},
            }
        if op == "refund":
            r: RefundBody = msg
            a = led.refund(r.refund_id, r.debit_id, r.amount.minor, r.amount.currency)
            return 200, _state(a, "refund_id", r.refund_id)
        if op == "notify":
            c: CreditBody = msg
            acct = c.merchant.account
            merchant = merchant_ref(acct, "unknown-merchant")
            a = led.credit(c.credit_id, c.payment_id, merchant, c.amount.minor, c.amount.currency)
            return 200, _state(a, "credit_id", c.credit_id)
        if op == "inquire_credit":
            cr = led.inquire_credit(msg)
            if cr is None:
                return problem(404, "CREDIT_NOT_FOUND", "no credit with this id")
            return 200, _state(cr.answer, "credit_id", msg)
        if op == "reverse":
            credit_id, rv = msg
            a = led.reverse(credit_id, rv.reversal_id, rv.amount.minor, rv.amount.currency)
            if a.code == NOT_FOUND:
                return problem(404, "CREDIT_NOT_FOUND", "no succeeded credit with this id")
            return 200, _state(a, "reversal_id", rv.reversal_id)
        raise AssertionError(op)

    def _key(self, op: str, msg: Any) -> tuple[str, str]:
        if op in ("pay", "inquire", "cancel"):
            return "debit_id", msg if isinstance(msg, str) else msg.debit_id
        if op == "refund":
            return "refund_id", msg.refund_id
        if op == "reverse":
            return "reversal_id", msg[1].reversal_id
        return "credit_id", msg if isinstance(msg, str) else msg.credit_id

    def unknown(self, op: str, msg: Any) -> Wire:
        key, ident = self._key(op, msg)
        return 202, {key: ident, "status": "PROCESSING"}

    def refused(self, op: str, msg: Any, code: str) -> Wire:
        key, ident = self._key(op, msg)
        return 200, {
            key: ident,
            "status": "FAILED",
            "failure": {"code": code, "message": "sandbox: injected"},
        }

    def error(self, exc: QrgwError) -> Wire:
        status, code = auth_problem(exc)
        return problem(status, code, exc.detail)

    def sign(self, request: web.Request, status: int, headers: dict[str, str], body: bytes) -> None:
        req_sig = request.headers.get("Signature")
        if not req_sig:
            return  # nothing to bind the answer to (an unsigned call gets an unsigned 401)
        sign_response(
            self.cfg.signer,
            status=status,
            headers=headers,
            body=body,
            req_method=request.method,
            req_path=request.path,
            req_signature=req_sig,
        )
