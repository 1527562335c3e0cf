"""Real redis-server processes for tests and benches: one server, or a three-master Cluster.

Each runs on free loopback ports in its own temporary directory with persistence off
(unless asked), and is stopped (SIGTERM, then SIGKILL) on exit. ``QRGW_TEST_REDIS_URL``
(and ``QRGW_TEST_REDIS_CLUSTER_URL``) name existing servers instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.store.base import Store

REDIS_SERVER = os.environ.get("QRGW_REDIS_SERVER", "redis-server")
REDIS_CLI = os.environ.get("QRGW_REDIS_CLI", "redis-cli")


def free_port(*, with_bus: bool = False) -> int:
    """A free loopback port; ``with_bus``: port + 10000 (the cluster bus) is free too."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not with_bus:
            return port
        if port + 10000 < 65536:
            with socket.socket() as s, contextlib.suppress(OSError):
                s.bind(("127.0.0.1", port + 10000))
                return port
    raise RuntimeError("no free port")


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _cli(port: int, *args: str) -> str:
    out = subprocess.run([REDIS_CLI, "-p", str(port), *args], capture_output=True, text=True, timeout=30)
    return out.stdout + out.stderr


@dataclass
class RedisServer:
    """One redis-server child process."""

    port: int
    workdir: Path
    extra: Sequence[str] = ()
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
                "--save", "", "--appendonly", "no", "--protected-mode", "no", *self.extra]
        log = open(self.workdir / f"redis-{self.port}.log", "wb")  # the child keeps its own copy
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 10
        while not _ping(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on {self.port} did not start: "
                                   + (self.workdir / f"redis-{self.port}.log").read_text()[-500:])
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@contextlib.contextmanager
def redis_server(workdir: Path | None = None, *, extra: Sequence[str] = ()) -> Iterator[RedisServer]:
    """A private redis-server on a free port (persistence off unless ``extra`` turns it on)."""
    tmp = None if workdir is not None else tempfile.mkdtemp(prefix="qrgw-redis-")
    server = RedisServer(free_port(), Path(workdir or tmp or "."), extra)
    try:
        yield server.start()
    finally:
        server.stop()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class RedisClusterProcs:
    nodes: list[RedisServer]

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"


@contextlib.contextmanager
def redis_cluster(masters: int = 3, workdir: Path | None = None) -> Iterator[RedisClusterProcs]:
    """``masters`` cluster-enabled servers joined by ``redis-cli --cluster create`` (no replicas)."""
    tmp = None if workdir is not None else tempfile.mkdtemp(prefix="qrgw-rcluster-")
    base = Path(workdir or tmp or ".")
    nodes: list[RedisServer] = []
    try:
        for _ in range(masters):
            port = free_port(with_bus=True)
            extra = ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                     "--cluster-node-timeout", "2000"]
            nodes.append(RedisServer(port, base / str(port), extra).start())
        addrs = [f"127.0.0.1:{n.port}" for n in nodes]
        out = _cli(nodes[0].port, "--cluster", "create", *addrs, "--cluster-replicas", "0", "--cluster-yes")
        if "All 16384 slots covered" not in out:
            raise RuntimeError(f"redis-cli --cluster create failed: {out[-800:]}")
        deadline = time.monotonic() + 15
        while not all("cluster_state:ok" in _cli(n.port, "cluster", "info") for n in nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("redis cluster did not reach cluster_state:ok")
            time.sleep(0.05)
        yield RedisClusterProcs(nodes)
    finally:
        for n in nodes:
            n.stop()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


# --- the Store under test ---------------------------------------------------------------------------
class FakeClock:
    """A monotonic clock tests move by hand (for MemoryStore TTLs)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@dataclass
class StoreCase:
    """One Store implementation under the contract suite, with a way to let time pass."""

    kind: str  # memory | redis | cluster
    store: Store
    url: str | None = None
    prefix: str = ""
    clock: FakeClock | None = None

    async def advance(self, seconds: float) -> None:
        """Memory: move the fake clock. Redis: really wait (its TTLs run on the server's clock)."""
        if self.clock is not None:
            self.clock.now += seconds
        else:
            await asyncio.sleep(seconds)

    async def another(self) -> Store:
        """A second store on the same state with its own connection pool (a second process)."""
        if self.url is None:
            return self.store
        from gateway.store.redis import RedisStore

        return await RedisStore.connect(self.url, pool_size=64, timeout_s=5.0, prefix=self.prefix)


@contextlib.asynccontextmanager
async def open_case(kind: str, request: Any) -> AsyncIterator[StoreCase]:
    """Open ``kind`` for one test; Redis cases get a fresh key prefix instead of a FLUSH."""
    if kind == "memory":
        from gateway.store.memory import MemoryStore

        clock = FakeClock()
        yield StoreCase("memory", MemoryStore(clock=clock), clock=clock)
        return
    from gateway.store.redis import RedisStore

    url = request.getfixturevalue("redis_url" if kind == "redis" else "redis_cluster_url")
    prefix = f"t{uuid.uuid4().hex[:12]}:"
    store = await RedisStore.connect(url, pool_size=64, timeout_s=5.0, prefix=prefix)
    try:
        yield StoreCase(kind, store, url, prefix)
    finally:
        await store.aclose()
