"""Mid rates: a provider interface, a static TOML table and a polled HTTP JSON source.

A table maps ``"BASE/QUOTE"`` to the mid rate: units of QUOTE per one BASE, as decimal strings
(``"USD/KRW" = "1385.20"``). ``mid_rate(base, quote)`` answers the direct pair, else the
inverse pair, else the cross through the pivot currency (USD), all exact decimal arithmetic in
a 34-digit context (quotes round the result to ``rate_digits`` significant digits).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Context, Decimal
from pathlib import Path
from typing import Any, Protocol

import httpx

from fx.currency import is_known
from fx.ports import BlobCache
from fx.settings import FXSettings, parse_decimal, parse_pair
from schemas.errors import ConfigError, FXError, RateStale

__all__ = ["HttpRates", "RateProvider", "RateTable", "StaticRates", "build_rates", "load_table_file", "parse_table"]

log = logging.getLogger("qrgw.fx.rates")
CTX = Context(prec=34)


class RateProvider(Protocol):
    async def mid_rate(self, base: str, quote: str) -> Decimal:
        """Units of ``quote`` per one ``base``; CURRENCY_UNSUPPORTED when no rate, FX_RATE_STALE when stale."""


def parse_table(raw: Mapping[str, Any], where: str) -> dict[tuple[str, str], Decimal]:
    """Validate a ``{"USD/KRW": "1385.20"}`` mapping (ValueError naming ``where`` and the key)."""
    out: dict[tuple[str, str], Decimal] = {}
    for key, value in raw.items():
        try:
            base, quote = parse_pair(str(key))
            if not (is_known(base) and is_known(quote)):
                raise ValueError(f"pair {key!r}: unknown ISO 4217 currency")
            if not isinstance(value, str):
                raise ValueError(f"rate {key}: must be a decimal string, not {type(value).__name__}")
            out[(base, quote)] = parse_decimal(value, f"rate {key}")
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    return out


def load_table_file(path: Path) -> dict[tuple[str, str], Decimal]:
    """Read the ``[rates]`` table of a TOML file; ConfigError naming the file when wrong."""
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
        rates = doc.get("rates")
        if not isinstance(rates, dict):
            raise ValueError("no [rates] table")
        return parse_table(rates, str(path))
    except (OSError, tomllib.TOMLDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class RateTable:
    """Mid rates with a pivot for crosses."""

    rates: Mapping[tuple[str, str], Decimal]
    pivot: str = "USD"

    def _direct(self, base: str, quote: str) -> Decimal | None:
        if base == quote:
            return Decimal(1)
        r = self.rates.get((base, quote))
        if r is not None:
            return r
        inv = self.rates.get((quote, base))
        return CTX.divide(Decimal(1), inv) if inv is not None else None

    def mid(self, base: str, quote: str) -> Decimal:
        r = self._direct(base, quote)
        if r is None and self.pivot not in (base, quote):
            a, b = self._direct(base, self.pivot), self._direct(self.pivot, quote)
            if a is not None and b is not None:
                r = CTX.multiply(a, b)
        if r is None:
            raise FXError(f"no exchange rate for {base}/{quote}")
        return r


class StaticRates:
    """A fixed table (from ``config/fx_rates.toml`` or inline settings): the default source."""

    def __init__(self, table: Mapping[tuple[str, str], Decimal], pivot: str = "USD") -> None:
        self.table = RateTable(dict(table), pivot)

    @classmethod
    def from_strings(cls, table: Mapping[str, str], pivot: str = "USD") -> StaticRates:
        return cls(parse_table(table, "rates"), pivot)

    async def mid_rate(self, base: str, quote: str) -> Decimal:
        return self.table.mid(base, quote)


class HttpRates:
    """Polls ``url`` for ``{"as_of": RFC 3339 (optional), "rates": {"USD/KRW": "1385.20", ...}}``.

    The last good table is cached in the store (shared by every gateway process) with the time
    it was fetched; a table is refused (FX_RATE_STALE) once older than ``max_age_s``, counted
    from its ``as_of`` when the source gives one. A failed poll keeps the last good table.
    """

    def __init__(
        self,
        url: str,
        cache: BlobCache,
        *,
        max_age_s: int = 900,
        poll_s: int = 60,
        timeout_s: float = 5.0,
        pivot: str = "USD",
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.cache = cache
        self.max_age_s = max_age_s
        self.poll_s = poll_s
        self.pivot = pivot
        self.clock = clock
        self.key = "fx:rates:" + hashlib.sha256(url.encode()).hexdigest()[:16]
        self._client = client or httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self._own_client = client is None
        self._table: RateTable | None = None
        self._as_of = 0.0  # epoch seconds of self._table
        self._checked = float("-inf")  # when we last looked for a newer table
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    @property
    def age_s(self) -> float | None:
        return None if self._table is None else max(0.0, self.clock() - self._as_of)

    async def fetch(self) -> bool:
        """One poll: True when a good table was fetched and cached; never raises on source faults."""
        try:
            resp = await self._client.get(self.url, headers={"Accept": "application/json"})
            resp.raise_for_status()
            doc = resp.json()
            if not isinstance(doc, dict) or not isinstance(doc.get("rates"), dict):
                raise ValueError("body has no \"rates\" object")
            rates = parse_table(doc["rates"], self.url)
            now = self.clock()
            as_of = _epoch(doc["as_of"]) if doc.get("as_of") is not None else now
            as_of = min(as_of, now)  # a clock ahead of ours does not make a table younger
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("fx rate poll failed: %s: %s", type(exc).__name__, exc)
            return False
        blob = {"as_of": as_of, "rates": {f"{b}/{q}": str(r) for (b, q), r in rates.items()}}
        self._table, self._as_of = RateTable(rates, self.pivot), as_of
        try:
            ttl = self.max_age_s * 4
            await self.cache.put_blob(self.key, json.dumps(blob).encode(), ttl_s=ttl)
        except Exception as exc:  # the store being down must not stop quoting from memory
            log.warning("fx rate cache write failed: %s", exc)
        return True

    async def _from_cache(self) -> None:
        try:
            raw = await self.cache.get_blob(self.key)
            if raw is None:
                return
            doc = json.loads(raw)
            as_of = float(doc["as_of"])
            if as_of > self._as_of:
                self._table, self._as_of = RateTable(parse_table(doc["rates"], "cache"), self.pivot), as_of
        except Exception as exc:  # a bad or unreachable cache entry: fall back to polling
            log.warning("fx rate cache read failed: %s", exc)

    async def refresh(self) -> None:
        """Bring the table up to date: the shared cache first, the source when that is old too."""
        async with self._lock:
            now = self.clock()
            # without any table, retry the source at most once a second rather than once a poll
            if now - self._checked < (self.poll_s if self._table is not None else 1.0):
                return
            await self._from_cache()
            if self._table is None or now - self._as_of >= self.poll_s:
                await self.fetch()
            self._checked = now

    async def mid_rate(self, base: str, quote: str) -> Decimal:
        now = self.clock()
        if self._table is None or now - self._as_of >= self.poll_s:
            await self.refresh()
        age = self.age_s
        if self._table is None or age is None or age > self.max_age_s:
            shown = "no table" if age is None else f"table is {int(age)} s old"
            raise RateStale(f"exchange rates unavailable: {shown}, max {self.max_age_s} s")
        return self._table.mid(base, quote)

    async def poll_forever(self) -> None:
        """Background task: keep the table fresh (cancel it to stop)."""
        while True:
            await self.refresh()
            await asyncio.sleep(self.poll_s)


def _epoch(value: Any) -> float:
    if not isinstance(value, str):
        raise ValueError("as_of must be an RFC 3339 string")
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError("as_of must carry a zone")
    return dt.timestamp()


def build_rates(settings: FXSettings, cache: BlobCache) -> RateProvider:
    """The configured source: static (table_file + inline table) or http."""
    src = settings.rates
    if src.source == "http":
        assert src.url is not None  # checked by the settings model
        return HttpRates(
            src.url, cache, max_age_s=src.max_age_s, poll_s=src.poll_s, timeout_s=src.timeout_s, pivot=settings.pivot
        )
    table: dict[tuple[str, str], Decimal] = {}
    if src.table_file is not None:
        table.update(load_table_file(src.table_file))
    try:
        table.update(parse_table(src.table, "fx.rates.table"))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return StaticRates(table, settings.pivot)
