"""Signed webhook delivery of payment events (PROTOCOL.md §9); see docs/settlement.md."""

from __future__ import annotations

from gateway.webhooks.metrics import WebhookMetrics
from gateway.webhooks.state import DeliveryState, dead_letters
from gateway.webhooks.wiring import endpoints_from_settings
from gateway.webhooks.worker import GROUP, WebhookWorker

__all__ = ["GROUP", "DeliveryState", "WebhookMetrics", "WebhookWorker", "dead_letters", "endpoints_from_settings"]
