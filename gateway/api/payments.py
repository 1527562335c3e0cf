"""``/v1/payments`` routes (PROTOCOL.md §5). The caller is ``request["partner_id"]``, set by
the signing middleware; only partners on a payment's route see or change it (404 otherwise)."""

from __future__ import annotations

from aiohttp import web

from gateway.api.edge import read_json
from gateway.payments.container import PAYMENTS
from gateway.payments.service import visible_to
from schemas.api import CancelRequest, PaymentRequest, PaymentView, RefundRequest
from schemas.payment import PaymentRecord, PaymentStatus


def _caller(request: web.Request) -> str:
    return str(request["partner_id"])


def answer(rec: PaymentRecord, status: int) -> web.Response:
    body = PaymentView.from_record(rec).model_dump_json().encode()
    resp = web.Response(status=status, body=body, content_type="application/json")
    resp.headers["Location"] = f"/v1/payments/{rec.payment_id}"
    return resp


async def create_payment(request: web.Request) -> web.Response:
    """201 created, 200 a repeat, 202 while a partner's answer is unknown (inquire later)."""
    body = await read_json(request, PaymentRequest)
    sub = await request.app[PAYMENTS].orchestrator.submit(_caller(request), body)
    if sub.record.status == PaymentStatus.PROCESSING:
        return answer(sub.record, 202)
    return answer(sub.record, 201 if sub.created else 200)


async def get_payment(request: web.Request) -> web.Response:
    store = request.app[PAYMENTS].orchestrator.store
    rec = visible_to(await store.get_payment(request.match_info["payment_id"]), _caller(request))
    return answer(rec, 200)


async def cancel_payment(request: web.Request) -> web.Response:
    body = await read_json(request, CancelRequest)
    rec, _created = await request.app[PAYMENTS].reversals.cancel(
        _caller(request), request.match_info["payment_id"], body
    )
    pending = rec.cancel is not None and rec.cancel.status == "PROCESSING"
    return answer(rec, 202 if pending else 200)


async def refund_payment(request: web.Request) -> web.Response:
    body = await read_json(request, RefundRequest)
    caller = _caller(request)
    rec, created = await request.app[PAYMENTS].reversals.refund(caller, request.match_info["payment_id"], body)
    mine = next(
        (r for r in rec.refunds if r.refund_request_id == body.refund_request_id and r.requested_by in (None, caller)),
        None,
    )
    if mine is not None and mine.status == "PROCESSING":
        return answer(rec, 202)
    return answer(rec, 201 if created else 200)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/payments", create_payment)
    app.router.add_get("/v1/payments/{payment_id}", get_payment)
    app.router.add_post("/v1/payments/{payment_id}/cancel", cancel_payment)
    app.router.add_post("/v1/payments/{payment_id}/refunds", refund_payment)
