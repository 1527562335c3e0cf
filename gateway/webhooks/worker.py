"""The webhook delivery worker (PROTOCOL.md §9): outbox → signed POST to each partner on the route.

Loop: take new outbox entries (``read_events``) and entries handed out but unacknowledged for a
tick (``reclaim_events``: a crashed worker's, and our own that are waiting for a retry), each in
its own task (at most ``concurrency``). For one entry, under a per-event lease (so two processes
never work the same event at once) and the delivery state in the store:

* not due yet (backing off) → leave it pending; it comes back at a later reclaim;
* POST to every recipient not yet answered 2xx, signed with the gateway's key (§2);
* all answered 2xx → acknowledge; some failed → next try after exponential backoff with jitter;
* past the horizon since the first try → dead letter (store + error log + metric), acknowledge.

Nothing is acknowledged before every recipient answered 2xx or the event was dead-lettered, so
a restart loses nothing; a crash between a 2xx and saving the state re-sends to that recipient
(at-least-once: partners de-duplicate on ``event_id``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol

import structlog
from opentelemetry.trace import StatusCode
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from adapters.endpoint import PartnerEndpoint
from adapters.http import OutboundHttp, check_url
from gateway.config import PartnerSettings, TracingSettings, WebhookSettings
from gateway.events import wire_body
from gateway.obs.backoff import Outage
from gateway.obs.tracing import Tracing
from gateway.signing import Signer, sign_request
from gateway.store.base import OutboxEntry
from gateway.webhooks.state import BlobStore, DeliveryState, load_state, record_dead_letter, save_state
from schemas.errors import PartnerError

log = structlog.get_logger("gateway.webhooks")
GROUP = "webhooks"
_DONE_TTL_S = 7 * 86400  # remember delivered events this long (duplicate outbox entries)


class OutboxStore(BlobStore, Protocol):
    """The part of ``gateway.store.base.Store`` the worker uses."""

    async def read_events(self, group: str, consumer: str, count: int = 100) -> list[OutboxEntry]: ...

    async def reclaim_events(self, group: str, consumer: str, min_idle_ms: int, count: int = 100) -> list[OutboxEntry]:
        ...

    async def ack_events(self, group: str, entries: Sequence[OutboxEntry]) -> None: ...

    async def outbox_backlog(self, group: str) -> int: ...


class WebhookMetrics:
    """Backlog gauge and delivery counters, registered once per registry."""

    _by_registry: ClassVar[dict[int, WebhookMetrics]] = {}

    def __init__(self, registry: CollectorRegistry) -> None:
        self.backlog = Gauge("qrgw_webhook_backlog", "Outbox events not yet acknowledged by the webhook worker",
                             registry=registry)
        self.deliveries = Counter("qrgw_webhook_deliveries", "Webhook POSTs by partner and outcome",
                                  ["partner", "outcome"], registry=registry)
        self.dead = Counter("qrgw_webhook_dead_letters", "Events given up after the retry horizon",
                            registry=registry)

    @classmethod
    def of(cls, registry: CollectorRegistry | None) -> WebhookMetrics:
        reg = registry or REGISTRY
        if id(reg) not in cls._by_registry:
            cls._by_registry[id(reg)] = cls(reg)
        return cls._by_registry[id(reg)]


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
        poll_s: float = 0.2,
        tracing: Tracing | None = None,
    ) -> None:
        self.store, self.signer, self.endpoints, self.settings = store, signer, dict(endpoints), settings
        self.group = group
        self.consumer = consumer or f"wh-{secrets.token_hex(4)}"
        self.clock, self.jitter, self.poll_s = clock, jitter, poll_s
        self.metrics = WebhookMetrics.of(registry)
        self.tracing = tracing or Tracing(TracingSettings())  # off: no spans
        self._http = http or OutboundHttp()
        self._own_http = http is None
        # Reclaim entries idle this long: a retry can never be due sooner than base_delay_s.
        self.tick_ms = max(10, int(min(settings.base_delay_s, 1.0) * 1000))
        self._lease_ms = int((settings.timeout_s + 5.0) * 1000)
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._not_before: dict[str, float] = {}  # event_id -> next due, to skip store reads
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._backlog_at = 0.0
        self._outage = Outage(log, "webhooks", base_s=max(poll_s, 0.05))

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"webhooks-{self.consumer}")

    async def stop(self) -> None:
        """Stop taking entries, cancel deliveries in flight (they stay unacknowledged)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for t in list(self._inflight.values()):
            t.cancel()
        await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        self._inflight.clear()
        if self._own_http:
            await self._http.aclose()

    async def _run(self) -> None:
        while not self._stopping:
            wait = self.poll_s
            try:
                taken = await self.poll()
                await self.refresh_backlog()
                self._outage.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is down: keep trying, backing off, said once
                wait = self._outage.failed(exc)
                taken = 0
            if not taken:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)

    # -- one round ----------------------------------------------------------------------------
    async def poll(self) -> int:
        """Hand out free slots to new and reclaimed entries; the number of tasks started."""
        free = self.settings.concurrency - len(self._inflight)
        if free <= 0:
            return 0
        entries = await self.store.read_events(self.group, self.consumer, count=free)
        if len(entries) < free:
            entries += await self.store.reclaim_events(
                self.group, self.consumer, min_idle_ms=self.tick_ms, count=free - len(entries)
            )
        started = 0
        now = self.clock()
        for entry in entries:
            eid = str(entry.event.get("event_id") or entry.entry_id)
            if eid in self._inflight or self._not_before.get(eid, 0.0) > now:
                continue
            task = asyncio.create_task(self._guarded(eid, entry))
            self._inflight[eid] = task
            started += 1
        return started

    async def _guarded(self, eid: str, entry: OutboxEntry) -> None:
        try:
            await self.deliver(entry)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # store trouble mid-delivery: the entry stays pending
            log.warning("webhook_delivery_error", event_id=eid, error=repr(exc))
        finally:
            self._inflight.pop(eid, None)
            self._wake.set()

    async def refresh_backlog(self, force: bool = False) -> int | None:
        now = time.monotonic()
        if not force and now - self._backlog_at < 1.0:
            return None
        self._backlog_at = now
        n = await self.store.outbox_backlog(self.group)
        self.metrics.backlog.set(n)
        return n

    def backoff(self, attempts: int) -> float:
        """Exponential (base x 2^(n-1), capped), equal jitter: half fixed, half random."""
        s = self.settings
        d = min(s.max_delay_s, s.base_delay_s * float(2 ** min(attempts - 1, 60)))
        return d / 2 + self.jitter() * d / 2

    async def deliver(self, entry: OutboxEntry) -> None:
        """Work one outbox entry (see the module docstring)."""
        event = entry.event
        eid = str(event.get("event_id") or "")
        recipients = event.get("recipients")
        if not eid or not isinstance(recipients, list) or not recipients:
            await self._give_up(entry, None, "malformed event (no event_id or recipients)")
            return
        lease = f"webhook:lease:{eid}"
        if not await self.store.acquire_lease(lease, self.consumer, self._lease_ms):
            return  # another process is delivering it right now
        try:
            now = self.clock()
            state = await load_state(self.store, eid) or DeliveryState(first_at=now)
            if state.done:
                await self.store.ack_events(self.group, [entry])
                return
            if state.next_at > now:
                self._not_before[eid] = state.next_at
                return
            pending = [str(r) for r in recipients if str(r) not in state.delivered]
            errors = await asyncio.gather(*(self._post(r, event) for r in pending))
            for r, err in zip(pending, errors, strict=True):
                if err is None:
                    state.delivered.append(r)
                    state.last_error.pop(r, None)
                else:
                    state.last_error[r] = err
            if all(e is None for e in errors):
                state.done = True
                await save_state(self.store, eid, state, _DONE_TTL_S)
                await self.store.ack_events(self.group, [entry])
                self._not_before.pop(eid, None)
                log.info("webhook_delivered", event_id=eid, type=event.get("type"), attempts=state.attempts + 1)
                return
            state.attempts += 1
            now = self.clock()
            if now - state.first_at >= self.settings.horizon_s:
                await self._give_up(entry, state, "retry horizon passed")
                return
            state.next_at = now + self.backoff(state.attempts)
            self._not_before[eid] = state.next_at
            ttl = int(self.settings.horizon_s + self.settings.max_delay_s) + 86400
            await save_state(self.store, eid, state, ttl)
        finally:
            await self.store.release_lease(lease, self.consumer)

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
        await self.store.ack_events(self.group, [entry])


def endpoints_from_settings(partners: Sequence[PartnerSettings], *, sandbox: bool) -> dict[str, PartnerEndpoint]:
    """partner id -> its endpoint (``webhook_url`` and TLS policy) from ``Settings.partners``;
    ConfigError for a plain-http ``webhook_url`` outside sandbox mode (the rest of a partner's
    endpoint is the payment wiring's and ``qrgw serve``'s to refuse)."""
    out: dict[str, PartnerEndpoint] = {}
    for p in partners:
        ep = PartnerEndpoint.from_settings(p.model_dump(), sandbox=sandbox, with_secret=False)
        if ep.webhook_url is not None:
            check_url(ep, ep.webhook_url, "webhook_url")
        out[p.id] = ep
    return out
