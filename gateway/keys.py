"""Composition-root glue for ``gateway.signing``: the key registry built from Settings, and the
app's store seen as the signing middleware's nonce store.

Lives outside ``gateway/signing`` because it imports ``gateway.config`` (the signing package
stays self-contained)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextvars import ContextVar
from datetime import UTC, datetime

from aiohttp import web

from gateway.appkeys import STORE
from gateway.config import Settings
from gateway.signing import KeyRegistry, PublicKeyEntry, Signer, load_private_key, load_public_key
from schemas.errors import ConfigError


def _sort_key(not_before: datetime | None) -> float:
    return -(not_before.replace(tzinfo=not_before.tzinfo or UTC).timestamp() if not_before else 0.0)


def registry_from_settings(settings: Settings, extra: Sequence[PublicKeyEntry] = ()) -> KeyRegistry:
    """Load every configured key, plus ``extra`` partner keys (fetched from their JWKS). The
    gateway signs with its newest key already valid (keys not yet valid or expired are still
    published in the JWKS for rotation). Raises ConfigError naming the offending key."""
    now = datetime.now(UTC)
    signers: list[tuple[bool, float, Signer]] = []
    for i, gk in enumerate(settings.gateway.keys):
        try:
            key = load_private_key(gk.private_key, gk.alg)
            signer = Signer(gk.keyid, gk.alg, key)
        except ConfigError as exc:
            raise ConfigError(f"gateway.keys[{i}] ({gk.keyid}): {exc.detail}") from exc
        nb = gk.not_before.replace(tzinfo=gk.not_before.tzinfo or UTC) if gk.not_before else None
        na = gk.not_after.replace(tzinfo=gk.not_after.tzinfo or UTC) if gk.not_after else None
        active = (nb is None or nb <= now) and (na is None or now < na)
        signers.append((not active, _sort_key(gk.not_before), signer))
    signers.sort(key=lambda t: (t[0], t[1]))
    public: list[PublicKeyEntry] = []
    client_ids: dict[str, str] = {}
    for i, partner in enumerate(settings.partners):
        if partner.client_id:
            client_ids[partner.client_id] = partner.id
        for j, pk in enumerate(partner.keys):
            try:
                public.append(PublicKeyEntry(
                    keyid=pk.keyid, partner_id=partner.id, alg=pk.alg,
                    public_key=load_public_key(pk.public_key, pk.alg),
                    not_before=pk.not_before, not_after=pk.not_after, key_version=pk.key_version,
                ))
            except ConfigError as exc:
                raise ConfigError(f"partners[{i}].keys[{j}] ({pk.keyid}): {exc.detail}") from exc
    return KeyRegistry([s for _, _, s in signers], [*public, *extra], client_ids=client_ids)


# (partner, seconds to wait) of the token the nonce check took for this request (see AppNonceStore).
ADMITTED: ContextVar[tuple[str, float] | None] = ContextVar("qrgw_admitted", default=None)


class AppNonceStore:
    """The app's Store as a NonceStore, looked up per call: the store only exists once the
    store cleanup_ctx has run, after the middleware was built.

    The nonce check is the first store call of every signed request; when the key's partner has a
    rate limit, the partner's token is taken concurrently with it (another key, maybe another
    Cluster slot: two calls in flight, one round trip of waiting) and left in ``ADMITTED`` for the
    rate-limit middleware, which then needs no call of its own."""

    def __init__(self, app: web.Application, settings: Settings | None = None) -> None:
        self._app = app
        self._partner_of = {k.keyid: p.id for p in settings.partners for k in p.keys} if settings else {}
        self._limits = {p.id: p.rate_limit for p in settings.partners if p.rate_limit} if settings else {}

    async def remember_nonce(self, keyid: str, nonce: str, ttl_s: int) -> bool:
        store = self._app[STORE]
        partner = self._partner_of.get(keyid)
        limit = self._limits.get(partner) if partner else None
        if partner is None or limit is None:
            return await store.remember_nonce(keyid, nonce, ttl_s)
        fresh, wait = await asyncio.gather(
            store.remember_nonce(keyid, nonce, ttl_s), store.take_token(f"rl:{partner}", limit.rate_per_s, limit.burst)
        )
        ADMITTED.set((partner, wait))
        return fresh
