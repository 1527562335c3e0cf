"""Partner public keys published at a ``jwks_url`` (one per partner, optional).

Fetched with the partner-call TLS policy (``adapters.http``: https with verification unless
sandbox, the partner's CA bundle and client certificate), cached for the ``Cache-Control``
``max-age`` the partner sends (bounded to [MIN_TTL_S, MAX_TTL_S]; DEFAULT_TTL_S without one),
and fetched again when a request names an unknown ``keyid`` — at most once a minute, so a
stream of bogus key ids cannot turn the gateway into a load generator against a partner.

Key ids are pinned to their partner: a JWK whose ``kid`` is configured for, or was already
published by, another partner makes the whole fetched set refused (the previous set is kept).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from gateway.config import PartnerSettings, Settings
from gateway.signing import PublicKeyEntry
from gateway.signing.jwks import entries_from_jwks
from schemas.errors import ConfigError

log = structlog.get_logger("gateway.keys")
MIN_TTL_S, DEFAULT_TTL_S, MAX_TTL_S = 30.0, 300.0, 86400.0
UNKNOWN_KEYID_INTERVAL_S = 60.0
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)


def cache_ttl(cache_control: str | None) -> float:
    if not cache_control:
        return DEFAULT_TTL_S
    if re.search(r"no-store|no-cache", cache_control, re.IGNORECASE):
        return MIN_TTL_S
    m = _MAX_AGE.search(cache_control)
    return DEFAULT_TTL_S if m is None else min(MAX_TTL_S, max(MIN_TTL_S, float(m.group(1))))


@dataclass(frozen=True)
class Fetched:
    entries: tuple[PublicKeyEntry, ...]
    expires_at: float  # monotonic


def partner_tls(p: PartnerSettings, sandbox: bool) -> Any:
    """httpx ``verify`` of a call to this partner: the partner-call TLS policy, reused as is (one
    policy, one place: the partner's CA bundle, client certificate, TLS 1.2+)."""
    from adapters.endpoint import PartnerEndpoint
    from adapters.http import _verify

    return _verify(PartnerEndpoint.from_settings(p.model_dump(), sandbox=sandbox))


def _verify_for(p: PartnerSettings, sandbox: bool) -> Any:
    assert p.jwks_url is not None
    if p.jwks_url.startswith("http://") and not sandbox:
        raise ConfigError(f"partners[{p.id}].jwks_url: plain http is allowed only in sandbox mode")
    return partner_tls(p, sandbox)


class PartnerJwks:
    """The cached key sets of every partner with a ``jwks_url``; immutable views per fetch."""

    def __init__(self) -> None:
        self._sets: dict[str, Fetched] = {}
        self._owner: dict[str, str] = {}  # kid -> partner that first published it
        self._last_unknown = float("-inf")
        self._lock = asyncio.Lock()

    def entries(self, partners: Iterable[str]) -> list[PublicKeyEntry]:
        wanted = set(partners)
        return [e for pid, f in self._sets.items() if pid in wanted for e in f.entries]

    def next_due(self) -> float | None:
        return min((f.expires_at for f in self._sets.values()), default=None)

    async def fetch(self, settings: Settings, *, only_due: bool = False) -> bool:
        """Fetch every partner's set (or only the expired ones); True when anything changed.
        A failed fetch keeps the partner's previous set and logs one line."""
        async with self._lock:
            return await self._fetch(settings, only_due)

    async def _fetch(self, settings: Settings, only_due: bool) -> bool:
        now, changed = time.monotonic(), False
        static = {k.keyid: p.id for p in settings.partners for k in p.keys}
        static |= {k.keyid: "qrgw" for k in settings.gateway.keys}
        for p in settings.partners:
            if p.jwks_url is None or (only_due and self._sets.get(p.id, Fetched((), 0)).expires_at > now):
                continue
            try:
                fetched = await self._fetch_one(p, settings.server.sandbox)
                for e in fetched.entries:
                    owner = static.get(e.keyid) or self._owner.get(e.keyid)
                    if owner not in (None, p.id):
                        raise ConfigError(f"kid {e.keyid!r} belongs to {owner!r}")
            except (ConfigError, httpx.HTTPError, ValueError) as exc:
                detail = exc.detail if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
                log.warning("partner_jwks_refused", partner=p.id, url=p.jwks_url, detail=detail)
                old = self._sets.get(p.id)
                self._sets[p.id] = Fetched(old.entries if old else (), now + MIN_TTL_S)  # retry later
                continue
            old_ids = {e.keyid for e in self._sets[p.id].entries} if p.id in self._sets else None
            self._sets[p.id] = fetched
            self._owner.update({e.keyid: p.id for e in fetched.entries})
            if old_ids != {e.keyid for e in fetched.entries}:
                changed = True
                log.info("partner_jwks_loaded", partner=p.id, keyids=sorted(e.keyid for e in fetched.entries))
        return changed

    async def _fetch_one(self, p: PartnerSettings, sandbox: bool) -> Fetched:
        verify = _verify_for(p, sandbox)
        timeout = httpx.Timeout(p.total_timeout_s, connect=p.connect_timeout_s)
        async with httpx.AsyncClient(verify=verify, timeout=timeout) as client:
            resp = await client.get(str(p.jwks_url), headers={"Accept": "application/jwk-set+json, application/json"})
        if resp.status_code != 200:
            raise ConfigError(f"HTTP {resp.status_code}")
        entries = entries_from_jwks(resp.json(), p.id)
        return Fetched(tuple(entries), time.monotonic() + cache_ttl(resp.headers.get("Cache-Control")))

    async def refresh_for_unknown(self, settings: Settings) -> bool:
        """An unknown keyid arrived: fetch again, unless that was done less than a minute ago."""
        async with self._lock:
            now = time.monotonic()
            if now - self._last_unknown < UNKNOWN_KEYID_INTERVAL_S:
                return False
            self._last_unknown = now
            return await self._fetch(settings, only_due=False)
