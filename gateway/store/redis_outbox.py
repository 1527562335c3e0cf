"""The outbox half of ``RedisStore`` (docs/store.md, "Outbox"): one stream per shard, read by
consumer groups with one blocking ``XREADGROUP`` over every shard stream of a slot group, and
acknowledged, reclaimed and counted by scripts that take a whole slot group at once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from redis import exceptions as rex
from redis.asyncio.cluster import RedisCluster

from gateway.store.base import OutboxEntry

_ACK_BATCH = 200  # entry ids per stream in one ACK_EVENTS call (Lua's unpack has a stack limit)


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


class RedisOutbox:
    """Mixed into ``RedisStore``, whose ``__init__`` sets these attributes."""

    shards: int
    max_block_ms: int  # a blocking read must answer before the socket timeout gives up on it
    _r: Any
    _groups: set[tuple[str, str]]  # (stream, group) known to exist
    _unread: dict[tuple[str, str], list[OutboxEntry]]  # (group, consumer) -> read, not handed out

    if TYPE_CHECKING:

        async def _call(self, op: str, *args: Any) -> Any: ...

        async def _eval(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any: ...

        def _outbox(self, shard: int) -> str: ...

    async def append_events(self, shard: int, events: Sequence[Mapping[str, Any]]) -> None:
        key = self._outbox(shard % self.shards)
        for event in events:  # each XADD is atomic; a batch needs no more
            await self._call("XADD", key, "*", "e", json.dumps(dict(event)))

    # Slot groups: the shard streams one multi-key command may name. A single server takes all of
    # them at once (one XREADGROUP, one script); a Cluster only one shard per command.
    def _slot_groups(self) -> list[list[int]]:
        if isinstance(self._r, RedisCluster):
            return [[s] for s in range(self.shards)]
        return [list(range(self.shards))]

    async def _ensure_group(self, key: str, group: str) -> None:
        if (key, group) in self._groups:
            return
        try:
            await self._call("XGROUP", "CREATE", key, group, "0", "MKSTREAM")
        except rex.ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise
        self._groups.add((key, group))

    async def _xreadgroup(self, group: str, consumer: str, shards: list[int], count: int, block_ms: int) -> Any:
        keys = [self._outbox(s) for s in shards]
        for key in keys:
            await self._ensure_group(key, group)
        block = ("BLOCK", block_ms) if block_ms > 0 else ()
        args = ("GROUP", group, consumer, "COUNT", count, *block, "STREAMS", *keys, *(">" for _ in keys))
        try:
            return await self._call("XREADGROUP", *args)
        except rex.ResponseError as exc:
            if not str(exc).startswith("NOGROUP"):  # a stream was deleted under us
                raise
        for key in keys:
            self._groups.discard((key, group))
            await self._ensure_group(key, group)
        return await self._call("XREADGROUP", *args)

    async def read_events(
        self, group: str, consumer: str, count: int = 100, block_ms: int = 0
    ) -> list[OutboxEntry]:
        """XREADGROUP over every shard stream of a slot group in one command (COUNT applies per
        stream, so what exceeds ``count`` is kept for this consumer's next read: it is pending
        for it already). With ``block_ms`` and nothing new, the command blocks on the server."""
        buffered = self._unread.setdefault((group, consumer), [])
        if not buffered:
            block = min(block_ms, self.max_block_ms)
            groups = self._slot_groups()
            replies = await asyncio.gather(
                *(self._xreadgroup(group, consumer, g, count, block) for g in groups)
            )
            shard_of_key = {self._outbox(s): s for s in range(self.shards)}
            for reply in replies:
                streams = reply.items() if isinstance(reply, dict) else (reply or ())
                for stream, entries in streams:
                    shard = shard_of_key[_s(stream)]
                    for entry_id, fields in entries or ():
                        event = fields[b"e"] if isinstance(fields, dict) else fields[1]
                        buffered.append(OutboxEntry(_s(entry_id), shard, json.loads(event), 1))
        out, buffered[:] = buffered[:count], buffered[count:]
        return out

    async def ack_events(self, group: str, entries: Sequence[OutboxEntry]) -> None:
        by_shard: dict[int, list[str]] = {}
        for e in entries:
            by_shard.setdefault(e.shard, []).append(e.entry_id)
        for shards in self._slot_groups():
            present = [s for s in shards if s in by_shard]
            for i in range(0, max((len(by_shard[s]) for s in present), default=0), _ACK_BATCH):
                args: list[Any] = [group]
                for s in present:
                    ids = by_shard[s][i : i + _ACK_BATCH]
                    args += [len(ids), *ids]
                await self._eval("ACK_EVENTS", [self._outbox(s) for s in present], args)

    async def reclaim_events(
        self, group: str, consumer: str, min_idle_ms: int, count: int = 100
    ) -> list[OutboxEntry]:
        out: list[OutboxEntry] = []
        for shards in self._slot_groups():
            if len(out) >= count:
                break
            flat = await self._eval("RECLAIM_EVENTS", [self._outbox(s) for s in shards],
                                    [group, consumer, min_idle_ms, count - len(out)])
            for i in range(0, len(flat), 4):
                shard = shards[int(flat[i]) - 1]
                out.append(OutboxEntry(_s(flat[i + 1]), shard, json.loads(flat[i + 2]), int(flat[i + 3])))
        return out

    async def outbox_backlog(self, group: str) -> int:
        counts = await asyncio.gather(
            *(self._eval("BACKLOG", [self._outbox(s) for s in g], [group]) for g in self._slot_groups())
        )
        return sum(int(c) for c in counts)
