"""What the webhook worker keeps in the store: per-event delivery state and dead letters.

Both are small JSON blobs, so any gateway process (or a restarted one) carries on where
another stopped:

* ``webhook:state:<event_id>`` — written only once an event needs a retry (a first round that
  succeeds writes nothing): recipients already answered 2xx, attempts, first try, next due
  time, last error per recipient. Kept after success too (``done``), so a duplicate outbox
  entry of the same event is acknowledged without re-sending.
* ``webhook:dead:<event_id>`` — an event given up after the horizon (no expiry), listed in
  ``webhook:dead-index``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

STATE_PREFIX = "webhook:state:"
DEAD_PREFIX = "webhook:dead:"
DEAD_INDEX = "webhook:dead-index"
_INDEX_LEASE = "webhook:dead-index-lease"


class BlobStore(Protocol):
    async def put_blob(self, key: str, value: bytes, ttl_s: int | None = None) -> None: ...

    async def get_blob(self, key: str) -> bytes | None: ...

    async def acquire_lease(self, name: str, owner: str, ttl_ms: int) -> bool: ...

    async def release_lease(self, name: str, owner: str) -> None: ...


@dataclass
class DeliveryState:
    first_at: float  # unix time of the first delivery try
    attempts: int = 0  # failed rounds so far
    next_at: float = 0.0  # not before (unix time)
    delivered: list[str] = field(default_factory=list)
    last_error: dict[str, str] = field(default_factory=dict)
    done: bool = False

    @classmethod
    def from_json(cls, raw: bytes) -> DeliveryState:
        d = json.loads(raw)
        return cls(
            first_at=float(d["first_at"]), attempts=int(d["attempts"]), next_at=float(d["next_at"]),
            delivered=[str(x) for x in d["delivered"]], last_error={str(k): str(v) for k, v in d["last_error"].items()},
            done=bool(d["done"]),
        )

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()


async def load_state(store: BlobStore, event_id: str) -> DeliveryState | None:
    raw = await store.get_blob(STATE_PREFIX + event_id)
    if raw is None:
        return None
    try:
        return DeliveryState.from_json(raw)
    except (ValueError, KeyError, TypeError):
        return None  # unreadable: start over (at-least-once: a partner may see a repeat)


async def reopened(store: BlobStore, event_id: str) -> bool:
    """An operator replayed the event: its state is back to not done (``gateway.admin.actions.replay``)."""
    state = await load_state(store, event_id)
    return state is not None and not state.done


async def save_state(store: BlobStore, event_id: str, state: DeliveryState, ttl_s: int) -> None:
    await store.put_blob(STATE_PREFIX + event_id, state.to_json(), ttl_s)


async def record_dead_letter(store: BlobStore, owner: str, event: Mapping[str, Any], doc: Mapping[str, Any]) -> bool:
    """Store the dead letter and list it in the index. False if the index stayed locked (the
    dead letter itself is stored either way)."""
    event_id = str(event.get("event_id") or "")
    await store.put_blob(DEAD_PREFIX + event_id, json.dumps({**doc, "event": dict(event)}).encode(), None)
    return await locked_index(store, owner, lambda index: index if event_id in index else [*index, event_id])


async def locked_index(store: BlobStore, owner: str, change: Callable[[list[str]], list[str]]) -> bool:
    """Rewrite the dead-letter index under its lease (a replay takes an id off it). False if the
    lease stayed taken for about a second."""
    for _ in range(50):
        if await store.acquire_lease(_INDEX_LEASE, owner, 5000):
            try:
                raw = await store.get_blob(DEAD_INDEX)
                index: list[str] = json.loads(raw) if raw else []
                changed = change(index)
                if changed != index:
                    await store.put_blob(DEAD_INDEX, json.dumps(changed).encode(), None)
                return True
            finally:
                await store.release_lease(_INDEX_LEASE, owner)
        await asyncio.sleep(0.02)
    return False


async def dead_letters(store: BlobStore) -> list[dict[str, Any]]:
    """Every dead letter listed in the index (oldest first)."""
    raw = await store.get_blob(DEAD_INDEX)
    out: list[dict[str, Any]] = []
    for event_id in json.loads(raw) if raw else []:
        blob = await store.get_blob(DEAD_PREFIX + event_id)
        if blob is not None:
            out.append(json.loads(blob))
    return out
