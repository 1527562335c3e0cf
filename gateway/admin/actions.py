"""What operators change, each idempotent and each written to the audit log (who, what, before,
after): replay a dead letter, pause or resume a partner, resolve a payment held for review."""

from __future__ import annotations

import json
import time
from typing import Any

from gateway.admin import audit
from gateway.admin.auth import Operator
from gateway.partner_status import KEY as STATUS_KEY
from gateway.partner_status import PartnerStatus
from gateway.payments.ports import Pricing
from gateway.payments.review import decide_review
from gateway.store.base import Store
from gateway.webhooks.state import DEAD_PREFIX, DeliveryState, load_state, locked_index, save_state
from schemas.errors import InvalidState, NotFound, ValidationFailed
from schemas.payment import PaymentRecord

REPLAY_STATE_TTL_S = 7 * 86400


async def replay(store: Store, op: Operator, eid: str) -> dict[str, Any]:
    """Put a dead letter's event back on its shard's outbox with the same ``event_id`` (partners
    de-duplicate on it), its delivery state reset (recipients that already answered 2xx are kept,
    so only the others get it again), and the letter marked replayed and taken off the index.
    The letter itself is kept: an event that dies again is recorded again."""
    raw = await store.get_blob(DEAD_PREFIX + eid)
    if raw is None:
        raise NotFound(f"no dead letter {eid}", code="DEAD_LETTER_NOT_FOUND")
    doc = json.loads(raw)
    event = doc["event"]
    old = await load_state(store, eid)
    delivered = list(old.delivered) if old else [str(r) for r in doc.get("delivered", [])]
    state = DeliveryState(first_at=time.time(), delivered=delivered)
    await save_state(store, eid, state, REPLAY_STATE_TTL_S)
    payment_id = str(event.get("payment_id") or eid)
    await store.append_events(store.shard_of(payment_id), [event])
    replays = [*doc.get("replays", []), {"at": time.time(), "by": op.name}]
    await store.put_blob(DEAD_PREFIX + eid, json.dumps({**doc, "replays": replays}).encode(), None)
    await locked_index(store, f"admin:{op.name}", lambda ids: [i for i in ids if i != eid])
    after = {"requeued": True, "replays": len(replays), "recipients_left": [
        r for r in event.get("recipients", []) if r not in state.delivered]}
    await audit.record(store, op, "dead_letter.replay", eid, before={"dead": True, "reason": doc.get("reason")},
                       after=after)
    return {"event_id": eid, **after}


async def set_paused(
    store: Store, status: PartnerStatus, known: list[str], op: Operator, partner: str, paused: bool, reason: str,
) -> dict[str, Any]:
    """Pause or resume ``partner`` for every gateway process sharing the store (each reads the
    flag within ``routing_policy.status_refresh_s``; this one at once)."""
    if partner not in known:
        raise NotFound(f"no partner {partner}")
    raw = await store.get_blob(STATUS_KEY + partner)
    before = json.loads(raw) if raw else {"paused": False}
    await status.set_paused(partner, paused, reason or f"{'paused' if paused else 'resumed'} by {op.name}")
    after = {"paused": paused, "reason": reason}
    await audit.record(store, op, "partner.pause" if paused else "partner.resume", partner,
                       before={"paused": bool(before.get("paused")), "reason": before.get("reason", "")},
                       after=after, note=reason)
    return {"partner": partner, **after}


RESOLUTIONS = {"approve": True, "reject": False}


async def resolve(
    store: Store, pricing: Pricing, op: Operator, payment_id: str, resolution: str, note: str,
) -> PaymentRecord:
    """An admin's decision on a payment held for review: ``approve`` (its debit goes ahead) or
    ``reject`` (FAILED, SCREENING_HIT). Only the hold changes; the decision and note are recorded."""
    if resolution not in RESOLUTIONS:
        raise ValidationFailed("resolution: approve or reject", field="resolution")
    if not note.strip():
        raise ValidationFailed("note: say why (it goes to the audit log)", field="note")
    rec = await store.get_payment(payment_id)
    if rec is None:
        raise NotFound(f"no payment {payment_id}", code="PAYMENT_NOT_FOUND")
    before = {"status": str(rec.status), "stage": rec.stage, "flags": list(rec.flags)}
    new = await decide_review(store, pricing, payment_id, approve=RESOLUTIONS[resolution], operator=op.name)
    if new is None or new.version == rec.version:
        raise InvalidState(f"payment {payment_id} is not held for review (status {rec.status}, stage {rec.stage})")
    await audit.record(store, op, "payment.resolve", payment_id, before=before,
                       after={"status": str(new.status), "stage": new.stage, "resolution": resolution}, note=note)
    return new
