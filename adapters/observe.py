"""The hook through which the outbound HTTP layer reports its calls (metrics, traces).

``adapters`` may not import ``gateway`` (layering), so the gateway hands ``OutboundHttp`` an
object of this shape: ``call_started`` runs before the request is sent and may add headers (the
W3C ``traceparent``); ``call_ended`` runs once per call, however it ended.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Protocol


class CallObserver(Protocol):
    def call_started(self, partner: str, op: str, method: str, path: str, headers: MutableMapping[str, str]) -> object:
        """Before sending; returns a token handed back to ``call_ended``."""

    def call_ended(self, token: object, outcome: str, status: int | None, seconds: float) -> None:
        """After the call: ``outcome`` is ok, http_5xx, timeout, connection, protocol_error, ..."""

    def outcome(self, partner: str, op: str, kind: str) -> None:
        """An adapter's verdict on a call (succeeded, failed, unknown)."""


class NullObserver:
    """Observes nothing: the default outside the gateway (tools, tests of adapters)."""

    def call_started(self, partner: str, op: str, method: str, path: str, headers: MutableMapping[str, str]) -> object:
        return None

    def call_ended(self, token: object, outcome: str, status: int | None, seconds: float) -> None:
        return None

    def outcome(self, partner: str, op: str, kind: str) -> None:
        return None
