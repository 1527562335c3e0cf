"""A dict-based NonceStore for signing tests (stands in until a Store is needed; records calls)."""

from __future__ import annotations


class MemoryNonces:
    """``remember_nonce`` semantics of the Store port (SET NX with expiry, time ignored)."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], int] = {}

    async def remember_nonce(self, keyid: str, nonce: str, ttl_s: int) -> bool:
        if (keyid, nonce) in self.seen:
            return False
        self.seen[(keyid, nonce)] = ttl_s
        return True
