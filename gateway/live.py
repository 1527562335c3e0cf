"""Keys, partners and routing that change without a restart.

The app holds one immutable ``Snapshot`` (settings + key registry); every change builds a whole
new one and swaps it in with a single assignment, together with whatever the registered
listeners prepared from it (new partner adapters, a new routing table), in one synchronous step:
no request ever sees half of a change, and a request in flight keeps the registry it started
with (the signing middleware reads ``current`` once per request).

Changes come from: SIGHUP (``qrgw serve``: re-read the config file; a config that does not load
is refused, the old one kept, with one log line), a gateway key's ``not_before``/``not_after``
passing (the signer is re-chosen), and partner JWKS sets fetched again (expiry, unknown keyid).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.config import Settings, load_settings
from gateway.keys import registry_from_settings
from gateway.partnerjwks import PartnerJwks
from gateway.signing import KeyRegistry, PublicKeyEntry, Signer
from schemas.errors import ConfigError, KeyUnknown

log = structlog.get_logger("gateway.live")
_KEYID = re.compile(r';\s*keyid="([^"\\]*)"')
MAX_SLEEP_S = 3600.0


@dataclass(frozen=True)
class Snapshot:
    settings: Settings
    registry: KeyRegistry
    generation: int


# A listener prepares its part of a new snapshot (may raise ConfigError: the change is refused)
# and returns the commit, which must not fail and runs in the same step as the swap.
Prepare = Callable[[Snapshot], Callable[[], None]]


class Live:
    def __init__(self, settings: Settings) -> None:
        self.jwks = PartnerJwks()
        self.current = self._build(settings, 0)
        self.source: tuple[Path | None, dict[str, Any]] | None = None  # set by `qrgw serve`
        self._listeners: list[Prepare] = []
        self._wake: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self.last_refusal: str | None = None  # why the last reload was refused (None: it was not)

    def registry(self) -> KeyRegistry:
        return self.current.registry

    def on_change(self, prepare: Prepare) -> None:
        self._listeners.append(prepare)

    def _build(self, settings: Settings, generation: int) -> Snapshot:
        registry = registry_from_settings(settings, self.jwks.entries(p.id for p in settings.partners))
        if not registry.signers:
            raise ConfigError("gateway.keys: at least one signing key is required (every response is signed)")
        return Snapshot(settings, registry, generation)

    def _swap(self, settings: Settings, why: str) -> None:
        """Build, prepare, then swap and commit with no await in between (atomic for the loop)."""
        snap = self._build(settings, self.current.generation + 1)
        commits = [prepare(snap) for prepare in self._listeners]
        old, self.current = self.current, snap
        for commit in commits:
            commit()
        if old.registry.signer.keyid != snap.registry.signer.keyid:
            log.info("gateway_signer_changed", old=old.registry.signer.keyid, new=snap.registry.signer.keyid)
        log.info("live_config_swapped", why=why, generation=snap.generation)

    async def reload(self) -> bool:
        """Re-read the config file (SIGHUP). False, with one log line, when it is refused."""
        if self.source is None:
            return False
        async with self._guard():
            path, overrides = self.source
            try:
                settings = load_settings(path, **overrides)
                await self.jwks.fetch(settings)
                self._swap(settings, "reload")
            except ConfigError as exc:
                log.error("config_reload_refused", detail=exc.detail, kept_generation=self.current.generation)
                self.last_refusal = exc.detail
                return False
            self.last_refusal = None
        if self._wake is not None:
            self._wake.set()  # key boundaries may have changed
        return True

    async def rebuild(self, why: str) -> None:
        """Same settings, fresh signer choice and JWKS entries (never fails on a config that loaded)."""
        async with self._guard():
            try:
                self._swap(self.current.settings, why)
            except ConfigError as exc:  # e.g. a key file removed since: keep serving with what we have
                log.error("live_rebuild_failed", why=why, detail=exc.detail)

    def _guard(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    # --- unknown key ids (partners publishing at a jwks_url) -------------------------------------------
    def knows(self, keyid: str) -> bool:
        try:
            self.current.registry.lookup(keyid, time.time())
        except KeyUnknown:
            return False
        return True

    async def refresh_for_unknown(self) -> None:
        if await self.jwks.refresh_for_unknown(self.current.settings):
            await self.rebuild("jwks")

    # --- timers: key windows and JWKS expiry ---------------------------------------------------------
    def next_key_boundary(self, now: float) -> float | None:
        times = [
            t.replace(tzinfo=t.tzinfo or UTC).timestamp()
            for k in self.current.settings.gateway.keys
            for t in (k.not_before, k.not_after)
            if t is not None
        ]
        return min((t for t in times if t > now), default=None)

    async def run(self) -> None:
        self._wake = asyncio.Event()
        while True:
            now_wall, now_mono = time.time(), time.monotonic()
            waits = [MAX_SLEEP_S]
            if (b := self.next_key_boundary(now_wall)) is not None:
                waits.append(b - now_wall + 0.05)
            if (d := self.jwks.next_due()) is not None:
                waits.append(d - now_mono)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, min(waits)))
            self._wake.clear()
            try:
                changed = await self.jwks.fetch(self.current.settings, only_due=True)
                if changed or (b is not None and time.time() >= b):
                    await self.rebuild("jwks" if changed else "key window")
            except Exception:  # never let the timer die: the next key window must still switch
                log.exception("live_timer_failed")
                await asyncio.sleep(1.0)


LIVE = web.AppKey("live", Live)


class LiveRegistry(KeyRegistry):
    """The live registry as one long-lived object, for code that keeps a registry (the HTTP
    server signing its own protocol-level errors): every call reads the current snapshot."""

    def __init__(self, live: Live) -> None:  # holds no keys itself: no KeyRegistry.__init__
        self._live = live

    @property
    def signer(self) -> Signer:
        return self._live.registry().signer

    @property
    def signers(self) -> tuple[Signer, ...]:
        return self._live.registry().signers

    def signer_for(self, alg: str) -> Signer:
        return self._live.registry().signer_for(alg)

    def lookup(self, keyid: str, ts: float) -> PublicKeyEntry:
        return self._live.registry().lookup(keyid, ts)

    def public(self, keyid: str, at: datetime | None = None) -> PublicKeyEntry:
        return self._live.registry().public(keyid, at)

    def alipay_public(self, client_id: str, key_version: str | None, at: datetime | None = None) -> PublicKeyEntry:
        return self._live.registry().alipay_public(client_id, key_version, at)

    def partner_keys(self, partner_id: str) -> list[PublicKeyEntry]:
        return self._live.registry().partner_keys(partner_id)

    def jwks(self) -> dict[str, Any]:
        return self._live.registry().jwks()


def make_unknown_keyid_middleware(live: Live) -> Middleware:
    """Before verification: a keyid nobody knows may be a partner's newly published key."""

    @web.middleware
    async def unknown_keyid(request: web.Request, handler: Handler) -> web.StreamResponse:
        if any(p.jwks_url for p in live.current.settings.partners):
            m = _KEYID.search(request.headers.get("Signature-Input", ""))
            if m is not None and not live.knows(m.group(1)):
                await live.refresh_for_unknown()
        return await handler(request)

    return unknown_keyid


async def reload_handler(request: web.Request) -> web.Response:
    """``POST /admin/reload`` on the operator listener: the same as SIGHUP, with the verdict."""
    from gateway.obs.ready import GATEWAY_APP

    live = request.app[GATEWAY_APP][LIVE]
    if live.source is None:
        return web.json_response({"reloaded": False, "detail": "only `qrgw serve --config` reloads"}, status=409)
    if await live.reload():
        return web.json_response({"reloaded": True, "generation": live.current.generation})
    return web.json_response({"reloaded": False, "detail": live.last_refusal,
                              "generation": live.current.generation}, status=422)


def enable_reload(app: web.Application, path: Path | None, overrides: dict[str, Any]) -> None:
    """``qrgw serve``: SIGHUP re-reads ``path`` (layered as at start-up)."""
    app[LIVE].source = (path, dict(overrides))


_reloads: set[asyncio.Future[bool]] = set()


def _keep(fut: asyncio.Future[bool]) -> None:
    """Hold a reference until done (the loop keeps only weak ones to tasks)."""
    _reloads.add(fut)
    fut.add_done_callback(_reloads.discard)


async def live_ctx(app: web.Application) -> AsyncIterator[None]:
    live = app[LIVE]
    if await live.jwks.fetch(live.current.settings):
        await live.rebuild("jwks")
    task = asyncio.create_task(live.run(), name="live-config")
    loop, hup = asyncio.get_running_loop(), False
    if live.source is not None:
        try:
            loop.add_signal_handler(signal.SIGHUP, lambda: _keep(asyncio.ensure_future(live.reload())))
            hup = True
        except (RuntimeError, NotImplementedError, ValueError):  # not the main thread / platform
            log.warning("sighup_unavailable")
    try:
        yield
    finally:
        if hup:
            loop.remove_signal_handler(signal.SIGHUP)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
