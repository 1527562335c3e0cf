"""Fault injection for sandbox partners, chosen per request or by configured rates.

A fault spec is a comma-separated list of:

- ``latency=MS``: answer normally after MS milliseconds;
- ``timeout`` / ``timeout=before``: hang (default after applying the operation, so the caller
  cannot know it happened; ``before``: without applying it);
- ``drop`` / ``drop=before``: close the connection without an answer (after / before applying);
- ``5xx``: answer HTTP 500 without applying the operation;
- ``U``: answer "unknown" in the family's vocabulary without applying the operation;
- ``F=CODE``: refuse with the family's failure code CODE, without applying the operation.

Sources, in order: the ``X-Sandbox-Fault`` request header (honoured only by sandboxes), queued
faults (``push``: the next N calls of an operation, optionally only for one id), then rates per
operation (``set_rate``). Controlled from Python or ``POST /sandbox/faults``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

from schemas.errors import ValidationFailed

FaultKind = Literal["latency", "timeout", "drop", "5xx", "U", "F"]
KINDS: frozenset[str] = frozenset({"latency", "timeout", "drop", "5xx", "U", "F"})
HEADER = "X-Sandbox-Fault"


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    value: str | None = None  # latency ms, "before", or the F code

    @property
    def before(self) -> bool:
        """Whether the operation is *not* applied."""
        return self.kind in ("5xx", "U", "F") or self.value == "before"

    def __str__(self) -> str:
        return self.kind if self.value is None else f"{self.kind}={self.value}"


def parse_faults(spec: str) -> list[Fault]:
    out: list[Fault] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        kind, _, value = part.partition("=")
        if kind not in KINDS:
            raise ValidationFailed(f"{HEADER}: unknown fault {kind!r}")
        if kind == "latency" and not value.isdigit():
            raise ValidationFailed(f"{HEADER}: latency needs milliseconds, e.g. latency=200")
        if kind == "F" and not value:
            raise ValidationFailed(f"{HEADER}: F needs a code, e.g. F=USER_BALANCE_NOT_ENOUGH")
        if kind in ("timeout", "drop") and value not in ("", "before", "after"):
            raise ValidationFailed(f"{HEADER}: {kind} takes =before or =after")
        if kind in ("5xx", "U") and value:
            raise ValidationFailed(f"{HEADER}: {kind} takes no value")
        out.append(Fault(kind, value or None))  # type: ignore[arg-type]
    return out


@dataclass
class _Queued:
    faults: list[Fault]
    remaining: int
    match: str | None


@dataclass
class FaultPlan:
    seed: int = 0
    hang_s: float = 30.0  # how long a "timeout" hangs; longer than any client timeout
    rates: dict[str, dict[str, float]] = field(default_factory=dict)  # op -> spec -> probability
    injected: dict[str, int] = field(default_factory=dict)  # fault kind -> count (inspection)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._queue: dict[str, list[_Queued]] = {}

    def push(self, op: str, spec: str, *, count: int = 1, match: str | None = None) -> None:
        """Inject ``spec`` into the next ``count`` calls of ``op`` ("*" = any), optionally only
        those about id ``match``."""
        self._queue.setdefault(op, []).append(_Queued(parse_faults(spec), count, match))

    def set_rate(self, op: str, spec: str, rate: float) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValidationFailed("rate must be within [0, 1]")
        parse_faults(spec)
        self.rates.setdefault(op, {})[spec] = rate

    def clear(self) -> None:
        self._queue.clear()
        self.rates.clear()

    def choose(self, op: str, ids: tuple[str, ...] = (), header: str | None = None) -> list[Fault]:
        if header:
            return self._count(parse_faults(header))
        for key in (op, "*"):
            for q in self._queue.get(key, []):
                if q.remaining > 0 and (q.match is None or q.match in ids):
                    q.remaining -= 1
                    self._queue[key] = [x for x in self._queue[key] if x.remaining > 0]
                    return self._count(q.faults)
        for key in (op, "*"):
            for spec, rate in self.rates.get(key, {}).items():
                if rate and self._rng.random() < rate:
                    return self._count(parse_faults(spec))
        return []

    def _count(self, faults: list[Fault]) -> list[Fault]:
        for f in faults:
            self.injected[f.kind] = self.injected.get(f.kind, 0) + 1
        return faults

    def configure(self, doc: dict[str, Any]) -> None:
        """Apply a ``POST /sandbox/faults`` document:
        ``{"clear": true, "push": [{"op", "fault", "count", "match"}], "rates": {"op": {"spec": p}},
        "seed": n}``."""
        if doc.get("clear"):
            self.clear()
        if "seed" in doc:
            self._rng.seed(int(doc["seed"]))
        for item in doc.get("push", []):
            self.push(
                str(item["op"]), str(item["fault"]), count=int(item.get("count", 1)), match=item.get("match")
            )
        for op, specs in (doc.get("rates") or {}).items():
            for spec, rate in specs.items():
                self.set_rate(str(op), str(spec), float(rate))

    def describe(self) -> dict[str, Any]:
        return {
            "rates": self.rates,
            "queued": {
                op: [
                    {"fault": ",".join(map(str, q.faults)), "remaining": q.remaining, "match": q.match}
                    for q in qs
                ]
                for op, qs in self._queue.items()
                if qs
            },
            "injected": dict(self.injected),
        }
