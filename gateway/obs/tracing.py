"""OpenTelemetry tracing: one span per request (continuing the caller's W3C ``traceparent``), per
store call, per partner call and per webhook delivery; ``traceparent`` sent on every outbound call.

Off by default (``[tracing] enabled = false``) and then nearly free: no SDK, no spans, no store
wrapper; an inbound ``traceparent`` is still continued (passed on to partners and put in the log
lines) so an operator can follow a partner's trace through us. On, spans are batched to an OTLP/HTTP
collector when ``otlp_endpoint`` is set; tests hand in their own ``TracerProvider`` (in-memory).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, cast

from aiohttp import web
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, Span, SpanKind, Status, StatusCode, Tracer

from gateway.config import TracingSettings
from gateway.obs.context import PROPAGATOR
from gateway.store.base import Store
from schemas.errors import ConfigError


def _build_provider(settings: TracingSettings) -> Any:
    """An SDK provider exporting to ``otlp_endpoint`` (imported only when tracing is on)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
    )
    if settings.otlp_endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise ConfigError(
                "tracing.otlp_endpoint: install opentelemetry-exporter-otlp-proto-http to export spans"
            ) from exc
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
    return provider


def check_settings(settings: TracingSettings) -> None:
    """What ``qrgw config check`` verifies: the exporter can be built."""
    if settings.enabled:
        _build_provider(settings).shutdown()


class Tracing:
    """The tracer of one app. ``use(provider)`` (tests, before the app starts) turns tracing on
    with that provider, e.g. an SDK provider with an in-memory exporter."""

    def __init__(self, settings: TracingSettings) -> None:
        self.enabled = settings.enabled
        self._own = self.enabled
        self.provider: Any = _build_provider(settings) if self.enabled else None
        self.tracer: Tracer = self.provider.get_tracer("qrgw") if self.provider is not None else trace.NoOpTracer()

    def use(self, provider: Any) -> None:
        self.shutdown()
        self.enabled, self._own, self.provider = True, False, provider
        self.tracer = provider.get_tracer("qrgw")

    def shutdown(self) -> None:
        if self._own and self.provider is not None:
            self.provider.shutdown()  # flushes the batch

    # -- spans -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def server_span(self, name: str, headers: Any, attributes: dict[str, Any]) -> Iterator[Span]:
        """The request's span, child of the caller's ``traceparent`` when it sent a valid one."""
        parent: Context | None = PROPAGATOR.extract(headers) if "traceparent" in headers else None
        if not self.enabled:
            span: Span = trace.get_current_span(parent) if parent is not None else trace.INVALID_SPAN
            with trace.use_span(span, end_on_exit=False):
                yield span
            return
        with self.tracer.start_as_current_span(
            name, context=parent, kind=SpanKind.SERVER, attributes=attributes, record_exception=False
        ) as span:
            yield span

    @contextlib.contextmanager
    def client_span(
        self, name: str, headers: MutableMapping[str, str], attributes: dict[str, Any], parent: str | None = None
    ) -> Iterator[Span]:
        """An outbound call's span, in the trace of ``parent`` (a remembered ``traceparent``) when
        given, else of the span in context; ``traceparent`` is written into ``headers``."""
        ctx = PROPAGATOR.extract({"traceparent": parent}) if parent else None
        if not self.enabled:
            span = trace.get_current_span(ctx)
            if span.get_span_context().is_valid:  # pass the trace on, at no cost
                PROPAGATOR.inject(headers, context=ctx)
            yield span
            return
        with self.tracer.start_as_current_span(name, context=ctx, kind=SpanKind.CLIENT, attributes=attributes) as span:
            PROPAGATOR.inject(headers)
            yield span

    def start_client(self, name: str, headers: MutableMapping[str, str], attributes: dict[str, Any]) -> Span:
        """A client span started now and ended by the caller (``end``): for hooks split in two."""
        if not self.enabled:
            if trace.get_current_span().get_span_context().is_valid:
                PROPAGATOR.inject(headers)
            return NonRecordingSpan(trace.get_current_span().get_span_context())
        span = self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        PROPAGATOR.inject(headers, context=trace.set_span_in_context(span))
        return span

    @staticmethod
    def end(span: Span, error: str | None = None, **attributes: Any) -> None:
        if not span.is_recording():
            return
        for k, v in attributes.items():
            if v is not None:
                span.set_attribute(k, v)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end()

    # -- the store -----------------------------------------------------------------------------
    def wrap_store(self, store: Store) -> Store:
        """``store`` with a span around each call (only when tracing is on)."""
        return cast(Store, _TracedStore(store, self.tracer)) if self.enabled else store


class _TracedStore:
    """A proxy giving every coroutine method of a store a ``store.<method>`` span."""

    def __init__(self, inner: Store, tracer: Tracer) -> None:
        self._inner, self._tracer = inner, tracer
        self._wrapped: dict[str, Callable[..., Any]] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        fn = self._wrapped.get(name)
        if fn is None:
            fn = self._wrapped[name] = self._wrap(name, attr)
        return fn

    def _wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        span_name = f"store.{name}"

        @functools.wraps(method)
        async def traced(*args: Any, **kwargs: Any) -> Any:
            with self._tracer.start_as_current_span(span_name, kind=SpanKind.CLIENT,
                                                    attributes={"db.system": "qrgw-store", "db.operation": name}):
                return await method(*args, **kwargs)

        return traced


TRACING = web.AppKey("tracing", Tracing)


def trace_ids(span: Span) -> dict[str, str]:
    """``trace_id``/``span_id`` for log lines, or nothing when the span has no valid context."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return {}
    return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}
