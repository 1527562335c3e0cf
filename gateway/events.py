"""Payment events for webhooks (PROTOCOL.md §9).

Minimal version per the agreed contract (written by the payments engineer so the
orchestrator can append events; the settlement/webhooks engineer owns and extends it).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from schemas.payment import PaymentRecord

EVENT_TYPES = frozenset({"payment.succeeded", "payment.failed", "payment.cancelled", "payment.refunded"})


def event_id(payment_id: str, type: str, refund_id: str | None = None) -> str:
    """Stable and unique per (payment, type, refund): a re-sent event de-duplicates."""
    raw = f"{payment_id}|{type}|{refund_id or ''}"
    return "evt_" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def payment_event(record: PaymentRecord, type: str, *, refund_id: str | None = None) -> dict[str, Any]:
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    data: dict[str, Any] = {
        "payment_id": record.payment_id,
        "payment_request_id": record.payment_request_id,
        "status": str(record.status),
        "route": record.route.model_dump(mode="json"),
        "merchant_amount": record.merchant_amount.model_dump(mode="json"),
        "payer_amount": record.payer_amount.model_dump(mode="json"),
        "business_day": record.business_day,
    }
    if record.quote is not None:
        data["rate"] = record.quote.get("rate")
    if record.failure is not None and type == "payment.failed":
        data["failure"] = record.failure.model_dump(mode="json")
    if refund_id is not None:
        refund = next((r for r in record.refunds if r.refund_id == refund_id), None)
        if refund is not None:
            data["refund"] = refund.model_dump(mode="json")
    return {
        "event_id": event_id(record.payment_id, type, refund_id),
        "type": type,
        "payment_id": record.payment_id,
        "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "recipients": sorted({record.route.wallet, record.route.acquirer}),
        "data": data,
    }
