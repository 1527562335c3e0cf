"""The outbox half of ``MemoryStore``: per-shard streams with consumer groups, like Redis's
(``gateway.store.redis_outbox``); a blocked reader waits on a future an append resolves."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.store.base import OutboxEntry


@dataclass
class _Stream:
    entries: dict[int, dict[str, Any]] = field(default_factory=dict)  # seq -> event, in seq order
    # group -> {"last": seq delivered to the group, "pending": {seq: [consumer, handed_at, deliveries]}}
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)


class MemoryOutbox:
    """Mixed into ``MemoryStore``, whose ``__init__`` calls ``_init_outbox``."""

    shards: int
    _clock: Callable[[], float]

    def _init_outbox(self) -> None:
        self._streams = [_Stream() for _ in range(self.shards)]
        self._seq = 0
        self._outbox_waiters: set[asyncio.Future[None]] = set()

    def _append(self, shard: int, events: Sequence[Mapping[str, Any]]) -> None:
        stream = self._streams[shard]
        for event in events:
            self._seq += 1
            stream.entries[self._seq] = json.loads(json.dumps(dict(event)))
        for waiter in self._outbox_waiters:  # wake blocked readers (like XREADGROUP BLOCK)
            if not waiter.done():
                waiter.set_result(None)

    def _group(self, stream: _Stream, group: str) -> dict[str, Any]:
        return stream.groups.setdefault(group, {"last": 0, "pending": {}})

    async def append_events(self, shard: int, events: Sequence[Mapping[str, Any]]) -> None:
        self._append(shard % self.shards, events)

    async def read_events(
        self, group: str, consumer: str, count: int = 100, block_ms: int = 0
    ) -> list[OutboxEntry]:
        out = self._read(group, consumer, count)
        if out or block_ms <= 0:
            return out
        waiter = asyncio.get_running_loop().create_future()  # a future per wait: no loop binding
        self._outbox_waiters.add(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, block_ms / 1000)
        finally:
            self._outbox_waiters.discard(waiter)
        return self._read(group, consumer, count)

    def _read(self, group: str, consumer: str, count: int) -> list[OutboxEntry]:
        out: list[OutboxEntry] = []
        now = self._clock()
        for shard, stream in enumerate(self._streams):
            g = self._group(stream, group)
            for seq, event in stream.entries.items():
                if len(out) >= count:
                    return out
                if seq <= g["last"]:
                    continue
                g["last"] = seq
                g["pending"][seq] = [consumer, now, 1]
                out.append(OutboxEntry(str(seq), shard, copy.deepcopy(event), 1))
        return out

    async def ack_events(self, group: str, entries: Sequence[OutboxEntry]) -> None:
        for entry in entries:
            stream, seq = self._streams[entry.shard], int(entry.entry_id)
            self._group(stream, group)["pending"].pop(seq, None)
            # like the Redis script: gone once every group was handed it and acknowledged it
            if all(seq not in g["pending"] and seq <= g["last"] for g in stream.groups.values()):
                stream.entries.pop(seq, None)

    async def reclaim_events(
        self, group: str, consumer: str, min_idle_ms: int, count: int = 100
    ) -> list[OutboxEntry]:
        out: list[OutboxEntry] = []
        now = self._clock()
        for shard, stream in enumerate(self._streams):
            pending = self._group(stream, group)["pending"]
            events = stream.entries
            for seq, state in sorted(pending.items()):
                if len(out) >= count:
                    return out
                if (now - state[1]) * 1000 < min_idle_ms or seq not in events:
                    continue
                state[0], state[1], state[2] = consumer, now, state[2] + 1
                out.append(OutboxEntry(str(seq), shard, copy.deepcopy(events[seq]), state[2]))
        return out

    async def outbox_backlog(self, group: str) -> int:
        total = 0
        for stream in self._streams:
            g = self._group(stream, group)
            total += sum(1 for seq in stream.entries if seq > g["last"]) + len(g["pending"])
        return total
