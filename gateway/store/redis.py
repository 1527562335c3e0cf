"""``RedisStore``: the shared ``Store`` for several gateway processes, on one Redis or a Cluster.

Every change that touches more than one key, or reads before it writes, is one Lua script
(``redis_scripts``), so it is atomic on the server and a crash can never leave half of it.
Key layout (``docs/store.md``): a payment and its shard's day index, processing set and outbox
stream share the hash tag ``{p<shard>}``; a payer's limit counters and reservations share
``{l:<holder>}``; claims, nonces, quotes, blobs, leases and buckets are single keys.
Every Redis failure surfaces as ``StoreUnavailable`` (503 + Retry-After at the API).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis import exceptions as rex
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.store import redis_scripts as lua
from gateway.store.base import (
    PAYMENT_LEASE,
    PURPOSE,
    Begun,
    Claim,
    ClaimStatus,
    Finish,
    LimitItem,
    OutboxEntry,
    QuoteUse,
    QuoteUseStatus,
    Reservation,
    StaleVersion,
    Store,
    due_score,
    has_work_left,
    payment_lease,
)
from gateway.store.redis_outbox import RedisOutbox, _s
from schemas.errors import ConflictError, InvalidState, StoreUnavailable
from schemas.payment import HistoryEntry, PaymentRecord

log = structlog.get_logger("gateway.store")

# Server replies that mean "not now" (loading, failover, OOM, cluster reconfiguring), as
# opposed to a bug in a script or a command, which must stay loud.
_TRANSIENT_REPLIES = ("LOADING", "BUSY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "READONLY", "OOM", "NOREPLICAS")


@contextmanager
def unavailable(op: str) -> Iterator[None]:
    """Turn a Redis failure into ``StoreUnavailable`` (the one place this mapping lives)."""
    try:
        yield
    except (rex.ConnectionError, rex.TimeoutError, rex.ClusterError, rex.MaxConnectionsError) as exc:
        raise StoreUnavailable(f"redis {op}: {exc}") from exc
    except rex.ResponseError as exc:
        # Match the error word whole: "BUSYGROUP" (group exists) is an answer, not "BUSY".
        if str(exc).split(" ", 1)[0] in _TRANSIENT_REPLIES:
            raise StoreUnavailable(f"redis {op}: {exc}") from exc
        raise
    except rex.RedisClusterException as exc:  # e.g. no reachable startup node
        raise StoreUnavailable(f"redis {op}: {exc}") from exc


def _append_line(path: str, line: str) -> None:
    """Append one line to a small local file (at shutdown; never on a request's path)."""
    with contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def _split_due(flat: Sequence[Any]) -> list[list[Any]]:
    """PAYMENTS_DUE over several keys answers each key's reply after the other, each ending with
    its next-due score and preceded by its length; back to one reply per key."""
    out, i = [], 0
    while i < len(flat):
        n = int(flat[i])
        out.append(list(flat[i + 1 : i + 1 + n]))
        i += 1 + n
    return out


def _claim_of(r: Sequence[Any]) -> Claim:
    """A CLAIM / BEGIN_PAYMENT reply as a ``Claim``."""
    status = ClaimStatus(_s(r[0]))
    answer = json.loads(r[2]) if status is ClaimStatus.DONE and len(r) > 2 and r[2] else None
    return Claim(status, _s(r[1]), answer)


class RedisStore(RedisOutbox, Store):
    """``Store`` on redis.asyncio; ``connect()`` picks a single server or a Cluster by URL. The
    outbox methods live in ``gateway.store.redis_outbox``."""

    def __init__(
        self, client: Any, *, pool_size: int, prefix: str = "", shards: int = 16, repeat_budget_s: float = 5.0
    ) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("prefix must not contain a hash tag")
        self._r = client
        self._cluster = isinstance(client, RedisCluster)
        self._prefix = prefix
        self.shards = shards
        # At most pool_size commands in flight: the cluster client raises instead of waiting
        # when a node's pool is exhausted, so the wait happens here.
        self._slots = asyncio.Semaphore(pool_size)
        self._groups: set[tuple[str, str]] = set()  # outbox (gateway.store.redis_outbox)
        self._unread: dict[tuple[str, str], list[OutboxEntry]] = {}
        self.max_block_ms = 1000
        self._sha = {name: hashlib.sha1(src.encode()).hexdigest() for name, src in lua.SCRIPTS.items()}
        self._generation = 0  # bumped on each SCRIPT LOAD round; 0: not loaded yet
        self._loading = asyncio.Lock()
        # A call whose reply is lost (timeout, dropped connection) is repeated, identically, within
        # this budget: every call is safe to repeat (scripts recognise their own repeat, the rest are
        # reads or idempotent), and repeating is how the caller finds out what happened.
        self._repeat_budget_s = repeat_budget_s
        self.round_trips: Counter[str] = Counter()  # by PURPOSE; logged at close (bench/e2e.py reads it)

    @classmethod
    async def connect(
        cls,
        url: str,
        pool_size: int = 64,
        timeout_s: float = 2.0,
        *,
        prefix: str = "",
        shards: int = 16,
        repeat_budget_s: float = 5.0,
    ) -> RedisStore:
        """``redis://``, ``rediss://``, ``unix://`` or ``redis+cluster://host:port`` (any node)."""
        timeouts = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
        client: Any
        if url.startswith("redis+cluster://"):
            client = RedisCluster.from_url("redis://" + url.removeprefix("redis+cluster://"),
                                           max_connections=pool_size, **timeouts)
        else:
            # One immediate retry on a connection error (a pooled connection that died with a
            # Redis restart); anything longer is ``_repeating``'s job (timeouts included: every
            # call is safe to repeat, see docs/store.md).
            pool = aioredis.BlockingConnectionPool.from_url(
                # A pooled connection idle for 30 s is PINGed before use: a dead one is then replaced
                # before a command is lost on it (shorter intervals doubled an idle gateway's commands).
                url, max_connections=pool_size, timeout=timeout_s, health_check_interval=30,
                retry=Retry(NoBackoff(), 1, supported_errors=(rex.ConnectionError,)), **timeouts,
            )
            client = aioredis.Redis.from_pool(pool)
        store = cls(client, pool_size=pool_size, prefix=prefix, shards=shards, repeat_budget_s=repeat_budget_s)
        store.max_block_ms = max(1, int(timeout_s * 1000) // 2)
        return store

    # -- plumbing ---------------------------------------------------------------------------------
    async def _load_scripts(self, seen: int) -> None:
        """SCRIPT LOAD every script (on every primary of a Cluster) unless someone already did
        since generation ``seen``: many concurrent first calls, or NOSCRIPT after a Redis
        restart or failover, load them once, not once per caller. The first load is also the
        client's first command, alone: redis-py's cluster client, initialised lazily by many
        concurrent first commands, can hand out a connection another one just closed."""
        async with self._loading:
            if self._generation != seen:
                return
            with unavailable("script load"):
                for src in lua.SCRIPTS.values():
                    await self._r.script_load(src)
            self._generation += 1

    async def _repeating(self, op: str, attempt: Any) -> Any:
        """Run ``attempt()``; when its reply is lost, repeat it until it answers or the budget is
        spent (then ``StoreUnavailable``: the outcome is unknown, and the caller must not undo)."""
        deadline = time.monotonic() + self._repeat_budget_s
        delay = 0.05
        while True:
            self.round_trips[PURPOSE.get()] += 1
            try:
                return await attempt()
            except StoreUnavailable:
                if time.monotonic() + delay >= deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _eval(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        async def attempt() -> Any:
            for _ in range(2):
                seen = self._generation
                if seen == 0:
                    await self._load_scripts(seen)
                async with self._slots:
                    with unavailable(name.lower()):
                        try:
                            return await self._r.evalsha(self._sha[name], len(keys), *keys, *args)
                        except rex.NoScriptError:
                            pass
                await self._load_scripts(seen if seen else 1)  # the server lost its script cache
            raise StoreUnavailable(f"redis {name.lower()}: script cache keeps losing scripts")

        return await self._repeating(name, attempt)

    async def _call(self, op: str, *args: Any) -> Any:
        async def attempt() -> Any:
            if self._generation == 0:
                await self._load_scripts(0)
            async with self._slots:
                with unavailable(op.lower()):
                    return await self._r.execute_command(op, *args)

        return await self._repeating(op, attempt)

    def _tag(self, shard: int) -> str:
        return f"{self._prefix}{{p{shard}}}"

    def _pay(self, payment_id: str) -> str:
        return f"{self._tag(self.shard_of(payment_id))}:pay:{payment_id}"

    def _day(self, shard: int, day: str) -> str:
        return f"{self._tag(shard)}:day:{day}"

    def _due(self, shard: int) -> str:
        return f"{self._tag(shard)}:due"

    def _claim(self, scope: str, key: str) -> str:
        return f"{self._tag(self.claim_shard(scope, key))}:claim:{scope}:{key}"

    def _lease(self, name: str) -> str:
        """A payment's lease lives in its slot (``begin_payment`` and the last write touch it)."""
        if name.startswith(PAYMENT_LEASE):
            pid = name.removeprefix(PAYMENT_LEASE)
            return f"{self._tag(self.shard_of(pid))}:lease:{pid}"
        return self._key("lease", name)

    def _outbox(self, shard: int) -> str:
        return f"{self._tag(shard)}:outbox"

    def _limit(self, holder: str) -> str:
        return f"{self._prefix}{{l:{holder}}}"

    def _key(self, kind: str, *parts: str) -> str:
        return f"{self._prefix}{kind}:" + ":".join(parts)

    # -- lifecycle --------------------------------------------------------------------------------
    async def ping(self) -> None:
        await self._call("PING")

    async def aclose(self) -> None:
        log.info("store_round_trips", **dict(self.round_trips))
        if path := os.environ.get("QRGW_STORE_STATS_FILE"):  # bench/e2e.py: one JSON line per process
            _append_line(path, json.dumps(dict(self.round_trips)))
        with unavailable("close"):
            await self._r.aclose()

    # -- idempotency ------------------------------------------------------------------------------
    async def claim(
        self, scope: str, key: str, fingerprint: str, *, resource_id: str, ttl_s: int = 7 * 86400
    ) -> Claim:
        r = await self._eval("CLAIM", [self._claim(scope, key)], [fingerprint, resource_id, ttl_s])
        return _claim_of(r)

    async def get_claim(self, scope: str, key: str, fingerprint: str | None = None) -> Claim | None:
        r = await self._call("HMGET", self._claim(scope, key), "rid", "done", "answer", "fp")
        if r[0] is None:
            return None
        if fingerprint is not None and _s(r[3]) != fingerprint:
            return Claim(ClaimStatus.CONFLICT, _s(r[0]))
        if _s(r[1]) == "1":
            return Claim(ClaimStatus.DONE, _s(r[0]), json.loads(r[2]) if r[2] else None)
        return Claim(ClaimStatus.NEW, _s(r[0]))

    async def finish_claim(self, scope: str, key: str, answer: Mapping[str, Any]) -> None:
        await self._eval("FINISH_CLAIM", [self._claim(scope, key)], [json.dumps(dict(answer))])

    async def abandon_claim(self, scope: str, key: str) -> None:
        await self._eval("ABANDON_CLAIM", [self._claim(scope, key)], [])

    # -- payments ---------------------------------------------------------------------------------
    async def create_payment(self, record: PaymentRecord, events: Sequence[Mapping[str, Any]] = ()) -> None:
        shard = self.shard_of(record.payment_id)
        keys = [self._pay(record.payment_id), self._day(shard, record.business_day), self._due(shard),
                self._outbox(shard), self._created(shard)]
        args = [record.payment_id, record.version, record.status.value, record.model_dump_json(),
                int(has_work_left(record)), repr(due_score(record)), repr(record.created_at.timestamp()),
                *(json.dumps(dict(e)) for e in events)]
        if not await self._eval("CREATE_PAYMENT", keys, args):
            raise ConflictError(f"payment {record.payment_id} exists")

    async def begin_payment(
        self,
        scope: str,
        key: str,
        fingerprint: str,
        record: PaymentRecord,
        *,
        owner: str,
        lease_ms: int,
        claim_ttl_s: int = 7 * 86400,
    ) -> Begun:
        shard = self.shard_of(record.payment_id)
        if shard != self.claim_shard(scope, key):
            raise ValueError("begin_payment: the payment id is not in its claim's shard")
        pid = record.payment_id
        keys = [self._claim(scope, key), self._lease(payment_lease(pid)), self._pay(pid),
                self._day(shard, record.business_day), self._due(shard), self._created(shard)]
        args = [fingerprint, pid, claim_ttl_s, owner, lease_ms, record.model_dump_json(), record.status.value,
                int(has_work_left(record)), repr(due_score(record)), repr(record.created_at.timestamp())]
        claim = _claim_of(await self._eval("BEGIN_PAYMENT", keys, args))
        return Begun(claim, claim.status is ClaimStatus.NEW)

    async def discard_payment(self, scope: str, key: str, payment_id: str, owner: str) -> None:
        shard = self.shard_of(payment_id)
        keys = [self._claim(scope, key), self._lease(payment_lease(payment_id)), self._pay(payment_id),
                self._due(shard), self._created(shard)]
        await self._eval("DISCARD_PAYMENT", keys, [payment_id, owner, f"{self._tag(shard)}:day:"])

    async def get_payment(self, payment_id: str) -> PaymentRecord | None:
        raw = await self._call("HGET", self._pay(payment_id), "j")
        return None if raw is None else PaymentRecord.model_validate_json(raw)

    async def update_payment(
        self,
        record: PaymentRecord,
        *,
        expected_version: int,
        reason: str,
        events: Sequence[Mapping[str, Any]] = (),
        extra_days: Sequence[str] = (),
        finish: Finish | None = None,
    ) -> PaymentRecord:
        # The new record is composed here without reading the store; the script stores it
        # only if the stored version and status allow it (compare-and-set on the server).
        now = datetime.now(UTC)
        entry = HistoryEntry(at=now, status=record.status, stage=record.stage, reason=reason)
        new = record.model_copy(
            update={"version": expected_version + 1, "updated_at": now, "history": [*record.history, entry]}
        )
        pid = record.payment_id
        shard = self.shard_of(pid)
        # Finishing folds into this script when the claim lives in the payment's slot (payments made
        # by begin_payment); otherwise it follows as its own calls.
        folded = finish is not None and self.claim_shard(finish.scope, finish.key) == shard
        pay = self._pay(pid)
        claim_key = self._claim(finish.scope, finish.key) if folded and finish else pay
        keys = [pay, self._due(shard), self._outbox(shard), claim_key,
                self._lease(payment_lease(pid)) if folded else pay,
                *(self._day(shard, d) for d in dict.fromkeys(extra_days))]
        args = [pid, expected_version, record.status.value, new.model_dump_json(), int(has_work_left(new)),
                repr(due_score(new)), int(folded), json.dumps(dict(finish.answer)) if finish else "",
                finish.owner if finish else "", len(events), *(json.dumps(dict(e)) for e in events)]
        r = await self._eval("UPDATE_PAYMENT", keys, args)
        if r[0] == 1:
            if r[1] == -1:
                raise StaleVersion(f"payment {record.payment_id} does not exist")
            raise StaleVersion(f"payment {record.payment_id} is at version {r[1]}, not {expected_version}")
        if r[0] == 2:
            raise InvalidState(f"illegal transition {_s(r[1])} -> {record.status}")
        if finish is not None and not folded:
            await self.finish_claim(finish.scope, finish.key, finish.answer)
            await self.release_lease(payment_lease(pid), finish.owner)
        return new

    async def _over_shards(self, op: str, key_of: Any) -> list[Any]:
        return list(await asyncio.gather(*(self._call(op, key_of(s)) for s in range(self.shards))))

    async def payments_in_progress(self, limit: int = 1000) -> list[str]:
        found = await asyncio.gather(*(self._call("ZRANGE", self._due(s), 0, -1) for s in range(self.shards)))
        return sorted(_s(m) for members in found for m in members)[:limit]

    async def payments_due(self, now: datetime, limit: int = 500) -> tuple[list[str], datetime | None]:
        cut = repr(now.timestamp())
        if self._cluster:  # each shard's index lives in its own slot: one call per shard, in flight together
            found = await asyncio.gather(*(self._eval("PAYMENTS_DUE", [self._due(s)], [cut, limit])
                                           for s in range(self.shards)))
        else:  # one server: every shard's index in one call
            flat = await self._eval("PAYMENTS_DUE", [self._due(s) for s in range(self.shards)], [cut, limit])
            found = _split_due(flat)
        due: list[tuple[float, str]] = []
        later: list[float] = []
        for reply in found:
            due += [(float(_s(reply[i + 1])), _s(reply[i])) for i in range(0, len(reply) - 1, 2)]
            if _s(reply[-1]):
                later.append(float(_s(reply[-1])))
        nxt = datetime.fromtimestamp(min(later), UTC) if later else None
        return [pid for _, pid in sorted(due)[:limit]], nxt

    async def payments_of_day(self, day: str) -> list[str]:
        found = await self._over_shards("SMEMBERS", lambda s: self._day(s, day))
        return sorted(_s(m) for members in found for m in members)

    # -- nonces -----------------------------------------------------------------------------------
    async def remember_nonce(self, keyid: str, nonce: str, ttl_s: int) -> bool:
        # The value is this call's own token: a repeat after a lost reply finds its own token and
        # still answers "first time", where a real replay finds another's.
        token = secrets.token_hex(8)
        return bool(await self._eval("REMEMBER_NONCE", [self._key("nonce", keyid, nonce)], [token, ttl_s]))

    # -- quotes -----------------------------------------------------------------------------------
    async def put_quote(self, quote_id: str, data: Mapping[str, Any], ttl_s: int) -> None:
        plain = json.loads(json.dumps(dict(data)))
        # str() of each field, as the in-memory store compares, so MISMATCH means the same in both.
        fields = [x for k, v in plain.items() for x in (f"f:{k}", str(v))]
        await self._eval("PUT_HASH", [self._key("quote", quote_id)], [ttl_s, "d", json.dumps(plain), *fields])

    async def get_quote(self, quote_id: str) -> Mapping[str, Any] | None:
        raw = await self._call("HGET", self._key("quote", quote_id), "d")
        return None if raw is None else dict(json.loads(raw))

    async def consume_quote(self, quote_id: str, expect: Mapping[str, str], consumer: str) -> QuoteUse:
        args = [consumer, *(x for k, v in expect.items() for x in (k, str(v)))]
        r = await self._eval("CONSUME_QUOTE", [self._key("quote", quote_id)], args)
        status = QuoteUseStatus(_s(r[0]))
        return QuoteUse(status, json.loads(r[1]) if status is QuoteUseStatus.OK else None)

    async def restore_quote(self, quote_id: str, consumer: str) -> None:
        await self._eval("RESTORE_QUOTE", [self._key("quote", quote_id)], [consumer])

    # -- limits -----------------------------------------------------------------------------------
    async def reserve_limits(self, holder: str, reservation_id: str, items: Sequence[LimitItem]) -> Reservation:
        if len({i.counter for i in items}) != len(items):
            raise ValueError("reserve_limits: each counter at most once")
        tag = self._limit(holder)
        keys = [f"{tag}:res:{reservation_id}", *(f"{tag}:cnt:{i.counter}" for i in items)]
        args: list[Any] = [max((i.ttl_s for i in items), default=1)]
        for i in items:
            args += [i.amount, i.cap, i.ttl_s, i.counter]
        r = await self._eval("RESERVE_LIMITS", keys, args)
        used = {i.counter: int(u) for i, u in zip(items, r[2:], strict=True)}
        if r[0] == 1:
            return Reservation(True, used=used)
        return Reservation(False, denied=items[int(r[1]) - 1], used=used)

    async def release_limits(
        self,
        holder: str,
        reservation_id: str,
        amounts: Mapping[str, int] | None = None,
        *,
        release_id: str | None = None,
    ) -> None:
        tag = self._limit(holder)
        args: list[Any] = [f"{tag}:cnt:", "all" if amounts is None else "some", release_id or ""]
        for counter, amount in (amounts or {}).items():
            args += [counter, int(amount)]
        await self._eval("RELEASE_LIMITS", [f"{tag}:res:{reservation_id}"], args)

    async def limit_usage(self, holder: str, counter: str) -> int:
        raw = await self._call("GET", f"{self._limit(holder)}:cnt:{counter}")
        return 0 if raw is None else int(raw)

    # -- rate limiting ----------------------------------------------------------------------------
    async def take_token(self, bucket: str, rate_per_s: float, burst: int) -> float:
        wait = await self._eval("TAKE_TOKEN", [self._key("bucket", bucket)], [repr(float(rate_per_s)), burst])
        return float(wait)

    # -- blobs and leases -------------------------------------------------------------------------
    async def put_blob(self, key: str, value: bytes, ttl_s: int | None = None) -> None:
        expiry = () if ttl_s is None else ("EX", ttl_s)
        await self._call("SET", self._key("blob", key), bytes(value), *expiry)

    async def get_blob(self, key: str) -> bytes | None:
        raw = await self._call("GET", self._key("blob", key))
        return None if raw is None else bytes(raw)

    async def acquire_lease(self, name: str, owner: str, ttl_ms: int) -> bool:
        return bool(await self._eval("ACQUIRE_LEASE", [self._lease(name)], [owner, ttl_ms]))

    async def release_lease(self, name: str, owner: str) -> None:
        await self._eval("RELEASE_LEASE", [self._lease(name)], [owner])

    # -- settlement windows and reconciliation ----------------------------------------------------
    def _stl(self, *parts: str) -> str:
        return f"{self._prefix}{{stl}}:" + ":".join(parts)

    async def open_event_group(self, group: str) -> None:
        for shard in range(self.shards):
            await self._ensure_group(self._outbox(shard), group)

    async def get_payments(self, payment_ids: Sequence[str]) -> list[PaymentRecord | None]:
        # One pipeline per shard: its keys share a hash tag, so one node answers it on a Cluster.
        by_shard: dict[int, list[int]] = {}
        for i, pid in enumerate(payment_ids):
            by_shard.setdefault(self.shard_of(pid), []).append(i)

        async def shard(idx: list[int]) -> list[Any]:
            async with self._slots:
                with unavailable("get_payments"):
                    pipe = self._r.pipeline(transaction=False)
                    for i in idx:
                        pipe.hget(self._pay(payment_ids[i]), "j")
                    return list(await pipe.execute())

        out: list[PaymentRecord | None] = [None] * len(payment_ids)
        if self._generation == 0:
            await self._load_scripts(0)
        for idx, raws in zip(by_shard.values(), await asyncio.gather(*map(shard, by_shard.values())), strict=True):
            for i, raw in zip(idx, raws, strict=True):
                out[i] = None if raw is None else PaymentRecord.model_validate_json(raw)
        return out

    async def put_window(self, window: Mapping[str, Any], batches: Mapping[str, Mapping[str, Any]]) -> bool:
        wid = str(window["window_id"])
        partners = sorted(batches)
        keys = [self._stl("win", wid), self._stl("last"), *(self._stl("batch", wid, p) for p in partners)]
        args = [json.dumps(dict(window)), wid, *(json.dumps(dict(batches[p])) for p in partners)]
        return bool(await self._eval("PUT_WINDOW", keys, args))

    async def _stl_doc(self, key: str) -> Mapping[str, Any] | None:
        raw = await self._call("GET", key)
        return None if raw is None else dict(json.loads(raw))

    async def get_window(self, window_id: str) -> Mapping[str, Any] | None:
        return await self._stl_doc(self._stl("win", window_id))

    async def last_window(self) -> Mapping[str, Any] | None:
        last = await self._call("GET", self._stl("last"))
        return None if last is None else await self.get_window(_s(last))

    async def get_batch(self, window_id: str, partner_id: str) -> Mapping[str, Any] | None:
        return await self._stl_doc(self._stl("batch", window_id, partner_id))

    async def add_recon_exceptions(self, exceptions: Sequence[Mapping[str, Any]]) -> int:
        new = 0
        for start in range(0, len(exceptions), 500):  # bounded script arguments
            args = [x for e in exceptions[start:start + 500] for x in (str(e["exception_id"]), json.dumps(dict(e)))]
            new += int(await self._eval("ADD_RECON", [self._stl("recx")], args))
        return new

    async def recon_exceptions(self, window_id: str | None = None) -> list[Mapping[str, Any]]:
        found = await self._call("HGETALL", self._stl("recx"))
        pairs = found.items() if isinstance(found, dict) else zip(found[::2], found[1::2], strict=True)
        docs = [json.loads(v) for _k, v in sorted(pairs, key=lambda kv: _s(kv[0]))]
        return [d for d in docs if window_id is None or d["window_id"] == window_id]

    async def resolve_recon_exception(self, exception_id: str, note: str, at: str) -> Mapping[str, Any] | None:
        raw = await self._eval("RESOLVE_RECON", [self._stl("recx")], [exception_id, note, at])
        return None if raw is None else dict(json.loads(raw))

    # -- operators: payment search index and audit log (issue 19) ----------------------------------
    def _created(self, shard: int) -> str:
        return f"{self._tag(shard)}:created"

    async def recent_payments(
        self, limit: int, *, before: tuple[float, str] | None = None, since: float | None = None
    ) -> list[tuple[float, str]]:
        top = repr(before[0]) if before is not None else "+inf"
        low = repr(since) if since is not None else "-inf"
        # Inclusive top: ids sharing the cursor's exact time are cut below; the extra rows cover them.
        found = await asyncio.gather(*(
            self._call("ZREVRANGEBYSCORE", self._created(s), top, low, "WITHSCORES", "LIMIT", 0, limit + 8)
            for s in range(self.shards)
        ))
        rows = sorted(((float(score), _s(m)) for reply in found for m, score in _pairs(reply)), reverse=True)
        return [r for r in rows if before is None or r < before][:limit]

    def _audit_keys(self) -> list[str]:
        return [f"{self._prefix}{{audit}}:seen", f"{self._prefix}{{audit}}:log"]

    async def append_audit(self, entry_id: str, entry: Mapping[str, Any]) -> None:
        await self._call("EVAL", AUDIT_APPEND, 2, *self._audit_keys(), entry_id, json.dumps(dict(entry)))

    async def audit_page(self, limit: int, *, before: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        top = f"({before}" if before else "+"
        reply = await self._call("XREVRANGE", self._audit_keys()[1], top, "-", "COUNT", limit)
        out: list[tuple[str, dict[str, Any]]] = []
        for entry_id, fields in reply:
            raw = fields[b"a"] if isinstance(fields, dict) else fields[1]
            out.append((_s(entry_id), json.loads(raw)))
        return out


def _pairs(reply: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
    """ZRANGE ... WITHSCORES as (member, score), whether the client paired them or not."""
    if reply and isinstance(reply[0], (list, tuple)):
        yield from ((m, sc) for m, sc in reply)
    else:
        yield from zip(reply[::2], reply[1::2], strict=True)


# KEYS: seen hash, log stream (one slot: {audit}). ARGV: entry id, JSON. A repeat adds nothing.
AUDIT_APPEND = """
if redis.call('HSETNX', KEYS[1], ARGV[1], '1') == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'a', ARGV[2])
return 1
"""
