"""Settlement gauges for ``/metrics``: reconciliation exceptions by kind and state, and the last
closed window's sequence number. Sampled from the store at each scrape (``Metrics.add_refresher``):
the numbers are shared by every process, CLI imports included, so they are read, not counted here."""

from __future__ import annotations

from collections import Counter

from prometheus_client import CollectorRegistry, Gauge

from gateway.settlement.recon import KINDS
from gateway.store.base import Store


class SettlementMetrics:
    """One per app: its registry is the app's own (``gateway.metrics.Metrics``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.exceptions = Gauge("qrgw_recon_exceptions", "Reconciliation exceptions in the store",
                                ["kind", "state"], registry=registry)
        self.last_window = Gauge("qrgw_settlement_last_window_seq", "Sequence number of the last closed window",
                                 registry=registry)

    async def refresh(self, store: Store) -> None:
        counts = Counter((str(e["kind"]), "resolved" if e.get("resolved_at") else "open")
                         for e in await store.recon_exceptions())
        for kind in KINDS:
            for state in ("open", "resolved"):
                self.exceptions.labels(kind, state).set(counts.get((kind, state), 0))
        last = await store.last_window()
        self.last_window.set(int(last["seq"]) if last else 0)
