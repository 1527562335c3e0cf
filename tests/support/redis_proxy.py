"""A fault-injecting TCP proxy in front of a real redis-server.

It forwards bytes both ways and parses the client's RESP commands, naming each one (``EVALSHA``
is named after its script, e.g. ``BEGIN_PAYMENT``). A ``Fault`` on a name (or on any command)
acts on the Nth matching command:

* ``hold``: the command runs; its reply is held for ``seconds`` (past the client's timeout the
  reply is lost: the client sees a timeout, the server did the work);
* ``drop``: the command runs; the client's connection is closed before any reply reaches it;
* ``reset``: the connection is closed before the command reaches the server (it never runs).

redis-py sends one command at a time on a connection, so after a matched command every byte the
server sends on that connection until the client speaks again is that command's reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from dataclasses import dataclass, field

from gateway.store.redis_scripts import SCRIPTS

_BY_SHA = {hashlib.sha1(src.encode()).hexdigest(): name for name, src in SCRIPTS.items()}


@dataclass
class Fault:
    match: str  # a script name, a command name (upper case), or "*"
    action: str  # hold | drop | reset
    nth: int = 1  # act on the nth matching command (1-based) ...
    times: int = 1  # ... and on this many after it
    seconds: float = 3.0
    seen: int = 0
    fired: int = 0


@dataclass
class RedisFaultProxy:
    upstream_port: int
    port: int = 0
    faults: list[Fault] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # every command name seen, in order
    _server: asyncio.base_events.Server | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def fault(self, match: str, action: str, *, nth: int = 1, times: int = 1, seconds: float = 3.0) -> Fault:
        f = Fault(match, action, nth, times, seconds)
        self.faults.append(f)
        return f

    async def start(self) -> RedisFaultProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def _decide(self, name: str) -> Fault | None:
        for f in self.faults:
            if f.match in ("*", name):
                f.seen += 1
                if f.seen >= f.nth and f.fired < f.times:
                    f.fired += 1
                    return f
        return None

    async def _serve(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            sr, sw = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            cw.close()
            return
        hold = asyncio.Event()
        hold.set()
        state = {"delay": 0.0, "drop": False}

        async def upstream() -> None:  # server -> client
            while data := await sr.read(65536):
                if state["drop"]:
                    cw.close()
                    return
                if state["delay"]:
                    delay, state["delay"] = state["delay"], 0.0
                    await asyncio.sleep(delay)
                cw.write(data)
                await cw.drain()
            cw.close()

        pump = asyncio.create_task(upstream())
        buf = b""
        try:
            while data := await cr.read(65536):
                buf += data
                while (parsed := _command(buf)) is not None:
                    raw, args, buf = parsed
                    name = _name(args)
                    self.log.append(name)
                    f = self._decide(name)
                    if f is not None and f.action == "reset":
                        return
                    if f is not None and f.action == "hold":
                        state["delay"] = f.seconds
                    if f is not None and f.action == "drop":
                        state["drop"] = True
                    sw.write(raw)
                    await sw.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            pump.cancel()
            for w in (cw, sw):
                with contextlib.suppress(Exception):
                    w.close()


def _name(args: list[bytes]) -> str:
    if not args:
        return ""
    cmd = args[0].decode(errors="replace").upper()
    if cmd == "EVALSHA" and len(args) > 1:
        return _BY_SHA.get(args[1].decode(errors="replace"), cmd)
    return cmd


def _command(buf: bytes) -> tuple[bytes, list[bytes], bytes] | None:
    """One RESP array of bulk strings from the front of ``buf``: (its bytes, its args, the rest)."""
    if not buf.startswith(b"*"):
        end = buf.find(b"\r\n")  # an inline command (redis-cli); not sent by redis-py
        if end < 0:
            return None
        return buf[: end + 2], buf[:end].split(), buf[end + 2 :]
    end = buf.find(b"\r\n")
    if end < 0:
        return None
    n, pos, args = int(buf[1:end]), end + 2, []
    for _ in range(n):
        end = buf.find(b"\r\n", pos)
        if end < 0:
            return None
        size = int(buf[pos + 1 : end])
        start = end + 2
        if len(buf) < start + size + 2:
            return None
        args.append(buf[start : start + size])
        pos = start + size + 2
    return buf[:pos], args, buf[pos:]
