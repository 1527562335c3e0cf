"""The payment services of one app, as the composition root builds them."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gateway.metrics import Metrics
from gateway.payments.orchestrator import Orchestrator
from gateway.payments.ports import Pricing, QrResolver
from gateway.payments.recovery import Recovery
from gateway.payments.service import ReversalService


@dataclass
class PaymentServices:
    orchestrator: Orchestrator
    reversals: ReversalService
    recovery: Recovery
    resolver: QrResolver
    pricing: Pricing


PAYMENTS = web.AppKey("payments", PaymentServices)
METRICS = web.AppKey("metrics", Metrics)
