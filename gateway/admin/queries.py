"""Read-only questions operators ask: find payments, tell one payment's story, sum up the last
minutes. Everything reads the store (so every gateway process answers alike), never scans keys:
search walks the created-time index newest first and loads only the records it looks at.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.events import event_id
from gateway.store.base import Store
from gateway.webhooks.state import DEAD_PREFIX, STATE_PREFIX, dead_letters
from gateway.webhooks.worker import GROUP
from schemas.errors import ValidationFailed
from schemas.payment import PaymentRecord, PaymentStatus

MAX_EXAMINED = 5000  # records one search request may load; past it the page ends early with a cursor
_BATCH = 100
WINDOW_MIN = 15  # "the last minutes" of the overview and the partners' call counts


@dataclass(frozen=True, slots=True)
class Filters:
    partner: str | None = None  # wallet or acquirer on the route
    status: PaymentStatus | None = None
    since: datetime | None = None
    until: datetime | None = None
    request_id: str | None = None
    payer: str | None = None

    def match(self, rec: PaymentRecord) -> bool:
        return (
            (self.partner is None or self.partner in (rec.route.wallet, rec.route.acquirer, rec.partner_id))
            and (self.status is None or rec.status == self.status)
            and (self.until is None or rec.created_at < self.until)
            and (self.request_id is None or rec.payment_request_id == self.request_id)
            and (self.payer is None or rec.payer.id == self.payer)
        )


def encode_cursor(pos: tuple[float, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps([pos[0], pos[1]]).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[float, str]:
    try:
        score, pid = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return float(score), str(pid)
    except (ValueError, TypeError, binascii.Error):
        raise ValidationFailed("cursor: not a cursor this API handed out", field="cursor") from None


def summary(rec: PaymentRecord) -> dict[str, Any]:
    """One row of a payment list."""
    return {
        "payment_id": rec.payment_id, "payment_request_id": rec.payment_request_id,
        "created_at": rec.created_at.isoformat(), "status": str(rec.status), "stage": rec.stage,
        "wallet": rec.route.wallet, "acquirer": rec.route.acquirer, "kind": rec.route.kind,
        "merchant": rec.merchant.name, "merchant_amount": rec.merchant_amount.model_dump(mode="json"),
        "payer_amount": rec.payer_amount.model_dump(mode="json"), "payer": rec.payer.id,
        "failure": rec.failure.code if rec.failure else None, "business_day": rec.business_day,
        "review": "_needs_review" in rec.flags,
    }


async def _load(store: Store, ids: list[str]) -> list[PaymentRecord | None]:
    return list(await asyncio.gather(*(store.get_payment(i) for i in ids)))


async def search(store: Store, f: Filters, limit: int, cursor: str | None) -> tuple[list[PaymentRecord], str | None]:
    """Matching payments newest first (created time, then id) and the cursor of the next page."""
    if f.request_id is not None and f.partner is not None:  # the claim names the payment: no walk
        claim = await store.get_claim(f.partner, f.request_id)
        rec = await store.get_payment(claim.resource_id) if claim is not None else None
        return ([rec] if rec is not None and f.match(rec) else []), None
    pos = decode_cursor(cursor) if cursor else None
    if pos is None and f.until is not None:
        pos = (f.until.timestamp(), "")  # below every id created at or after ``until``
    since = f.since.timestamp() if f.since is not None else None
    found: list[PaymentRecord] = []
    examined = 0
    while examined < MAX_EXAMINED:
        rows = await store.recent_payments(_BATCH, before=pos, since=since)
        for (at, pid), rec in zip(rows, await _load(store, [pid for _, pid in rows]), strict=True):
            pos, examined = (at, pid), examined + 1
            if rec is not None and f.match(rec):  # None: discarded between the index read and this one
                found.append(rec)
                if len(found) == limit:
                    return found, encode_cursor(pos)
        if len(rows) < _BATCH:
            return found, None
    return found, encode_cursor(pos) if pos is not None else None


def _event_ids(rec: PaymentRecord) -> list[tuple[str, str]]:
    """(type, event_id) of every event this payment may have made (ids are derived, see gateway.events)."""
    out = [(t, event_id(rec.payment_id, t)) for t in ("payment.succeeded", "payment.failed", "payment.cancelled")]
    return out + [("payment.refunded", event_id(rec.payment_id, "payment.refunded", r.refund_id)) for r in rec.refunds]


async def timeline(store: Store, rec: PaymentRecord) -> list[dict[str, Any]]:
    """Every step of ``rec`` in time order: state changes, partner calls, refunds and cancel,
    events and their webhook delivery (attempts, errors, dead letter)."""
    items: list[dict[str, Any]] = [{"at": rec.created_at.isoformat(), "kind": "created", "status": "PROCESSING",
                                    "detail": f"{rec.route.wallet} -> {rec.route.acquirer} ({rec.route.kind})"}]
    for h in rec.history:
        items.append({"at": h.at.isoformat(), "kind": "state", "status": str(h.status), "stage": h.stage,
                      "detail": h.reason})
    for leg, partner in (("debit", rec.route.wallet), ("credit", rec.route.acquirer)):
        for op, o in sorted((rec.legs.get(leg) or {}).items()):
            if isinstance(o, dict) and "kind" in o and "at" in o:
                items.append({"at": o["at"], "kind": "partner_call", "partner": partner, "op": op,
                              "outcome": o["kind"], "code": o.get("code"), "detail": o.get("message") or "",
                              "partner_ref": o.get("partner_ref")})
    for r in rec.refunds:
        items.append({"at": r.created_at.isoformat(), "kind": "refund", "status": r.status, "stage": r.stage,
                      "detail": f"{r.refund_id} {r.amount.minor} {r.amount.currency} by {r.requested_by or '-'}"
                                + (f" failed {r.failure.code}" if r.failure else "")})
    if (c := rec.cancel) is not None:
        items.append({"at": c.created_at.isoformat(), "kind": "cancel", "status": c.status, "stage": c.stage,
                      "detail": f"{c.cancel_request_id} by {c.requested_by or '-'}"
                                + (f" failed {c.failure.code}" if c.failure else "")})
    for typ, eid in _event_ids(rec):
        state_raw, dead_raw = await asyncio.gather(store.get_blob(STATE_PREFIX + eid),
                                                   store.get_blob(DEAD_PREFIX + eid))
        if state_raw is None and dead_raw is None and not _emitted(rec, typ):
            continue
        state = json.loads(state_raw) if state_raw else {}
        dead = json.loads(dead_raw) if dead_raw else None
        at = state.get("first_at") or (dead or {}).get("gave_up_at")
        items.append({
            "at": datetime.fromtimestamp(float(at), UTC).isoformat() if at else rec.updated_at.isoformat(),
            "kind": "webhook", "event_id": eid, "event_type": typ,
            "attempts": state.get("attempts", 0) + 1 if state else (dead or {}).get("attempts", 1),
            "delivered": state.get("delivered"),
            "last_error": state.get("last_error") or (dead or {}).get("last_error"),
            "dead_letter": dead is not None and not dead.get("replays"), "replays": (dead or {}).get("replays", []),
            "detail": "dead letter" if dead is not None and not dead.get("replays") else
                      ("delivered" if not state or state.get("done") else "retrying"),
        })
    items.sort(key=lambda i: (str(i["at"]), _ORDER.get(i["kind"], 9)))
    prev: datetime | None = None
    for i in items:  # how long each partner call took, measured from the step before it
        at = datetime.fromisoformat(str(i["at"]))
        if i["kind"] == "partner_call" and prev is not None:
            i["latency_ms"] = round((at - prev).total_seconds() * 1000, 1)
        prev = at
    return items


_ORDER = {"created": 0, "partner_call": 1, "state": 2, "refund": 3, "cancel": 3, "webhook": 4}


def _emitted(rec: PaymentRecord, typ: str) -> bool:
    """Whether the payment's state implies the event was made (webhook state may be absent:
    a first delivery that succeeded writes none)."""
    return {
        "payment.succeeded": rec.status in (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED,
                                            PaymentStatus.PARTIALLY_REFUNDED),
        "payment.failed": rec.status == PaymentStatus.FAILED,
        "payment.cancelled": rec.status == PaymentStatus.CANCELLED,
    }.get(typ, typ == "payment.refunded")


async def recent(store: Store, window_min: int) -> list[PaymentRecord]:
    """Payments created in the last ``window_min`` minutes (at most ``MAX_EXAMINED``)."""
    since = datetime.now(UTC) - timedelta(minutes=window_min)
    return (await search(store, Filters(since=since), MAX_EXAMINED, None))[0]


async def overview(store: Store, partners: list[str], window_min: int = WINDOW_MIN) -> dict[str, Any]:
    """The console's first page: the last ``window_min`` minutes from the created-time index."""
    now = datetime.now(UTC)
    recent_ = await recent(store, window_min)
    done = [r for r in recent_ if r.status != PaymentStatus.PROCESSING]
    ok = [r for r in done if r.status != PaymentStatus.FAILED]
    flight_ids = await store.payments_in_progress(1000)
    flight = [r for r in await _load(store, flight_ids) if r is not None and r.status == PaymentStatus.PROCESSING]
    oldest = min((r.created_at for r in flight), default=None)
    backlog, dead = await asyncio.gather(store.outbox_backlog(GROUP), dead_letters(store))
    return {
        "window_min": window_min,
        "payments": len(recent_),
        "payments_per_min": round(len(recent_) / window_min, 2),
        "success_rate": round(len(ok) / len(done), 4) if done else None,
        "in_flight": len(flight),
        "oldest_in_flight_s": round((now - oldest).total_seconds(), 1) if oldest else None,
        "webhook_backlog": backlog,
        "dead_letters": sum(1 for d in dead if not d.get("replays")),
        "partner_calls": partner_calls(recent_, partners),
    }


def partner_calls(records: list[PaymentRecord], partners: list[str]) -> dict[str, dict[str, Any]]:
    """Per partner: calls recorded on these payments' legs, and the share that failed or went unknown."""
    out: dict[str, dict[str, Any]] = {p: {"calls": 0, "errors": 0} for p in partners}
    for rec in records:
        for leg, partner in (("debit", rec.route.wallet), ("credit", rec.route.acquirer)):
            for o in (rec.legs.get(leg) or {}).values():
                if isinstance(o, dict) and "kind" in o:
                    row = out.setdefault(partner, {"calls": 0, "errors": 0})
                    row["calls"] += 1
                    row["errors"] += o["kind"] == "unknown"
    for row in out.values():
        row["error_rate"] = round(row["errors"] / row["calls"], 4) if row["calls"] else None
    return out
