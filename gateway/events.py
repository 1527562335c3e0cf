"""Payment events for webhooks (PROTOCOL.md §9).

The orchestrator builds one event per final change with ``payment_event`` and hands it to
``Store.update_payment(events=...)``, so the event enters the outbox atomically with the
change. The delivery worker (``gateway.webhooks``) posts ``wire_body(event)`` to every
partner in ``recipients`` (the payment's wallet and acquirer).

``event_id`` is a hash of (payment, type, refund): a change recorded twice (a retried
write) yields the same id, and partners de-duplicate on it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gateway.obs.context import current_traceparent
from schemas.payment import PaymentRecord

INTERNAL_FIELDS = frozenset({"recipients", "traceparent"})  # kept in the outbox, never sent in the body
EVENT_TYPES = frozenset({"payment.succeeded", "payment.failed", "payment.cancelled", "payment.refunded"})
# Fields of the stored quote snapshot that partners get (never internal bookkeeping).
_QUOTE_FIELDS = ("quote_id", "rate", "mid_rate", "spread_bps")


def event_id(payment_id: str, type: str, refund_id: str | None = None) -> str:
    """Stable and unique per (payment, type, refund): a re-sent event de-duplicates."""
    raw = f"{payment_id}|{type}|{refund_id or ''}"
    return "evt_" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def payment_event(record: PaymentRecord, type: str, *, refund_id: str | None = None) -> dict[str, Any]:
    """The event of ``type`` for ``record`` (as it is about to be stored).

    ``payment.refunded`` needs ``refund_id`` (the refund that succeeded); other types refuse it.
    Raises ValueError on an unknown type or refund: a programming error, never partner input.
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    if (type == "payment.refunded") != (refund_id is not None):
        raise ValueError("refund_id is required for payment.refunded and only for it")
    data: dict[str, Any] = {
        "payment_id": record.payment_id,
        "payment_request_id": record.payment_request_id,
        "status": str(record.status),
        "route": record.route.model_dump(mode="json"),
        "merchant": {"name": record.merchant.name, "city": record.merchant.city,
                     "country": record.merchant.country},
        "merchant_amount": record.merchant_amount.model_dump(mode="json"),
        "payer_amount": record.payer_amount.model_dump(mode="json"),
        "business_day": record.business_day,
        "created_at": _rfc3339(record.created_at),
    }
    if record.quote is not None:
        data["quote"] = {k: record.quote[k] for k in _QUOTE_FIELDS if k in record.quote}
        data["rate"] = record.quote.get("rate")
    if record.failure is not None and type == "payment.failed":
        data["failure"] = record.failure.model_dump(mode="json")
    if type == "payment.cancelled" and record.cancel is not None:
        data["cancel"] = {
            "cancel_request_id": record.cancel.cancel_request_id,
            "business_day": record.cancel.business_day,
        }
    if refund_id is not None:
        refund = next((r for r in record.refunds if r.refund_id == refund_id), None)
        if refund is None:
            raise ValueError(f"payment {record.payment_id} has no refund {refund_id!r}")
        data["refund"] = {
            "refund_id": refund.refund_id,
            "refund_request_id": refund.refund_request_id,
            "amount": refund.amount.model_dump(mode="json"),
            "payer_amount": refund.payer_amount.model_dump(mode="json"),
            "status": refund.status,
            "business_day": refund.business_day,
        }
    return {
        "event_id": event_id(record.payment_id, type, refund_id),
        "type": type,
        "payment_id": record.payment_id,
        "created_at": _rfc3339(datetime.now(UTC)),
        "recipients": sorted({record.route.wallet, record.route.acquirer}),
        "data": data,
        **({"traceparent": tp} if (tp := current_traceparent()) else {}),  # the delivery continues this trace
    }


def wire_body(event: Mapping[str, Any]) -> bytes:
    """The JSON body a partner receives: the event without the internal ``recipients`` and
    ``traceparent`` (the latter travels as the delivery's header)."""
    doc = {k: v for k, v in event.items() if k not in INTERNAL_FIELDS}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def settlement_event(window_id: str, batch: Mapping[str, Any]) -> dict[str, Any]:
    """``settlement.closed`` (PROTOCOL.md §9.1) for one partner's frozen batch of a window."""
    partner = str(batch["partner_id"])
    return {
        "event_id": event_id(f"window:{window_id}", "settlement.closed", partner),
        "type": "settlement.closed",
        "created_at": _rfc3339(datetime.now(UTC)),
        "recipients": [partner],
        "data": {
            "window_id": window_id,
            "partner_id": partner,
            "batch_id": batch["batch_id"],
            "version": batch["version"],
            "content_hash": batch["content_hash"],
            "rows": batch["rows"],
            "url": f"/v1/settlements/windows/{window_id}",
        },
    }
