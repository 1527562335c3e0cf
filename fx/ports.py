"""What ``fx`` needs from the state store, as Protocols with the ``Store`` signatures.

``gateway.store`` (MemoryStore, RedisStore) satisfies them structurally; ``fx`` never imports
``gateway``. fx hands the ledger ``LimitRequest`` items (the same fields as the store's
``LimitItem``, read by attribute) and reads the store's answers by attribute.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "Allowance", "BlobCache", "LimitItemLike", "LimitLedger", "LimitRegistry", "LimitRequest", "PolicyStore",
    "QuoteRepository", "QuoteUseLike", "ReservationLike",
]


class QuoteUseLike(Protocol):
    @property
    def status(self) -> str: ...  # "OK" | "MISSING" | "USED" | "MISMATCH" (a StrEnum compares equal)

    @property
    def data(self) -> Mapping[str, Any] | None: ...


class QuoteRepository(Protocol):
    async def put_quote(self, quote_id: str, data: Mapping[str, Any], ttl_s: int) -> None: ...

    async def get_quote(self, quote_id: str) -> Mapping[str, Any] | None: ...

    async def consume_quote(self, quote_id: str, expect: Mapping[str, str], consumer: str) -> Any:
        """Answers a ``QuoteUseLike``."""

    async def restore_quote(self, quote_id: str, consumer: str) -> None: ...


class LimitItemLike(Protocol):
    @property
    def counter(self) -> str: ...

    @property
    def amount(self) -> int: ...

    @property
    def cap(self) -> int: ...

    @property
    def ttl_s(self) -> int: ...


@dataclass(frozen=True, slots=True)
class LimitRequest:
    """Reserve ``amount`` against ``cap`` on ``counter``; structurally the store's ``LimitItem``."""

    counter: str
    amount: int
    cap: int
    ttl_s: int


class ReservationLike(Protocol):
    @property
    def ok(self) -> bool: ...

    @property
    def denied(self) -> Any: ...  # LimitItemLike | None

    @property
    def used(self) -> Mapping[str, int]: ...


class LimitLedger(Protocol):
    async def reserve_limits(self, holder: str, reservation_id: str, items: Sequence[Any]) -> Any:
        """All or nothing; answers a ``ReservationLike``. ``items`` are the store's LimitItem."""

    async def release_limits(
        self,
        holder: str,
        reservation_id: str,
        amounts: Mapping[str, int] | None = None,
        *,
        release_id: str | None = None,
    ) -> None: ...

    async def limit_usage(self, holder: str, counter: str) -> int: ...


class BlobCache(Protocol):
    async def put_blob(self, key: str, value: bytes, ttl_s: int | None = None) -> None: ...

    async def get_blob(self, key: str) -> bytes | None: ...


# -- national limit registry (ORIS-style) ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Allowance:
    """A person's national allowance for one year, in USD cents; ``accepted`` answers a report."""

    limit: int
    used: int
    accepted: bool = True

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


class LimitRegistry(Protocol):
    """The national registry that sees every channel's payments of a person (adapters.oris).

    Every method raises ``schemas.errors.RegistryUnavailable`` when it gets no answer (timeout,
    refused connection, 5xx): the outcome is then unknown to the caller."""

    async def allowance(self, person: str, year: int) -> Allowance: ...

    async def report(self, person: str, report_id: str, year: int, amount: int, *, late: bool = False) -> Allowance:
        """Count ``amount`` once per ``report_id``; ``accepted`` False (nothing counted) past the
        cap, unless ``late``: a payment that already happened is counted whatever the cap."""

    async def release(self, person: str, report_id: str, amount: int | None) -> None:
        """Give back ``amount`` (None: all) of a report; unknown report ids are ignored."""


class PolicyStore(LimitLedger, BlobCache, Protocol):
    """What the FX policy needs of the store: limit counters and small blobs."""
