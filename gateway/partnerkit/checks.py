"""The conformance checks (PROTOCOL.md §2, §8, §9), in the order they are reported.

Each check is independent: it makes its own ids, raises ``CheckFailed`` with what it saw when
the partner misbehaves, and returns a one-line summary when it behaves.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from gateway.partnerkit.conformance import Check, CheckFailed, NotObservable, Partner
from gateway.partnerkit.wire import Exchange, exchange
from gateway.signing import Signer, generate_key, verify_response
from schemas.errors import QrgwError

ACCEPTED = (200, 201, 202)
STATUSES = frozenset({"SUCCEEDED", "FAILED", "PROCESSING"})


def _expect(ok: bool, what: str, ex: Exchange | None = None) -> None:
    if not ok:
        seen = f" (got HTTP {ex.status} {ex.body[:160]!r})" if ex is not None else ""
        raise CheckFailed(what + seen)


def _state(ex: Exchange, key: str, ident: str) -> str:
    """The ``status`` of a well-formed, signed state answer about ``ident``."""
    _expect(ex.status in ACCEPTED, f"expected 200/201/202 for {key} {ident}", ex)
    _expect(ex.signed_ok, f"answer signature rejected: {ex.verdict}")
    doc = ex.json()
    _expect(isinstance(doc, dict) and doc.get(key) == ident, f"answer is not about {key} {ident}", ex)
    _expect(doc.get("status") in STATUSES, f"status must be one of {sorted(STATUSES)}", ex)
    return str(doc["status"])


async def _debit(p: Partner, debit_id: str, **kw: Any) -> Exchange:
    return await p.call("POST", "/qrgw/v1/debits", p.debit_doc(debit_id, **kw))


def _refused_with_401(ex: Exchange, what: str) -> None:
    _expect(ex.status == 401, f"{what} must be refused with 401", ex)


async def _not_booked(p: Partner, debit_id: str, what: str) -> None:
    ex = await p.call("GET", f"/qrgw/v1/debits/{debit_id}")
    _expect(ex.status == 404, f"{what} was refused but the debit exists afterwards", ex)


# --- §2 / §8: answers ------------------------------------------------------------------------------
async def signed_answers(p: Partner) -> str:
    debit_id = p.new_id("d")
    ex = await _debit(p, debit_id)
    status = _state(ex, "debit_id", debit_id)
    again = await p.call("GET", f"/qrgw/v1/debits/{debit_id}")
    _expect(_state(again, "debit_id", debit_id) == status, "inquiry disagrees with the debit's answer", again)
    # Bound to the request: the same answer must not verify against another request's signature.
    other = await p.call("GET", f"/qrgw/v1/debits/{p.new_id('x')}", track=False)
    try:
        verify_response(p.registry, status=ex.status, headers=ex.headers, body=ex.body, req_method="POST",
                        req_path="/qrgw/v1/debits", req_signature=other.request_headers["Signature"],
                        expected_partner=p.partner_id)
    except QrgwError:
        pass
    else:
        raise CheckFailed("the debit's answer also verifies for another request: not bound to its request")
    bad = [e for e in p.exchanges if not e.signed_ok]
    _expect(not bad, f"{len(bad)} answer(s) so far not signed or not bound: {bad[0].verdict if bad else ''}")
    return f"debit answered {status}, signed by {ex.signer_partner}, bound to its request"


async def debit_idempotent(p: Partner) -> str:
    debit_id = p.new_id("d")
    first, second = await _debit(p, debit_id), await _debit(p, debit_id)
    s = _state(first, "debit_id", debit_id)
    _state(second, "debit_id", debit_id)
    _expect(first.json() == second.json(), f"repeat answered {second.json()} after {first.json()}")
    return f"repeat returned the first answer ({s})"


async def credit_idempotent(p: Partner) -> str:
    credit_id = p.new_id("c")
    first = await p.call("POST", "/qrgw/v1/credits", p.credit_doc(credit_id))
    second = await p.call("POST", "/qrgw/v1/credits", p.credit_doc(credit_id))
    s = _state(first, "credit_id", credit_id)
    _state(second, "credit_id", credit_id)
    _expect(first.json() == second.json(), f"repeat answered {second.json()} after {first.json()}")
    return f"repeat returned the first answer ({s})"


async def refund_idempotent(p: Partner) -> str:
    debit_id, refund_id = p.new_id("d"), p.new_id("r")
    _expect(_state(await _debit(p, debit_id), "debit_id", debit_id) == "SUCCEEDED",
            f"debit for the refund did not succeed (payer {p.payer!r} needs a balance)")
    doc = {"refund_id": refund_id, "debit_id": debit_id, "amount": p.money(400)}
    first = await p.call("POST", "/qrgw/v1/refunds", doc)
    second = await p.call("POST", "/qrgw/v1/refunds", doc)
    s = _state(first, "refund_id", refund_id)
    _state(second, "refund_id", refund_id)
    _expect(first.json() == second.json(), f"repeat answered {second.json()} after {first.json()}")
    return f"repeat returned the first answer ({s})"


# --- §8: inquiry and cancel ------------------------------------------------------------------------
async def inquiry_unknown_404(p: Partner) -> str:
    for kind, code in (("debits", "DEBIT_NOT_FOUND"), ("credits", "CREDIT_NOT_FOUND")):
        ex = await p.call("GET", f"/qrgw/v1/{kind}/{p.new_id('never')}")
        _expect(ex.status == 404 and ex.code == code, f"inquiry of a {kind[:-1]} never received: 404 {code}", ex)
        _expect(ex.signed_ok, f"404 answer signature rejected: {ex.verdict}")
    return "404 DEBIT_NOT_FOUND / CREDIT_NOT_FOUND, signed"


async def cancel_before_debit(p: Partner) -> str:
    debit_id = p.new_id("d")
    ex = await p.call("POST", f"/qrgw/v1/debits/{debit_id}/cancel", {})
    _expect(ex.status == 200 and ex.signed_ok, "cancel of a debit never received must answer 200, signed", ex)
    doc = ex.json()
    _expect(isinstance(doc, dict) and doc.get("debit_id") == debit_id and doc.get("status") == "CANCELLED",
            "cancel of a debit never received must answer CANCELLED", ex)
    late = await _debit(p, debit_id)
    _expect(late.status not in ACCEPTED or _state(late, "debit_id", debit_id) == "FAILED",
            "a late copy of a cancelled debit must be refused", late)
    after = await p.call("GET", f"/qrgw/v1/debits/{debit_id}")
    body = after.json() if after.status == 200 else None
    _expect(not (isinstance(body, dict) and body.get("status") == "SUCCEEDED"),
            "inquiry shows the cancelled debit as SUCCEEDED", after)
    return "cancel recorded; the late debit was refused"


# --- §3 / §8: amounts and currencies ---------------------------------------------------------------
async def amounts_and_currencies(p: Partner) -> str:
    other = "EUR" if p.currency != "EUR" else "USD"
    debit_id = p.new_id("d")
    ex = await _debit(p, debit_id, currency=other)
    _expect(ex.status not in ACCEPTED or _state(ex, "debit_id", debit_id) == "FAILED",
            f"a debit in {other} (partner holds {p.currency}) must fail", ex)
    credit_id = p.new_id("c")
    ex = await p.call("POST", "/qrgw/v1/credits", p.credit_doc(credit_id, currency=other))
    _expect(ex.status not in ACCEPTED or _state(ex, "credit_id", credit_id) == "FAILED",
            f"a credit in {other} must fail", ex)
    for bad in ("-100", "10.5", "1e3", ""):
        ex = await _debit(p, p.new_id("d"), value=bad)
        _expect(ex.status in (400, 422), f"amount value {bad!r} must be refused with 400/422", ex)
    debit_id, refund_id = p.new_id("d"), p.new_id("r")
    _state(await _debit(p, debit_id, value=1000), "debit_id", debit_id)
    doc = {"refund_id": refund_id, "debit_id": debit_id, "amount": p.money(1001)}
    ex = await p.call("POST", "/qrgw/v1/refunds", doc)
    _expect(ex.status not in ACCEPTED or _state(ex, "refund_id", refund_id) == "FAILED",
            "a refund above its debit must fail", ex)
    return "wrong currency, malformed amounts and an over-refund were all refused"


# --- §2: gateway signatures the partner must refuse -------------------------------------------------
async def tampered_signature(p: Partner) -> str:
    debit_id = p.new_id("d")

    def tamper(headers: dict[str, str], body: bytes) -> bytes:
        return body.replace(b'"value":"1000"', b'"value":"9000"')

    ex = await p.call("POST", "/qrgw/v1/debits", p.debit_doc(debit_id), mutate=tamper, track=False)
    _refused_with_401(ex, "a body changed after signing")
    await _not_booked(p, debit_id, "the tampered debit")
    return "tampered body refused (401), nothing booked"


async def replayed_signature(p: Partner) -> str:
    debit_id = p.new_id("d")
    first = await _debit(p, debit_id)
    _state(first, "debit_id", debit_id)
    resp = await p.client.post(first.url, headers=first.request_headers, content=first.request_body)
    _expect(resp.status_code == 401, f"the same signed request sent again must be refused (got {resp.status_code})")
    return "replayed request refused (401)"


async def expired_signature(p: Partner) -> str:
    debit_id = p.new_id("d")
    ex = await p.call("POST", "/qrgw/v1/debits", p.debit_doc(debit_id), created=int(time.time()) - 400,
                      track=False)
    _refused_with_401(ex, "a signature that expired 100 s ago")
    await _not_booked(p, debit_id, "the expired debit")
    return "expired signature refused (401), nothing booked"


async def unknown_key(p: Partner) -> str:
    debit_id = p.new_id("d")
    stranger = Signer(f"{p.run}-stranger", "ed25519", generate_key("ed25519"))
    body = json.dumps(p.debit_doc(debit_id)).encode()
    ex = await exchange(p.client, stranger, p.registry, "POST", p.url + "/qrgw/v1/debits", body)
    _refused_with_401(ex, "a signature by a key the partner does not know")
    await _not_booked(p, debit_id, "the debit signed by an unknown key")
    return "unknown key refused (401), nothing booked"


# --- §9: webhooks -----------------------------------------------------------------------------------
def _event(p: Partner) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {"event_id": f"evt_{p.new_id('e')}", "type": "payment.succeeded", "payment_id": p.new_id("pay"),
            "created_at": now, "data": {"status": "SUCCEEDED", "conformance": True}}


async def webhooks(p: Partner) -> str:
    event = _event(p)
    first = await p.call("POST", "", event, url=p.webhook_url)
    _expect(200 <= first.status < 300, "a signed event must be accepted with 2xx", first)
    second = await p.call("POST", "", event, url=p.webhook_url)
    _expect(200 <= second.status < 300, "a re-delivered event must be accepted with 2xx (at-least-once)", second)

    def tamper(headers: dict[str, str], body: bytes) -> bytes:
        return body.replace(b"SUCCEEDED", b"FAILED")

    bad = await p.call("POST", "", _event(p), url=p.webhook_url, mutate=tamper, track=False)
    _expect(not 200 <= bad.status < 300, "an event whose body changed after signing must be refused", bad)
    return f"event accepted twice (2xx), tampered event refused ({bad.status})"


async def webhook_dedup(p: Partner) -> str:
    event = _event(p)
    for _ in range(2):
        ex = await p.call("POST", "", event, url=p.webhook_url, track=False)
        _expect(200 <= ex.status < 300, "a signed event must be accepted with 2xx", ex)
    resp = await p.client.get(f"{p.url}/sandbox/events", params={"event_id": event["event_id"]})
    if resp.status_code != 200:
        raise NotObservable("no /sandbox/events inbox to observe de-duplication; check it on your side")
    entries = resp.json().get("events", [])
    accepted = sum(1 for e in entries if e.get("accepted"))
    _expect(accepted == 1, f"event_id {event['event_id']} was processed {accepted} times (inbox)")
    return "the re-delivered event_id was processed once (seen in /sandbox/events)"


CHECKS: list[tuple[str, Check]] = [
    ("signed-answers", signed_answers),
    ("debit-idempotent", debit_idempotent),
    ("credit-idempotent", credit_idempotent),
    ("refund-idempotent", refund_idempotent),
    ("inquiry-unknown-404", inquiry_unknown_404),
    ("cancel-before-debit", cancel_before_debit),
    ("amounts-and-currencies", amounts_and_currencies),
    ("tampered-signature-refused", tampered_signature),
    ("replayed-signature-refused", replayed_signature),
    ("expired-signature-refused", expired_signature),
    ("unknown-key-refused", unknown_key),
    ("webhooks-accepted", webhooks),
    ("webhooks-deduplicated", webhook_dedup),
]
