"""``MemoryStore``: the embedded default, so ``qrgw demo`` and ``qrgw serve`` need nothing installed.

Every method runs its critical section without awaiting, so under asyncio each is atomic by
construction (one event loop, no preemption between awaits). State is per process: several
gateway processes need ``RedisStore``. TTLs follow an injectable monotonic clock so tests can
move time without sleeping.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.store.base import (
    Begun,
    Claim,
    ClaimStatus,
    Finish,
    LimitItem,
    QuoteUse,
    QuoteUseStatus,
    Reservation,
    StaleVersion,
    Store,
    due_score,
    has_work_left,
    payment_lease,
)
from gateway.store.memory_outbox import MemoryOutbox
from schemas.errors import ConflictError, InvalidState
from schemas.payment import HistoryEntry, PaymentRecord, is_legal


@dataclass
class _Expiring:
    value: Any
    expires_at: float | None  # monotonic seconds; None: never


class MemoryStore(MemoryOutbox, Store):
    """In-process implementation of the ``Store`` port (the outbox: ``gateway.store.memory_outbox``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, shards: int = 16) -> None:
        self._clock = clock
        self.shards = shards
        self._kv: dict[str, _Expiring] = {}  # claims, nonces, quotes, blobs, leases
        self._payments: dict[str, str] = {}  # id -> JSON (copies, so callers never alias state)
        self._days: dict[str, set[str]] = {}
        self._due: dict[str, float] = {}  # payments with work left -> next_attempt_at (epoch s)
        self._limits: dict[tuple[str, str], _Expiring] = {}  # (holder, counter) -> total
        # (holder, res id) -> counter -> held; lives as long as its longest counter, like on Redis
        self._reservations: dict[tuple[str, str], _Expiring] = {}
        self._buckets: dict[str, tuple[float, float]] = {}  # bucket -> (tokens, at)
        self._init_outbox()  # gateway.store.memory_outbox
        self._settle: dict[str, str] = {}  # settlement windows, batches, "last" (JSON)
        self._recx: dict[str, str] = {}  # recon exception id -> JSON
        self._created: dict[str, float] = {}  # payment id -> created_at (admin search index)
        self._audit: list[tuple[str, str]] = []  # (entry id, JSON), append-only

    # -- helpers ------------------------------------------------------------------------------------
    def _get(self, key: str) -> Any:
        item = self._kv.get(key)
        if item is None:
            return None
        if item.expires_at is not None and item.expires_at <= self._clock():
            del self._kv[key]
            return None
        return item.value

    def _put(self, key: str, value: Any, ttl_s: float | None) -> None:
        self._kv[key] = _Expiring(value, None if ttl_s is None else self._clock() + ttl_s)

    # -- lifecycle ----------------------------------------------------------------------------------
    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    # -- idempotency --------------------------------------------------------------------------------
    async def claim(
        self, scope: str, key: str, fingerprint: str, *, resource_id: str, ttl_s: int = 7 * 86400
    ) -> Claim:
        k = f"claim:{scope}:{key}"
        found = self._get(k)
        if found is None:
            self._put(k, {"fp": fingerprint, "rid": resource_id, "done": False, "answer": None}, ttl_s)
            return Claim(ClaimStatus.NEW, resource_id)
        if found["fp"] != fingerprint:
            return Claim(ClaimStatus.CONFLICT, found["rid"])
        if found["rid"] == resource_id and not found["done"]:
            return Claim(ClaimStatus.NEW, resource_id)  # the winner, repeating
        if found["done"]:
            return Claim(ClaimStatus.DONE, found["rid"], copy.deepcopy(found["answer"]))
        return Claim(ClaimStatus.IN_PROGRESS, found["rid"])

    async def get_claim(self, scope: str, key: str, fingerprint: str | None = None) -> Claim | None:
        found = self._get(f"claim:{scope}:{key}")
        if found is None:
            return None
        if fingerprint is not None and found["fp"] != fingerprint:
            return Claim(ClaimStatus.CONFLICT, found["rid"])
        if found["done"]:
            return Claim(ClaimStatus.DONE, found["rid"], copy.deepcopy(found["answer"]))
        return Claim(ClaimStatus.NEW, found["rid"])

    async def finish_claim(self, scope: str, key: str, answer: Mapping[str, Any]) -> None:
        found = self._get(f"claim:{scope}:{key}")
        if found is not None:
            found["done"] = True
            found["answer"] = json.loads(json.dumps(dict(answer)))

    async def abandon_claim(self, scope: str, key: str) -> None:
        k = f"claim:{scope}:{key}"
        found = self._get(k)
        if found is not None and not found["done"]:
            del self._kv[k]

    # -- payments -----------------------------------------------------------------------------------
    async def create_payment(self, record: PaymentRecord, events: Sequence[Mapping[str, Any]] = ()) -> None:
        if record.payment_id in self._payments:
            if self._payments[record.payment_id] == record.model_dump_json():
                return  # a repeat of the very same call, as RedisStore answers a retried one
            raise ConflictError(f"payment {record.payment_id} exists")
        self._insert(record, events)

    def _insert(self, record: PaymentRecord, events: Sequence[Mapping[str, Any]]) -> None:
        self._payments[record.payment_id] = record.model_dump_json()
        self._days.setdefault(record.business_day, set()).add(record.payment_id)
        self._created[record.payment_id] = record.created_at.timestamp()
        self._index_due(record)
        self._append(self.shard_of(record.payment_id), events)

    def _index_due(self, record: PaymentRecord) -> None:
        if has_work_left(record):
            self._due[record.payment_id] = due_score(record)
        else:
            self._due.pop(record.payment_id, None)

    async def begin_payment(
        self,
        scope: str,
        key: str,
        fingerprint: str,
        record: PaymentRecord,
        *,
        owner: str,
        lease_ms: int,
        claim_ttl_s: int = 7 * 86400,
    ) -> Begun:
        if self.shard_of(record.payment_id) != self.claim_shard(scope, key):
            raise ValueError("begin_payment: the payment id is not in its claim's shard")
        claim = await self.claim(scope, key, fingerprint, resource_id=record.payment_id, ttl_s=claim_ttl_s)
        if claim.status is not ClaimStatus.NEW:
            return Begun(claim, False)
        if not await self.acquire_lease(payment_lease(record.payment_id), owner, lease_ms):
            return Begun(Claim(ClaimStatus.IN_PROGRESS, record.payment_id), False)
        if record.payment_id not in self._payments:
            self._insert(record, ())
        return Begun(claim, True)

    async def discard_payment(self, scope: str, key: str, payment_id: str, owner: str) -> None:
        raw = self._payments.get(payment_id)
        if raw is not None:
            rec = PaymentRecord.model_validate_json(raw)
            if rec.version != 0:
                return  # it moved on: never delete a payment that may have moved money
            del self._payments[payment_id]
            self._days.get(rec.business_day, set()).discard(payment_id)
            self._due.pop(payment_id, None)
            self._created.pop(payment_id, None)
        await self.abandon_claim(scope, key)
        await self.release_lease(payment_lease(payment_id), owner)

    async def get_payment(self, payment_id: str) -> PaymentRecord | None:
        raw = self._payments.get(payment_id)
        return None if raw is None else PaymentRecord.model_validate_json(raw)

    async def update_payment(
        self,
        record: PaymentRecord,
        *,
        expected_version: int,
        reason: str,
        events: Sequence[Mapping[str, Any]] = (),
        extra_days: Sequence[str] = (),
        finish: Finish | None = None,
    ) -> PaymentRecord:
        raw = self._payments.get(record.payment_id)
        if raw is None:
            raise StaleVersion(f"payment {record.payment_id} does not exist")
        stored = PaymentRecord.model_validate_json(raw)
        if stored.version != expected_version:
            raise StaleVersion(f"payment {record.payment_id} is at version {stored.version}, not {expected_version}")
        if not is_legal(stored.status, record.status):
            raise InvalidState(f"illegal transition {stored.status} -> {record.status}")
        now = datetime.now(UTC)
        entry = HistoryEntry(at=now, status=record.status, stage=record.stage, reason=reason)
        new = record.model_copy(
            update={"version": expected_version + 1, "updated_at": now, "history": [*record.history, entry]}
        )
        self._payments[new.payment_id] = new.model_dump_json()
        for day in extra_days:
            self._days.setdefault(day, set()).add(new.payment_id)
        self._index_due(new)
        self._append(self.shard_of(new.payment_id), events)
        if finish is not None:
            await self.finish_claim(finish.scope, finish.key, finish.answer)
            await self.release_lease(payment_lease(new.payment_id), finish.owner)
        return new

    async def payments_in_progress(self, limit: int = 1000) -> list[str]:
        return sorted(self._due)[:limit]

    async def payments_due(self, now: datetime, limit: int = 500) -> tuple[list[str], datetime | None]:
        cut = now.timestamp()
        due = sorted((score, pid) for pid, score in self._due.items() if score <= cut)[:limit]
        later = min((score for score in self._due.values() if score > cut), default=None)
        return [pid for _, pid in due], (None if later is None else datetime.fromtimestamp(later, UTC))

    async def payments_of_day(self, day: str) -> list[str]:
        return sorted(self._days.get(day, ()))

    # -- nonces -------------------------------------------------------------------------------------
    async def remember_nonce(self, keyid: str, nonce: str, ttl_s: int) -> bool:
        k = f"nonce:{keyid}:{nonce}"
        if self._get(k) is not None:
            return False
        self._put(k, True, ttl_s)
        return True

    # -- quotes -------------------------------------------------------------------------------------
    async def put_quote(self, quote_id: str, data: Mapping[str, Any], ttl_s: int) -> None:
        self._put(f"quote:{quote_id}", {"data": json.loads(json.dumps(dict(data))), "used_by": None}, ttl_s)

    async def get_quote(self, quote_id: str) -> Mapping[str, Any] | None:
        found = self._get(f"quote:{quote_id}")
        return None if found is None else copy.deepcopy(found["data"])

    async def consume_quote(self, quote_id: str, expect: Mapping[str, str], consumer: str) -> QuoteUse:
        found = self._get(f"quote:{quote_id}")
        if found is None:
            return QuoteUse(QuoteUseStatus.MISSING)
        data = found["data"]
        if any(str(data.get(k)) != str(v) for k, v in expect.items()):
            return QuoteUse(QuoteUseStatus.MISMATCH)
        if found["used_by"] not in (None, consumer):
            return QuoteUse(QuoteUseStatus.USED)
        found["used_by"] = consumer
        return QuoteUse(QuoteUseStatus.OK, copy.deepcopy(data))

    async def restore_quote(self, quote_id: str, consumer: str) -> None:
        found = self._get(f"quote:{quote_id}")
        if found is not None and found["used_by"] == consumer:
            found["used_by"] = None

    # -- limits -------------------------------------------------------------------------------------
    def _usage(self, holder: str, counter: str) -> int:
        item = self._limits.get((holder, counter))
        if item is None:
            return 0
        if item.expires_at is not None and item.expires_at <= self._clock():
            del self._limits[(holder, counter)]
            return 0
        return int(item.value)

    def _reservation(self, holder: str, reservation_id: str) -> dict[str, int] | None:
        item = self._reservations.get((holder, reservation_id))
        if item is None:
            return None
        if item.expires_at is not None and item.expires_at <= self._clock():
            del self._reservations[(holder, reservation_id)]
            return None
        held: dict[str, int] = item.value
        return held

    async def reserve_limits(self, holder: str, reservation_id: str, items: Sequence[LimitItem]) -> Reservation:
        if len({i.counter for i in items}) != len(items):
            raise ValueError("reserve_limits: each counter at most once")
        if self._reservation(holder, reservation_id) is not None:
            return Reservation(True, used={i.counter: self._usage(holder, i.counter) for i in items})
        before = {i.counter: self._usage(holder, i.counter) for i in items}
        for item in items:
            if before[item.counter] + item.amount > item.cap:
                return Reservation(False, denied=item, used=before)
        now = self._clock()
        for item in items:
            total = before[item.counter] + item.amount
            self._limits[(holder, item.counter)] = _Expiring(total, now + item.ttl_s)
        self._reservations[(holder, reservation_id)] = _Expiring(
            {i.counter: i.amount for i in items}, now + max((i.ttl_s for i in items), default=1))
        return Reservation(True, used={i.counter: self._usage(holder, i.counter) for i in items})

    async def release_limits(
        self,
        holder: str,
        reservation_id: str,
        amounts: Mapping[str, int] | None = None,
        *,
        release_id: str | None = None,
    ) -> None:
        held = self._reservation(holder, reservation_id)
        if held is None:
            return
        if release_id is not None:
            mark = f"r:{release_id}"
            if mark in held:
                return
            held[mark] = 0
        for counter, amount in list(held.items()):
            give = amount if amounts is None else min(amount, max(0, amounts.get(counter, 0)))
            if give <= 0:
                continue
            held[counter] = amount - give
            item = self._limits.get((holder, counter))
            if item is not None:
                item.value = max(0, int(item.value) - give)

    async def limit_usage(self, holder: str, counter: str) -> int:
        return self._usage(holder, counter)

    # -- rate limiting ------------------------------------------------------------------------------
    async def take_token(self, bucket: str, rate_per_s: float, burst: int) -> float:
        now = self._clock()
        tokens, at = self._buckets.get(bucket, (float(burst), now))
        tokens = min(float(burst), tokens + (now - at) * rate_per_s)
        if tokens >= 1.0:
            self._buckets[bucket] = (tokens - 1.0, now)
            return 0.0
        self._buckets[bucket] = (tokens, now)
        return (1.0 - tokens) / rate_per_s

    # -- blobs and leases ---------------------------------------------------------------------------
    async def put_blob(self, key: str, value: bytes, ttl_s: int | None = None) -> None:
        self._put(f"blob:{key}", bytes(value), ttl_s)

    async def get_blob(self, key: str) -> bytes | None:
        found = self._get(f"blob:{key}")
        return None if found is None else bytes(found)

    async def acquire_lease(self, name: str, owner: str, ttl_ms: int) -> bool:
        k = f"lease:{name}"
        holder = self._get(k)
        if holder is not None and holder != owner:
            return False
        self._put(k, owner, ttl_ms / 1000)
        return True

    async def release_lease(self, name: str, owner: str) -> None:
        k = f"lease:{name}"
        if self._get(k) == owner:
            del self._kv[k]

    # -- settlement windows and reconciliation -------------------------------------------------------
    async def open_event_group(self, group: str) -> None:
        for stream in self._streams:
            self._group(stream, group)

    async def get_payments(self, payment_ids: Sequence[str]) -> list[PaymentRecord | None]:
        return [await self.get_payment(pid) for pid in payment_ids]

    async def put_window(self, window: Mapping[str, Any], batches: Mapping[str, Mapping[str, Any]]) -> bool:
        wid = str(window["window_id"])
        if f"win:{wid}" in self._settle:
            return False
        self._settle[f"win:{wid}"] = json.dumps(dict(window))
        for partner, batch in batches.items():
            self._settle[f"batch:{wid}:{partner}"] = json.dumps(dict(batch))
        self._settle["last"] = wid
        return True

    def _settle_doc(self, key: str) -> Mapping[str, Any] | None:
        raw = self._settle.get(key)
        return None if raw is None else dict(json.loads(raw))

    async def get_window(self, window_id: str) -> Mapping[str, Any] | None:
        return self._settle_doc(f"win:{window_id}")

    async def last_window(self) -> Mapping[str, Any] | None:
        last = self._settle.get("last")
        return None if last is None else self._settle_doc(f"win:{last}")

    async def get_batch(self, window_id: str, partner_id: str) -> Mapping[str, Any] | None:
        return self._settle_doc(f"batch:{window_id}:{partner_id}")

    async def add_recon_exceptions(self, exceptions: Sequence[Mapping[str, Any]]) -> int:
        new = 0
        for e in exceptions:
            if str(e["exception_id"]) not in self._recx:
                self._recx[str(e["exception_id"])] = json.dumps(dict(e))
                new += 1
        return new

    async def recon_exceptions(self, window_id: str | None = None) -> list[Mapping[str, Any]]:
        docs = (json.loads(self._recx[k]) for k in sorted(self._recx))
        return [d for d in docs if window_id is None or d["window_id"] == window_id]

    async def resolve_recon_exception(self, exception_id: str, note: str, at: str) -> Mapping[str, Any] | None:
        raw = self._recx.get(exception_id)
        if raw is None:
            return None
        doc = json.loads(raw)
        if doc.get("resolved_at") is None:
            doc.update(resolved_at=at, note=note)
            self._recx[exception_id] = json.dumps(doc)
        return dict(doc)

    # -- operators: payment search index and audit log (issue 19) ----------------------------------
    async def recent_payments(
        self, limit: int, *, before: tuple[float, str] | None = None, since: float | None = None
    ) -> list[tuple[float, str]]:
        rows = sorted(((at, pid) for pid, at in self._created.items()), reverse=True)
        return [r for r in rows if (before is None or r < before) and (since is None or r[0] >= since)][:limit]

    async def append_audit(self, entry_id: str, entry: Mapping[str, Any]) -> None:
        if any(eid == entry_id for eid, _ in self._audit):
            return  # a repeat
        self._audit.append((entry_id, json.dumps(dict(entry))))

    async def audit_page(self, limit: int, *, before: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        end = len(self._audit) if before is None else max(0, min(int(before), len(self._audit)))
        return [(str(i), json.loads(self._audit[i][1])) for i in range(end - 1, max(-1, end - 1 - limit), -1)]
