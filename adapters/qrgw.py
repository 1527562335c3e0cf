"""The ``qrgw`` family adapter (PROTOCOL.md §8): the open protocol, signed with the §2 profile
under the gateway's key both ways (``QrgwCallAuth`` signs each request and verifies each answer).

Answer mapping: ``SUCCEEDED`` → succeeded; ``FAILED`` → failed(failure.code); ``PROCESSING``
→ unknown; 404 ``*_NOT_FOUND`` on an inquiry → failed(not_found=True); other 400/404/409/422
problems → failed(problem code) (the partner refused the call itself); 401/403/408/429 and 5xx
→ unknown (not processed, or we cannot tell).
"""

from __future__ import annotations

from typing import Any

from adapters.base import AcquirerAdapter, CreditRequest, DebitRequest, Outcome, WalletAdapter
from adapters.common import dumps, guarded, parse_as, read_json
from adapters.endpoint import PartnerEndpoint
from adapters.http import HttpResponse, OutboundHttp
from gateway.signing import KeyRegistry, QrgwCallAuth
from schemas.errors import PartnerProtocolError
from schemas.money import MoneyModel
from schemas.partner import CancelAnswer, CreditAnswer, DebitAnswer, Problem, RefundAnswer, ReversalAnswer

_REFUSED = frozenset({400, 404, 409, 422})
_StateAnswer = DebitAnswer | RefundAnswer | CreditAnswer | ReversalAnswer


class QrgwAdapter(WalletAdapter, AcquirerAdapter):
    def __init__(self, ep: PartnerEndpoint, registry: KeyRegistry, http: OutboundHttp) -> None:
        self.partner_id = ep.id
        self.ep = ep
        self.http = http
        self.auth = QrgwCallAuth(registry.signer, registry, ep.id)

    async def _call(self, op: str, method: str, path: str, doc: dict[str, Any] | None) -> HttpResponse:
        body = dumps(doc) if doc is not None else None
        return await self.http.call(self.ep, op, method, path, body=body, auth=self.auth)

    def _state(
        self,
        op: str,
        resp: HttpResponse,
        model: type[_StateAnswer],
        key: str,
        ident: str,
        *,
        inquiry: bool = False,
    ) -> Outcome:
        if resp.status_code >= 500 or resp.status_code in (401, 403, 408, 429):
            return Outcome.unknown(f"{op}: HTTP {resp.status_code}", http_status=resp.status_code)
        doc = read_json(resp, self.partner_id, op)
        if resp.status_code in _REFUSED:
            prob = parse_as(Problem, doc, self.partner_id, op)
            code = prob.code or f"HTTP_{resp.status_code}"
            not_found = inquiry and resp.status_code == 404 and code.endswith("_NOT_FOUND")
            return Outcome.failed(code, prob.detail or "", not_found=not_found)
        if resp.status_code not in (200, 201, 202):
            return Outcome.unknown(f"{op}: unexpected HTTP {resp.status_code}")
        ans = parse_as(model, doc, self.partner_id, op)
        if getattr(ans, key) != ident:
            raise PartnerProtocolError(
                f"{op}: answer is about {key} {getattr(ans, key)!r}", partner=self.partner_id
            )
        if ans.status == "SUCCEEDED":
            return Outcome.succeeded(ident)
        if ans.status == "FAILED":
            f = ans.failure
            return Outcome.failed(f.code if f else "FAILED", f.message if f else "")
        return Outcome.unknown(f"{op}: partner still processing")

    # --- wallet -----------------------------------------------------------------------------------
    async def pay(self, req: DebitRequest) -> Outcome:
        async def run() -> Outcome:
            doc = {
                "debit_id": req.debit_id,
                "payment_id": req.payment_id,
                "payer": {"id": req.payer.id},
                "amount": req.amount.model_dump(),
                "merchant_amount": req.merchant_amount.model_dump(),
                "quote": dict(req.quote) if req.quote is not None else None,
                "merchant": {
                    "name": req.merchant.name,
                    "city": req.merchant.city,
                    "country": req.merchant.country,
                },
            }
            resp = await self._call("pay", "POST", "/qrgw/v1/debits", doc)
            return self._state("pay", resp, DebitAnswer, "debit_id", req.debit_id)

        return await guarded(self.http, self.ep, "pay", run)

    async def inquire(self, debit_id: str) -> Outcome:
        async def run() -> Outcome:
            resp = await self._call("inquire", "GET", f"/qrgw/v1/debits/{debit_id}", None)
            return self._state("inquire", resp, DebitAnswer, "debit_id", debit_id, inquiry=True)

        return await guarded(self.http, self.ep, "inquire", run)

    async def cancel(self, debit_id: str, amount: MoneyModel) -> Outcome:
        async def run() -> Outcome:
            resp = await self._call("cancel", "POST", f"/qrgw/v1/debits/{debit_id}/cancel", {})
            if resp.status_code != 200:
                return self._state("cancel", resp, DebitAnswer, "debit_id", debit_id)
            ans = parse_as(
                CancelAnswer, read_json(resp, self.partner_id, "cancel"), self.partner_id, "cancel"
            )
            if ans.debit_id != debit_id:
                raise PartnerProtocolError("cancel: answer is about another debit", partner=self.partner_id)
            if ans.status == "CANCELLED":
                return Outcome.succeeded(debit_id)
            if ans.status == "FAILED":
                return Outcome.failed(
                    ans.failure.code if ans.failure else "FAILED", ans.failure.message if ans.failure else ""
                )
            return Outcome.unknown("cancel: partner still processing")

        return await guarded(self.http, self.ep, "cancel", run)

    async def refund(self, refund_id: str, debit_id: str, amount: MoneyModel) -> Outcome:
        async def run() -> Outcome:
            doc = {"refund_id": refund_id, "debit_id": debit_id, "amount": amount.model_dump()}
            resp = await self._call("refund", "POST", "/qrgw/v1/refunds", doc)
            return self._state("refund", resp, RefundAnswer, "refund_id", refund_id)

        return await guarded(self.http, self.ep, "refund", run)

    # --- acquirer ---------------------------------------------------------------------------------
    async def notify_paid(self, req: CreditRequest) -> Outcome:
        async def run() -> Outcome:
            acct = req.merchant.account
            doc = {
                "credit_id": req.credit_id,
                "payment_id": req.payment_id,
                "merchant": {
                    "account": {"identifier": acct.identifier, "fields": acct.fields}
                    if acct
                    else {"identifier": "-"},
                    "name": req.merchant.name,
                    "city": req.merchant.city,
                    "country": req.merchant.country,
                },
                "amount": req.amount.model_dump(),
            }
            resp = await self._call("notify", "POST", "/qrgw/v1/credits", doc)
            return self._state("notify", resp, CreditAnswer, "credit_id", req.credit_id)

        return await guarded(self.http, self.ep, "notify", run)

    async def inquire_credit(self, credit_id: str) -> Outcome:
        async def run() -> Outcome:
            resp = await self._call("inquire_credit", "GET", f"/qrgw/v1/credits/{credit_id}", None)
            return self._state("inquire_credit", resp, CreditAnswer, "credit_id", credit_id, inquiry=True)

        return await guarded(self.http, self.ep, "inquire_credit", run)

    async def reverse(self, credit_id: str, reversal_id: str, amount: MoneyModel) -> Outcome:
        async def run() -> Outcome:
            doc = {"reversal_id": reversal_id, "amount": amount.model_dump()}
            resp = await self._call("reverse", "POST", f"/qrgw/v1/credits/{credit_id}/reversals", doc)
            return self._state("reverse", resp, ReversalAnswer, "reversal_id", reversal_id)

        return await guarded(self.http, self.ep, "reverse", run)
