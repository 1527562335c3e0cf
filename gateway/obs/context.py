"""The current W3C trace context as a ``traceparent`` string (a leaf module: ``gateway.events``
imports it to remember, in an outbox event, the trace of the change that made it)."""

from __future__ import annotations

from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

PROPAGATOR = TraceContextTextMapPropagator()


def current_traceparent() -> str | None:
    """``traceparent`` of the span in context, or None outside any trace."""
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")
