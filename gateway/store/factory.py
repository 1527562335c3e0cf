"""Open the store named by ``[store] url``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas.errors import ConfigError

if TYPE_CHECKING:
    from gateway.config import StoreSettings
    from gateway.store.base import Store


async def open_store(settings: StoreSettings) -> Store:
    url = settings.url
    if url.startswith("memory://"):
        from gateway.store.memory import MemoryStore

        return MemoryStore()
    if url.startswith(("redis://", "rediss://", "unix://", "redis+cluster://")):
        from gateway.store.redis import RedisStore

        return await RedisStore.connect(url, pool_size=settings.pool_size, timeout_s=settings.timeout_s,
                                        repeat_budget_s=settings.repeat_budget_s)
    raise ConfigError(f"store.url: unsupported scheme in {url!r}")
