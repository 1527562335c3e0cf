"""The one state-store port of qrgw; ``MemoryStore`` and ``RedisStore`` implement it.

Every method is atomic on its own. Multi-key changes (payment + history + day index +
processing set + outbox) happen in one Lua script / MULTI on Redis, under one lock on the
in-memory store. Redis errors surface as ``schemas.errors.StoreUnavailable`` and never
leave a half-written payment.

Redis Cluster: all keys of one payment share a hash tag derived from its id (its *shard*),
and each shard has its own outbox stream, day index and processing set in that slot, so a
payment transition and its events are one script in one slot. Limit counters share a
hash tag per *holder* (payer). Readers of the outbox / day index / processing set go over
every shard.

``fx.ports`` and ``gateway.signing`` declare the subsets they use as Protocols; this class
satisfies them structurally.
"""

from __future__ import annotations

import abc
import zlib
from collections.abc import Awaitable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from schemas.payment import PaymentRecord, PaymentStatus

T = TypeVar("T")

# What the current task's store calls are for: "request" (a partner's request, the default) or
# "background" (recovery, webhooks, settlement...); RedisStore counts its round trips by it.
PURPOSE: ContextVar[str] = ContextVar("qrgw_store_purpose", default="request")


PAYMENT_LEASE = "lease:payment:"


def payment_lease(payment_id: str) -> str:
    """The name of a payment's lease (its driver's hold): ``begin_payment`` takes it, the last write
    releases it, and RedisStore keeps it in the payment's slot."""
    return PAYMENT_LEASE + payment_id


async def in_background(work: Awaitable[T]) -> T:
    """Run ``work`` (a background task's body) with its store calls counted as background. Set in
    the task itself: a context var set where the task is created would leak to later tasks."""
    PURPOSE.set("background")
    return await work


def has_work_left(record: PaymentRecord) -> bool:
    """A payment stays in the processing set while it, a refund or its cancel is unfinished."""
    return (
        record.status == PaymentStatus.PROCESSING
        or any(r.status == "PROCESSING" for r in record.refunds)
        or (record.cancel is not None and record.cancel.status == "PROCESSING")
    )


class ClaimStatus(StrEnum):
    NEW = "NEW"  # the caller won the key and must finish or abandon it
    IN_PROGRESS = "IN_PROGRESS"  # same body, another request is still working on it
    DONE = "DONE"  # same body, finished: ``answer`` holds what was stored
    CONFLICT = "CONFLICT"  # a different body used this key


@dataclass(frozen=True, slots=True)
class Claim:
    status: ClaimStatus
    resource_id: str  # the winner's resource id (e.g. payment_id), for every status but CONFLICT
    answer: Mapping[str, Any] | None = None


class QuoteUseStatus(StrEnum):
    OK = "OK"
    MISSING = "MISSING"  # unknown or expired
    USED = "USED"  # consumed already (by someone else)
    MISMATCH = "MISMATCH"  # bound to another partner, QR or amount


@dataclass(frozen=True, slots=True)
class Begun:
    """What ``begin_payment`` did: the claim's answer, and whether this call holds the payment
    (claim NEW, lease taken, record stored or found identical)."""

    claim: Claim
    created: bool


@dataclass(frozen=True, slots=True)
class Finish:
    """Folded into a payment's last write by the request (or recovery) that drove it: mark the
    request's claim DONE with ``answer`` and release the payment's lease held by ``owner``."""

    scope: str
    key: str
    answer: Mapping[str, Any]
    owner: str


@dataclass(frozen=True, slots=True)
class QuoteUse:
    status: QuoteUseStatus
    data: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class LimitItem:
    """Reserve ``amount`` against ``cap`` on ``counter`` (e.g. ``annual:2026``)."""

    counter: str
    amount: int
    cap: int
    ttl_s: int  # the counter's lifetime: past the end of its window


@dataclass(frozen=True, slots=True)
class Reservation:
    ok: bool
    denied: LimitItem | None = None  # the first item that would pass its cap
    used: Mapping[str, int] = field(default_factory=dict)  # each counter's total after (or, denied, before)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    entry_id: str
    shard: int
    event: Mapping[str, Any]
    deliveries: int  # how many times it was handed out, this one included


class StaleVersion(Exception):
    """``update_payment`` lost a compare-and-set race: re-read and decide again."""


class Store(abc.ABC):
    """Async state store. Implementations: ``MemoryStore`` (embedded), ``RedisStore``."""

    shards: int = 16

    # -- lifecycle ------------------------------------------------------------------------------
    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable when the store cannot answer."""

    @abc.abstractmethod
    async def aclose(self) -> None: ...

    # -- idempotency ----------------------------------------------------------------------------
    @abc.abstractmethod
    async def claim(
        self, scope: str, key: str, fingerprint: str, *, resource_id: str, ttl_s: int = 7 * 86400
    ) -> Claim:
        """Claim ``(scope, key)`` for a request whose body hashes to ``fingerprint``.

        The first caller gets NEW with its own ``resource_id``; later callers get the
        winner's id with IN_PROGRESS or DONE (same fingerprint) or CONFLICT. The winner
        repeating its own call (same fingerprint and ``resource_id``) gets NEW again, so a call
        retried after a lost reply is safe.
        """

    @abc.abstractmethod
    async def get_claim(self, scope: str, key: str, fingerprint: str | None = None) -> Claim | None:
        """The claim on ``(scope, key)`` as a repeat would see it (read only): None if absent;
        CONFLICT when ``fingerprint`` is given and differs from the claim's; NEW stands for
        "claimed, not finished" (IN_PROGRESS to anyone but its winner)."""

    @abc.abstractmethod
    async def finish_claim(self, scope: str, key: str, answer: Mapping[str, Any]) -> None:
        """Mark the claim DONE and store ``answer`` (small JSON) for repeats."""

    @abc.abstractmethod
    async def abandon_claim(self, scope: str, key: str) -> None:
        """Forget a NEW claim whose request was rejected before any state changed."""

    # -- payments -------------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_payment(self, record: PaymentRecord, events: Sequence[Mapping[str, Any]] = ()) -> None:
        """Insert a new payment (version 0), index it by business day and, while PROCESSING, in
        the processing set; append ``events`` to its shard's outbox. Raises ConflictError if
        the id exists (unless the stored record is identical: a retried call, no effect)."""

    @abc.abstractmethod
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
        """One atomic step (one script, one slot): claim ``(scope, key)`` for ``record.payment_id``,
        take the payment's lease for ``owner`` and store ``record`` (indexed by day and by due time).

        ``record.payment_id`` must lie in ``claim_shard(scope, key)``. A repeat of the very same
        call (its reply was lost) answers as the first did. When the claim is another request's
        (IN_PROGRESS, DONE, CONFLICT) nothing is written. When the claim is ours but the record
        already exists (a takeover after a crash), the stored record is kept."""

    @abc.abstractmethod
    async def discard_payment(self, scope: str, key: str, payment_id: str, owner: str) -> None:
        """Undo ``begin_payment`` of a payment that moved no money (refused before its debit):
        delete the record and its indexes, drop the claim (unless DONE) and the lease. Only a
        record still at version 0 is deleted; repeating the call is harmless."""

    @abc.abstractmethod
    async def get_payment(self, payment_id: str) -> PaymentRecord | None: ...

    @abc.abstractmethod
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
        """Compare-and-set: store ``record`` if the stored version is ``expected_version``.

        Raises StaleVersion on a lost race and InvalidState when the status change is not in
        ``schemas.payment.LEGAL_TRANSITIONS``. Appends a history entry (now, status, stage,
        ``reason``), bumps ``version`` and ``updated_at``, keeps the processing set in step
        (member while status is PROCESSING or any refund/cancel is PROCESSING), indexes the
        payment under each of ``extra_days`` (a cancel or refund of a later business day),
        and appends ``events`` to the outbox, all atomically; with ``finish``, also marks the
        request's claim DONE and releases the lease (the request's last write). A repeat of the very
        same call whose reply was lost is recognised and answers as the first did. Returns the
        stored record.
        """

    @abc.abstractmethod
    async def payments_in_progress(self, limit: int = 1000) -> list[str]:
        """Ids of payments with work left (PROCESSING, or a refund/cancel PROCESSING)."""

    @abc.abstractmethod
    async def payments_due(self, now: datetime, limit: int = 500) -> tuple[list[str], datetime | None]:
        """Payments with work left whose ``next_attempt_at`` is at or before ``now`` (earliest
        first, at most ``limit``), and the earliest due time after ``now`` (None: nothing later).
        Reads only the due-time index, never the records."""

    @abc.abstractmethod
    async def payments_of_day(self, day: str) -> list[str]:
        """Ids of payments indexed under business day ``day`` (YYYY-MM-DD)."""

    # -- signature nonces -----------------------------------------------------------------------
    @abc.abstractmethod
    async def remember_nonce(self, keyid: str, nonce: str, ttl_s: int) -> bool:
        """SET NX with expiry: True the first time ``(keyid, nonce)`` is seen (a store-level repeat
        of the same call after a lost reply still answers True)."""

    # -- quotes ---------------------------------------------------------------------------------
    @abc.abstractmethod
    async def put_quote(self, quote_id: str, data: Mapping[str, Any], ttl_s: int) -> None: ...

    @abc.abstractmethod
    async def get_quote(self, quote_id: str) -> Mapping[str, Any] | None: ...

    @abc.abstractmethod
    async def consume_quote(self, quote_id: str, expect: Mapping[str, str], consumer: str) -> QuoteUse:
        """Atomically: MISSING if absent/expired; MISMATCH if any ``expect[k] != data[k]``
        (nothing consumed); USED if consumed by another consumer; else mark it used by
        ``consumer`` and answer OK (a repeat by the same consumer answers OK again)."""

    @abc.abstractmethod
    async def restore_quote(self, quote_id: str, consumer: str) -> None:
        """Undo ``consume_quote`` by the same consumer (the payment was rejected)."""

    # -- FX limit counters ----------------------------------------------------------------------
    @abc.abstractmethod
    async def reserve_limits(self, holder: str, reservation_id: str, items: Sequence[LimitItem]) -> Reservation:
        """All or nothing: add every item's amount to its counter unless one would pass its cap.

        Idempotent per ``reservation_id``: a repeat answers ok without counting twice."""

    @abc.abstractmethod
    async def release_limits(
        self,
        holder: str,
        reservation_id: str,
        amounts: Mapping[str, int] | None = None,
        *,
        release_id: str | None = None,
    ) -> None:
        """Give back ``amounts`` per counter (None: all that remains of the reservation).

        Never releases more than the reservation holds; idempotent once fully released, and a
        partial release with a ``release_id`` (e.g. the refund's id) counts once however often
        it is repeated (a repeat after a lost reply must not give back twice)."""

    @abc.abstractmethod
    async def limit_usage(self, holder: str, counter: str) -> int: ...

    # -- rate limiting --------------------------------------------------------------------------
    @abc.abstractmethod
    async def take_token(self, bucket: str, rate_per_s: float, burst: int) -> float:
        """Token bucket shared by all gateway processes: 0.0 when allowed, else seconds to wait."""

    # -- small blobs (rate-table cache, leases) -------------------------------------------------
    @abc.abstractmethod
    async def put_blob(self, key: str, value: bytes, ttl_s: int | None = None) -> None: ...

    @abc.abstractmethod
    async def get_blob(self, key: str) -> bytes | None: ...

    @abc.abstractmethod
    async def acquire_lease(self, name: str, owner: str, ttl_ms: int) -> bool:
        """Take or renew a named lease (SET NX PX, or renew when ``owner`` holds it)."""

    @abc.abstractmethod
    async def release_lease(self, name: str, owner: str) -> None: ...

    # -- outbox (webhook events) ----------------------------------------------------------------
    @abc.abstractmethod
    async def append_events(self, shard: int, events: Sequence[Mapping[str, Any]]) -> None: ...

    @abc.abstractmethod
    async def read_events(
        self, group: str, consumer: str, count: int = 100, block_ms: int = 0
    ) -> list[OutboxEntry]:
        """At most ``count`` new entries for the consumer group over every shard. With
        ``block_ms`` and nothing new, waits up to that long (capped by the store) for an append
        instead of answering empty at once: an idle reader costs one command per wait."""

    @abc.abstractmethod
    async def ack_events(self, group: str, entries: Sequence[OutboxEntry]) -> None: ...

    @abc.abstractmethod
    async def reclaim_events(
        self, group: str, consumer: str, min_idle_ms: int, count: int = 100
    ) -> list[OutboxEntry]:
        """Entries handed out but not acknowledged for ``min_idle_ms``: handed out again."""

    @abc.abstractmethod
    async def outbox_backlog(self, group: str) -> int:
        """Entries not yet acknowledged by ``group`` (for /metrics)."""

    # -- operators: payment search index and audit log (issue 19) --------------------------------
    @abc.abstractmethod
    async def recent_payments(
        self, limit: int, *, before: tuple[float, str] | None = None, since: float | None = None
    ) -> list[tuple[float, str]]:
        """``(created_at epoch s, payment_id)`` newest first, strictly below the ``before``
        cursor and not older than ``since``; at most ``limit``. Reads the created-time index
        (a sorted set per shard, written with the record and removed with it by
        ``discard_payment``), never the records."""

    @abc.abstractmethod
    async def append_audit(self, entry_id: str, entry: Mapping[str, Any]) -> None:
        """Append an operator action to the audit log. Append-only: nothing changes or deletes an
        entry. ``entry_id`` (unique, from the caller) makes a repeat after a lost reply a no-op."""

    @abc.abstractmethod
    async def audit_page(self, limit: int, *, before: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """``(cursor, entry)`` newest first, strictly older than the ``before`` cursor."""

    # -- helpers shared by implementations -------------------------------------------------------
    def shard_of(self, payment_id: str) -> int:
        """Stable shard of a payment id (crc32, so every process and language agrees)."""
        return zlib.crc32(payment_id.encode()) % self.shards

    def claim_shard(self, scope: str, key: str) -> int:
        """The shard of a request's claim: a payment it creates is drawn in the same shard, so the
        claim, the lease and the record change in one script (one Cluster slot)."""
        return zlib.crc32(f"{scope}\x00{key}".encode()) % self.shards

    # -- settlement windows and reconciliation (PROTOCOL.md §9.1; gateway/settlement/windows.py) --
    # Closed windows, their frozen batches and the "last closed" pointer live together (one hash
    # tag on Redis, so one script writes them all or nothing); recon exceptions beside them.
    @abc.abstractmethod
    async def open_event_group(self, group: str) -> None:
        """Create consumer ``group`` on every shard's outbox (from its start) if absent, so the
        outbox keeps each entry until that group acknowledged it too."""

    @abc.abstractmethod
    async def get_payments(self, payment_ids: Sequence[str]) -> list[PaymentRecord | None]:
        """``get_payment`` of many at once (a close reads its window's payments in bulk)."""

    @abc.abstractmethod
    async def put_window(self, window: Mapping[str, Any], batches: Mapping[str, Mapping[str, Any]]) -> bool:
        """Atomically store a closed ``window`` (``window_id``), its batches (partner id -> batch)
        and make it the last closed window. False, writing nothing, if that window exists."""

    @abc.abstractmethod
    async def get_window(self, window_id: str) -> Mapping[str, Any] | None: ...

    @abc.abstractmethod
    async def last_window(self) -> Mapping[str, Any] | None:
        """The most recently closed window, None before the first close."""

    @abc.abstractmethod
    async def get_batch(self, window_id: str, partner_id: str) -> Mapping[str, Any] | None: ...

    @abc.abstractmethod
    async def add_recon_exceptions(self, exceptions: Sequence[Mapping[str, Any]]) -> int:
        """Store each exception whose ``exception_id`` is new (a known one, resolved or not, is
        left as it is); answer how many were new."""

    @abc.abstractmethod
    async def recon_exceptions(self, window_id: str | None = None) -> list[Mapping[str, Any]]:
        """Every stored exception (of ``window_id``), ordered by id."""

    @abc.abstractmethod
    async def resolve_recon_exception(self, exception_id: str, note: str, at: str) -> Mapping[str, Any] | None:
        """Mark it resolved with ``note`` at ``at`` (a resolved one keeps its first resolution);
        the stored exception, or None when unknown."""


def due_score(record: PaymentRecord) -> float:
    """A payment's place in the due-time index: ``next_attempt_at`` (epoch seconds), 0 when unset."""
    return record.next_attempt_at.timestamp() if record.next_attempt_at is not None else 0.0
