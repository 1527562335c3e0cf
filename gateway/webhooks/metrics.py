"""The webhook worker's Prometheus metrics."""

from __future__ import annotations

from typing import ClassVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge


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
