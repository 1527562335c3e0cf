"""FX metrics at the pricing seam: quotes issued (and priced in-line), redeemed and expired, FX
limit refusals by rule."""

from __future__ import annotations

from typing import Any

from gateway.metrics import Metrics
from gateway.payments.fxbridge import FxBridge
from gateway.payments.ports import PolicyResult, QuoteInfo
from schemas.errors import LimitExceeded, QuoteExpired


class MeteredFxBridge(FxBridge):
    """``FxBridge`` counting into ``metrics``; answers exactly as the bridge does.

    ``qrgw_fx_quotes_total{event}``: ``issued`` (a locked quote handed out), ``inline`` (a payment
    without a quote, priced as it is made), ``redeemed`` (a quote taken by its payment), ``expired``
    (a quote presented after it expired)."""

    def __init__(self, *args: Any, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics = metrics

    async def quote(self, **kwargs: Any) -> QuoteInfo:
        info = await super().quote(**kwargs)
        self.metrics.quotes.labels("issued" if kwargs.get("persist", True) else "inline").inc()
        return info

    async def peek(self, quote_id: str, **kwargs: Any) -> QuoteInfo:
        try:
            return await super().peek(quote_id, **kwargs)
        except QuoteExpired:
            self.metrics.quotes.labels("expired").inc()
            raise

    async def consume(self, quote_id: str, **kwargs: Any) -> None:
        try:
            await super().consume(quote_id, **kwargs)
        except QuoteExpired:
            self.metrics.quotes.labels("expired").inc()
            raise
        self.metrics.quotes.labels("redeemed").inc()

    async def redeem(self, quote_id: str, **kwargs: Any) -> QuoteInfo:
        try:
            info = await super().redeem(quote_id, **kwargs)
        except QuoteExpired:
            self.metrics.quotes.labels("expired").inc()
            raise
        self.metrics.quotes.labels("redeemed").inc()
        return info

    async def reserve(self, **kwargs: Any) -> PolicyResult:
        try:
            return await super().reserve(**kwargs)
        except LimitExceeded as exc:
            self.metrics.fx_refusals.labels(str(exc.extra.get("limit", "unknown"))).inc()
            raise
