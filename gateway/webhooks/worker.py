"""The webhook delivery worker (PROTOCOL.md §9): outbox → signed POST to each partner on the route.

Three tasks, each cheap when idle (docs/settlement.md, "Webhook delivery cost"):

* the reader blocks in ``read_events(block_ms=...)`` (XREADGROUP BLOCK: one command per wait) and
  starts a delivery task per entry (at most ``concurrency`` at once);
* the acker acknowledges finished entries in batches (one command per batch);
* housekeeping, on a slow timer, reclaims entries another (crashed or stopped) worker left
  unacknowledged for longer than a delivery can take, and refreshes the backlog gauge.

A new entry's first round needs no state: POST to every recipient, and if all answer 2xx the
entry is acknowledged — no store write besides the (batched) ack. Only when a retry is needed
does the event get a delivery state in the store, and every later round (ours, or another
process's after a reclaim) runs under a per-event lease with that state:

* already done (a duplicate outbox entry) → acknowledge;
* not due yet → wait in memory until it is (a local timer, no polling);
* POST to every recipient not yet answered 2xx, signed with the gateway's key (§2);
* all answered 2xx → done, acknowledge; some failed → next try after exponential backoff with
  jitter; past the horizon since the first try → dead letter (store + error log + metric), ack.

Nothing is acknowledged before every recipient answered 2xx or the event was dead-lettered, so
a restart loses nothing; a crash between a 2xx and saving the state, or before the batched ack,
re-sends (at-least-once: partners de-duplicate on ``event_id``). A duplicate outbox entry of an
event delivered at the first try is recognised in memory (recent events), not across processes;
an event an operator replayed (its delivery state reopened) is delivered again all the same.
"""
from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import structlog
from opentelemetry.trace import StatusCode
from prometheus_client import CollectorRegistry

from adapters.endpoint import PartnerEndpoint
from adapters.http import OutboundHttp
from gateway.config import TracingSettings, WebhookSettings
from gateway.events import wire_body
from gateway.obs.backoff import Outage
from gateway.obs.tracing import Tracing
from gateway.signing import Signer, sign_request
from gateway.store.base import OutboxEntry, in_background
from gateway.webhooks.metrics import WebhookMetrics
from gateway.webhooks.state import BlobStore, DeliveryState, load_state, record_dead_letter, reopened, save_state
from schemas.errors import PartnerError

log = structlog.get_logger("gateway.webhooks")
GROUP = "webhooks"
_DONE_TTL_S = 7 * 86400  # remember retried-then-delivered events this long (duplicate outbox entries)
_BACKLOG_IDLE_S = 60.0  # an idle worker refreshes the backlog gauge this seldom
_RECENT = 50_000  # event ids delivered at the first try, remembered in memory (duplicate entries)


class OutboxStore(BlobStore, Protocol):
    """The part of ``gateway.store.base.Store`` the worker uses."""

    async def read_events(
        self, group: str, consumer: str, count: int = 100, block_ms: int = 0
    ) -> list[OutboxEntry]: ...

    async def reclaim_events(self, group: str, consumer: str, min_idle_ms: int, count: int = 100) -> list[OutboxEntry]:
        ...

    async def ack_events(self, group: str, entries: Sequence[OutboxEntry]) -> None: ...

    async def outbox_backlog(self, group: str) -> int: ...


class WebhookWorker:
    def __init__(
        self,
        store: OutboxStore,
        signer: Signer,
        endpoints: Mapping[str, PartnerEndpoint],
        settings: WebhookSettings,
        *,
        group: str = GROUP,
        consumer: str | None = None,
        http: OutboundHttp | None = None,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
        block_ms: int = 1000,
        housekeeping_s: float = 15.0,
        reclaim_idle_s: float | None = None,
        error_pause_s: float = 0.5,
        ack_delay_s: float = 0.05,
        tracing: Tracing | None = None,
    ) -> None:
        self.store, self.signer, self.endpoints, self.settings = store, signer, dict(endpoints), settings
        self.group = group
        self.consumer = consumer or f"wh-{secrets.token_hex(4)}"
        self.clock, self.jitter = clock, jitter
        self.block_ms, self.housekeeping_s, self.error_pause_s = block_ms, housekeeping_s, error_pause_s
        self.ack_delay_s = ack_delay_s
        self.metrics = WebhookMetrics.of(registry)
        self.tracing = tracing or Tracing(TracingSettings())  # off: no spans
        self._outage = Outage(log, "webhooks", base_s=error_pause_s)  # store down: back off, say it once
        self._http = http or OutboundHttp()
        self._own_http = http is None
        self._lease_ms = int((settings.timeout_s + 5.0) * 1000)
        # Reclaim only what no live worker can still be delivering (one round: one timeout).
        self.reclaim_idle_ms = int((reclaim_idle_s if reclaim_idle_s is not None else self._lease_ms / 1000) * 1000)
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._waiting: dict[str, asyncio.TimerHandle] = {}  # event_id -> timer of its next round
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._acks: list[OutboxEntry] = []
        self._ack_wake = asyncio.Event()
        self._wake = asyncio.Event()  # a delivery finished: a slot is free
        self._stopping = False
        self._active = False  # entries handled since the last backlog refresh
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self._stopping = False
        self._tasks = [
            asyncio.create_task(in_background(self._read_loop()), name=f"webhooks-read-{self.consumer}"),
            asyncio.create_task(in_background(self._ack_loop()), name=f"webhooks-ack-{self.consumer}"),
            asyncio.create_task(in_background(self._housekeeping()), name=f"webhooks-house-{self.consumer}"),
        ]

    async def stop(self) -> None:
        """Stop taking entries, cancel deliveries in flight (they stay unacknowledged), flush
        the acks of finished ones."""
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for h in self._waiting.values():
            h.cancel()
        self._waiting.clear()
        for t in list(self._inflight.values()):
            t.cancel()
        await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        self._inflight.clear()
        if self._acks:
            batch, self._acks = self._acks, []
            try:
                await self.store.ack_events(self.group, batch)
            except Exception as exc:  # unacknowledged entries are handed out again: at-least-once
                log.warning("webhook_ack_failed", entries=len(batch), error=repr(exc))
        if self._own_http:
            await self._http.aclose()

    async def _read_loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            # Read ahead up to twice the concurrency, and only once the queue ran down to the
            # deliveries running: under load one read fetches a batch, not one entry per slot.
            if len(self._inflight) > self.settings.concurrency:
                await self._wake.wait()
                continue
            free = 2 * self.settings.concurrency - len(self._inflight)
            try:
                entries = await self.store.read_events(self.group, self.consumer, count=free, block_ms=self.block_ms)
                self._outage.succeeded()
            except Exception as exc:  # the store is down: keep trying, backing off, said once
                await asyncio.sleep(self._outage.failed(exc))
                continue
            self._active = self._active or bool(entries)
            for entry in entries:
                self._start(entry, first=entry.deliveries == 1)

    async def _ack_loop(self) -> None:
        """Acknowledge what finished since the last batch (one command per batch)."""
        while True:
            await self._ack_wake.wait()
            await asyncio.sleep(self.ack_delay_s)  # let the batch fill (an ack is not urgent)
            self._ack_wake.clear()
            batch, self._acks = self._acks, []
            try:
                await self.store.ack_events(self.group, batch)
            except asyncio.CancelledError:
                self._acks[:0] = batch
                raise
            except Exception as exc:
                log.warning("webhook_ack_failed", entries=len(batch), error=repr(exc))
                self._acks[:0] = batch
                await asyncio.sleep(self.error_pause_s)
                self._ack_wake.set()

    async def _housekeeping(self) -> None:
        """Reclaim, and refresh the backlog gauge when this worker did something since (or
        every ``_BACKLOG_IDLE_S`` when idle): an idle round is one script call."""
        backlog_at = -_BACKLOG_IDLE_S
        while True:
            try:
                free = self.settings.concurrency - len(self._inflight)
                if free > 0:
                    for entry in await self.store.reclaim_events(
                        self.group, self.consumer, min_idle_ms=self.reclaim_idle_ms, count=free
                    ):
                        self._start(entry, first=False)
                now = time.monotonic()
                if self._active or now - backlog_at >= _BACKLOG_IDLE_S:
                    self._active = False
                    backlog_at = now
                    await self.refresh_backlog()
            except Exception as exc:
                log.warning("webhook_housekeeping_failed", error=repr(exc))
            await asyncio.sleep(self.housekeeping_s)

    def _start(self, entry: OutboxEntry, *, first: bool) -> None:
        eid = str(entry.event.get("event_id") or entry.entry_id)
        if self._stopping or eid in self._inflight or eid in self._waiting:
            return  # handed out again while we work it (a reclaim of our own): left pending
        self._inflight[eid] = asyncio.create_task(self._guarded(eid, entry, first))

    async def _guarded(self, eid: str, entry: OutboxEntry, first: bool) -> None:
        try:  # at most ``concurrency`` deliver at once; read-ahead entries wait here
            async with self._slots:
                await self.deliver(entry, first=first)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # store trouble mid-delivery: the entry stays pending
            log.warning("webhook_delivery_error", event_id=eid, error=repr(exc))
        finally:
            self._inflight.pop(eid, None)
            self._wake.set()

    def _later(self, eid: str, entry: OutboxEntry, due: float) -> None:
        """Run the event's next round at ``due`` (it stays pending, ours, meanwhile)."""
        if self._stopping:
            return

        def fire() -> None:
            self._waiting.pop(eid, None)
            self._start(entry, first=False)

        self._waiting[eid] = asyncio.get_running_loop().call_later(max(0.0, due - self.clock()), fire)

    def _done(self, eid: str, entry: OutboxEntry) -> None:
        self._recent[eid] = None
        if len(self._recent) > _RECENT:
            self._recent.popitem(last=False)
        self._acks.append(entry)
        self._ack_wake.set()

    async def refresh_backlog(self, force: bool = False) -> int:
        """Read the backlog into the gauge (housekeeping does, every ``housekeeping_s``)."""
        n = await self.store.outbox_backlog(self.group)
        self.metrics.backlog.set(n)
        return n

    def backoff(self, attempts: int) -> float:
        """Exponential (base x 2^(n-1), capped), equal jitter: half fixed, half random."""
        s = self.settings
        d = min(s.max_delay_s, s.base_delay_s * float(2 ** min(attempts - 1, 60)))
        return d / 2 + self.jitter() * d / 2

    # -- one entry ----------------------------------------------------------------------------
    async def deliver(self, entry: OutboxEntry, *, first: bool = False) -> None:
        """Work one outbox entry (see the module docstring)."""
        event = entry.event
        eid = str(event.get("event_id") or "")
        recipients = event.get("recipients")
        if not eid or not isinstance(recipients, list) or not recipients:
            await self._give_up(entry, None, "malformed event (no event_id or recipients)")
            return
        # A duplicate entry of an event delivered (or given up) here, unless an operator replayed it
        # since (its state reopened: docs/admin.md); only duplicates pay for that one store read.
        if eid in self._recent and not await reopened(self.store, eid):
            self._done(eid, entry)
            return
        names = [str(r) for r in recipients]
        if first:
            errors = await self._post_all(names, event)
            if all(e is None for e in errors.values()):
                self._done(eid, entry)
                log.info("webhook_delivered", event_id=eid, type=event.get("type"), attempts=1)
                return
            await self._round(entry, eid, names, errors)
        else:
            await self._round(entry, eid, names, None)

    async def _round(
        self, entry: OutboxEntry, eid: str, names: list[str], first: dict[str, str | None] | None
    ) -> None:
        """A round under the event's lease and delivery state; ``first``: the results of a
        first round just made without state."""
        lease = f"webhook:lease:{eid}"
        if not await self.store.acquire_lease(lease, self.consumer, self._lease_ms):
            return  # another process is delivering it right now; a reclaim brings it back
        try:
            now = self.clock()
            state = await load_state(self.store, eid) or DeliveryState(first_at=now)
            if state.done:
                self._done(eid, entry)
                return
            if first is None:
                if state.next_at > now:
                    self._later(eid, entry, state.next_at)
                    return
                first = await self._post_all([r for r in names if r not in state.delivered], entry.event)
            for r, err in first.items():
                if err is None:
                    if r not in state.delivered:
                        state.delivered.append(r)
                    state.last_error.pop(r, None)
                else:
                    state.last_error[r] = err
            if all(r in state.delivered for r in names):
                state.done = True
                await save_state(self.store, eid, state, _DONE_TTL_S)
                self._done(eid, entry)
                log.info("webhook_delivered", event_id=eid, type=entry.event.get("type"),
                         attempts=state.attempts + 1)
                return
            state.attempts += 1
            now = self.clock()
            if now - state.first_at >= self.settings.horizon_s:
                await self._give_up(entry, state, "retry horizon passed")
                return
            state.next_at = now + self.backoff(state.attempts)
            ttl = int(self.settings.horizon_s + self.settings.max_delay_s) + 86400
            await save_state(self.store, eid, state, ttl)
            self._later(eid, entry, state.next_at)
        finally:
            await self.store.release_lease(lease, self.consumer)

    async def _post_all(self, recipients: list[str], event: Mapping[str, Any]) -> dict[str, str | None]:
        errors = await asyncio.gather(*(self._post(r, event) for r in recipients))
        return dict(zip(recipients, errors, strict=True))

    async def _post(self, partner: str, event: Mapping[str, Any]) -> str | None:
        """POST the event to ``partner`` in a span of its own; None on 2xx, else the error (never raises)."""
        headers: dict[str, str] = {"Content-Type": "application/json"}
        attrs = {"qrgw.partner": partner, "qrgw.event_id": str(event.get("event_id")),
                 "qrgw.event_type": str(event.get("type"))}
        parent = event.get("traceparent")  # the trace of the change this event tells of
        with self.tracing.client_span(f"webhook {partner}", headers, attrs,
                                      parent if isinstance(parent, str) else None) as span:  # adds traceparent
            err = await self._send(partner, event, headers)
            if err is not None and span.is_recording():
                span.set_status(StatusCode.ERROR, err)
        return err

    async def _send(self, partner: str, event: Mapping[str, Any], headers: dict[str, str]) -> str | None:
        ep = self.endpoints.get(partner)
        url = ep.webhook_url if ep is not None else None
        if ep is None or not url:
            # A partner without a webhook_url opted out of events: counted and logged, not retried.
            self.metrics.deliveries.labels(partner, "no_endpoint").inc()
            log.warning("webhook_no_endpoint", partner=partner, event_id=event.get("event_id"))
            return None
        body = wire_body(event)
        sign_request(self.signer, method="POST", url=url, headers=headers, body=body)
        try:  # the partner's TLS policy, pool, timeouts, logs and metrics (adapters.http)
            resp = await self._http.call(ep, "webhook", "POST", url, body=body, headers=headers,
                                         timeout_s=self.settings.timeout_s)
        except PartnerError as exc:
            self.metrics.deliveries.labels(partner, "error").inc()
            return exc.detail[:200]
        if 200 <= resp.status_code < 300:
            self.metrics.deliveries.labels(partner, "ok").inc()
            return None
        self.metrics.deliveries.labels(partner, "error").inc()
        return f"HTTP {resp.status_code}"

    async def _give_up(self, entry: OutboxEntry, state: DeliveryState | None, why: str) -> None:
        event = entry.event
        delivered = list(state.delivered) if state else []
        doc: dict[str, Any] = {
            "reason": why,
            "entry_id": entry.entry_id,
            "gave_up_at": self.clock(),
            "first_at": state.first_at if state else None,
            "attempts": state.attempts if state else 0,
            "delivered": delivered,
            "last_error": state.last_error if state else {},
        }
        indexed = await record_dead_letter(self.store, self.consumer, event, doc)
        self.metrics.dead.inc()
        log.error("webhook_dead_letter", event_id=event.get("event_id"), reason=why,
                  undelivered=sorted(set(map(str, event.get("recipients") or [])) - set(delivered)),
                  last_error=doc["last_error"], indexed=indexed)
        if state is not None:
            state.done = True
            await save_state(self.store, str(event.get("event_id")), state, _DONE_TTL_S)
        self._done(str(event.get("event_id") or entry.entry_id), entry)
