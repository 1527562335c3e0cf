"""How a sandbox partner keeps up with the gateway's keys: as a real partner should, it fetches
the gateway's JWKS again when a call is signed with a key id it does not know (at most once a
minute), so a gateway key rotation needs no sandbox restart."""

from __future__ import annotations

import time
from collections.abc import Sequence

import httpx

from gateway.signing import KeyRegistry, PublicKeyEntry, Signer
from gateway.signing.jwks import entries_from_jwks
from schemas.errors import ConfigError

REFRESH_INTERVAL_S = 60.0


class GatewayKeys:
    def __init__(self, signer: Signer, pinned: Sequence[PublicKeyEntry]) -> None:
        self.signer = signer
        self.pinned = list(pinned)  # what the sandbox was started with (kept: Alipay+ key versions)
        self.jwks_url: str | None = None  # set once the gateway's address is known
        self.registry = KeyRegistry([signer], self.pinned)
        self._last = float("-inf")

    async def refresh(self) -> bool:
        """Fetch the gateway's JWKS; True when the registry changed (then verify again)."""
        now = time.monotonic()
        if self.jwks_url is None or now - self._last < REFRESH_INTERVAL_S:
            return False
        self._last = now
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                resp = await client.get(self.jwks_url)
            fetched = entries_from_jwks(resp.json(), "qrgw") if resp.status_code == 200 else []
        except (httpx.HTTPError, ValueError, ConfigError):
            return False
        known = {e.keyid for e in self.pinned}
        fresh = [e for e in fetched if e.keyid not in known]
        if not fresh:
            return False
        self.registry = KeyRegistry([self.signer], [*self.pinned, *fresh])
        return True
