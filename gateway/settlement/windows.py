"""Closing settlement windows (PROTOCOL.md §9.1; docs/settlement.md "Windows").

What a window holds: every item that became final after the previous close and before this one.
"Became final" is read from the transactional outbox: each final change (payment succeeded or
failed, cancel or refund succeeded) appends its event atomically with the change (``Store.
update_payment(events=...)``), and the outbox keeps every entry until the ``settlement`` consumer
group acknowledged it. A close reads the group's new (and, after a crash, still pending) entries,
loads only those payments, freezes one batch per partner and stores the window and all its batches
in one atomic write, then acknowledges the entries. The window records, per outbox shard, the last
entry it took: an entry at or below that cursor met again (a crash between the write and the
acknowledgement) belongs to a closed window and is only acknowledged. Anything appended after the
close read its shard is the next window's. Nothing scans the keyspace.

One close at a time: a store lease; the write itself refuses a second copy of a window, so even
two closers that both got through would freeze one set of batches.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from gateway.events import settlement_event
from gateway.payments.days import cancel_deadline
from gateway.settlement.batch import build_batch, item_rows, void_rows
from gateway.settlement.day import parse_day
from gateway.settlement.fees import FeeSchedule
from gateway.settlement.items import Item, items_of
from gateway.store.base import OutboxEntry, Store
from schemas.errors import InvalidState
from schemas.settlement import Window

log = structlog.get_logger("qrgw.settlement")

GROUP = "settlement"
LEASE = "settlement:close"
LEASE_MS = 10 * 60 * 1000  # far above a 100k-payment close (docs/benchmarks.md); renewed as it reads
_READ = 1000  # outbox entries per read
_FETCH = 1000  # payments per bulk read
_TAKES = {"payment.succeeded": "payment", "payment.cancelled": "cancel", "payment.refunded": "refund",
          "payment.failed": "void"}


@dataclass(frozen=True)
class CloseConfig:
    zone: str
    cutoff: str
    fees: FeeSchedule
    show_fx: bool = False
    partners: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any) -> CloseConfig:
        s = settings.settlement
        return cls(settings.business_day.zone, s.cutoff, FeeSchedule.from_settings(s.fees), s.show_fx_margin,
                   tuple(p.id for p in settings.partners))


def cut_off(window_id: str, cfg: CloseConfig) -> datetime:
    """The instant the window of business day ``window_id`` becomes due."""
    return cancel_deadline(window_id, cfg.cutoff, cfg.zone)


def due_window(now: datetime, cfg: CloseConfig) -> str:
    """The business day whose cut-off passed most recently (at or before ``now``)."""
    from zoneinfo import ZoneInfo

    today = now.astimezone(ZoneInfo(cfg.zone)).date()
    for d in (today, today - timedelta(days=1), today - timedelta(days=2)):
        if cut_off(d.isoformat(), cfg) <= now:
            return d.isoformat()
    return (today - timedelta(days=3)).isoformat()  # unreachable for a cut-off within the day


def _key(entry_id: str) -> tuple[int, ...]:
    """Outbox entry ids sort as integer tuples (``ms-seq`` on Redis, a sequence in memory)."""
    return tuple(int(p) for p in entry_id.split("-"))


@dataclass
class _Taken:
    refs: set[tuple[str, str, str]] = field(default_factory=set)  # (payment_id, take, item_id)
    acks: list[OutboxEntry] = field(default_factory=list)
    cursors: dict[str, str] = field(default_factory=dict)


def _take(entries: Iterable[OutboxEntry], before: Mapping[str, str], out: _Taken) -> None:
    for e in entries:
        out.acks.append(OutboxEntry(e.entry_id, e.shard, {}, e.deliveries))  # the event is not kept
        shard = str(e.shard)
        if shard in before and _key(e.entry_id) <= _key(before[shard]):
            continue  # a closed window's entry, met again after a crash: acknowledge only
        cur = out.cursors.get(shard)
        if cur is None or _key(e.entry_id) > _key(cur):
            out.cursors[shard] = e.entry_id
        take = _TAKES.get(str(e.event.get("type")))
        pid = str(e.event.get("payment_id") or "")
        if take is None or not pid:
            continue  # settlement.closed and the like
        data = e.event.get("data") or {}
        item_id = {"payment": pid, "void": pid, "cancel": str((data.get("cancel") or {}).get("cancel_request_id")),
                   "refund": str((data.get("refund") or {}).get("refund_id"))}[take]
        out.refs.add((pid, take, item_id))


async def _collect(store: Store, owner: str, before: Mapping[str, str]) -> _Taken:
    out = _Taken()
    # A crashed close's entries first (handed out, never acknowledged), then everything new.
    _take(await store.reclaim_events(GROUP, owner, 0, 10**9), before, out)
    while batch := await store.read_events(GROUP, owner, _READ):
        _take(batch, before, out)
    return out


async def _freeze(store: Store, window_id: str, closed_at: str, cfg: CloseConfig, taken: _Taken,
                  owner: str) -> tuple[dict[str, dict[str, Any]], int]:
    """Read the window's payments a chunk at a time (records are large; only their items and rows
    are kept) and build each partner's batch."""
    items: dict[str, list[Item]] = defaultdict(list)
    rows: dict[str, list[list[str]]] = defaultdict(list)
    wanted: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for pid, take, item_id in taken.refs:
        wanted[pid].add((take, item_id))
    count = 0
    ids = sorted(wanted)
    for start in range(0, len(ids), _FETCH):
        chunk = ids[start:start + _FETCH]
        if start and not start % (50 * _FETCH) and not await store.acquire_lease(LEASE, owner, LEASE_MS):
            raise InvalidState("the settlement close lease was lost (the close took too long): retry")
        for pid, rec in zip(chunk, await store.get_payments(chunk), strict=True):
            if rec is None:
                log.error("settlement_record_missing", payment_id=pid, window_id=window_id)
                continue
            parties = dict.fromkeys((rec.route.wallet, rec.route.acquirer))
            if ("void", pid) in wanted[pid]:
                for p in parties:
                    rows[p] += void_rows(rec, p, cfg.show_fx)
            for item in items_of(rec, None, cfg.fees):
                if (item.kind, item.item_id) in wanted[pid] and item.settles:
                    count += 1
                    for p in parties:
                        items[p].append(item)
                        rows[p] += item_rows(rec, item, p, cfg.show_fx)
    partners = sorted(set(cfg.partners) | set(items) | set(rows))
    return ({p: build_batch(window_id, p, closed_at, cfg.zone, items[p], rows[p], cfg.show_fx) for p in partners},
            count)


async def close_window(store: Store, window_id: str, cfg: CloseConfig, *, owner: str,
                       due: bool = False, now: datetime | None = None) -> tuple[Mapping[str, Any], bool]:
    """Close ``window_id`` (idempotent): (the window, True when this call closed it). ``due``: the
    automatic close at the cut-off (recorded in the window). Raises ConflictError while another
    process is closing, or for a window not after the last closed one."""
    window_id = parse_day(window_id)
    existing = await store.get_window(window_id)
    if existing is not None:
        await announce(store, existing)
        return existing, False
    if not await store.acquire_lease(LEASE, owner, LEASE_MS):
        raise InvalidState("another gateway process is closing a settlement window now")
    try:
        existing = await store.get_window(window_id)
        if existing is not None:
            await announce(store, existing)
            return existing, False
        last = await store.last_window()
        if last is not None:
            await announce(store, last)  # in case its closer died between the write and the events
        if last is not None and str(last["window_id"]) >= window_id:
            raise InvalidState(f"window {window_id}: windows close in order, {last['window_id']} is closed")
        before = {str(k): str(v) for k, v in (last or {}).get("cursors", {}).items()}
        await store.open_event_group(GROUP)
        taken = await _collect(store, owner, before)
        at = now or datetime.now(UTC)
        closed_at = at.isoformat().replace("+00:00", "Z")
        batches, count = await _freeze(store, window_id, closed_at, cfg, taken, owner)
        window = {
            "window_id": window_id,
            "seq": int((last or {}).get("seq", 0)) + 1,
            "previous": None if last is None else last["window_id"],
            "closed_at": closed_at,
            "closed_by": owner,
            "cut_off": cut_off(window_id, cfg).astimezone(UTC).isoformat().replace("+00:00", "Z") if due else None,
            "cursors": {**before, **taken.cursors},
            "items": count,
            "batches": [{"partner_id": p, "batch_id": b["batch_id"], "version": b["version"],
                         "content_hash": b["content_hash"], "rows": len(b["rows"])} for p, b in batches.items()],
        }
        Window.model_validate(window)  # the stored document's contract (schemas/settlement.py)
        closed = await store.put_window(window, batches)
        if not closed:
            window = dict(await store.get_window(window_id) or window)
        await store.ack_events(GROUP, taken.acks)
        log.info("settlement_window_closed", window_id=window_id, items=count, batches=len(batches), closed=closed)
        await announce(store, window)
        return window, closed
    finally:
        await store.release_lease(LEASE, owner)


async def announce(store: Store, window: Mapping[str, Any]) -> None:
    """Append ``settlement.closed`` for each batch to the outbox, once (ids are stable, so a
    repeat after a crash de-duplicates at the partner)."""
    marker = f"settlement:announced:{window['window_id']}"
    if await store.get_blob(marker) is not None:
        return
    for ref in window["batches"]:
        event = settlement_event(str(window["window_id"]), ref)
        await store.append_events(store.shard_of(str(ref["batch_id"])), [event])
    await store.put_blob(marker, b"1")
