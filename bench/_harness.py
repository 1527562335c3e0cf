"""Shared machinery of the bench scripts: child processes, ports, redis, CPU, latency stats.

Every process a bench script starts goes through ``Procs``: each child leads its own process
group (so its own children die with it), is stopped on exit (try/finally, ``atexit`` and
SIGTERM/SIGINT/SIGALRM), and its output goes to a log file in the run's temporary folder,
never to a pipe nobody drains. ``hard_deadline`` bounds a whole run in wall-clock time.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")


class DeadlineExceeded(Exception):
    """The run's hard deadline passed."""


class Stopped(Exception):
    """SIGTERM or SIGINT arrived."""


# --- ports and readiness ---------------------------------------------------------------------------
def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _listen_inodes(port: int) -> set[str]:
    """Socket inodes listening on ``port`` (IPv4 and IPv6), from /proc/net/tcp*."""
    out: set[str] = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                out.add(parts[9])
    return out


def listening(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a socket listening on ``port`` (works with SO_REUSEPORT,
    where polling the shared port cannot tell which worker answered)."""
    inodes = _listen_inodes(port)
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False


def wait_until(check: Any, timeout: float, what: str, procs: Sequence[Proc] = ()) -> None:
    """Poll ``check()`` until true; fail early (with the log tail) if a watched process died."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for p in procs:
            if p.popen.poll() is not None:
                raise RuntimeError(f"{p.name} exited with {p.popen.returncode} while waiting for {what}:\n"
                                   + p.tail())
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


def wait_file(path: Path, timeout: float, procs: Sequence[Proc] = ()) -> dict[str, Any]:
    wait_until(lambda: path.exists() and path.stat().st_size > 0, timeout, f"{path.name}", procs)
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


# --- processes -------------------------------------------------------------------------------------
@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    cpu_at_exit: float = 0.0  # CPU seconds, sampled just before we killed it

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def cpu(self) -> float:
        return cpu_seconds(self.pid) if self.alive() else self.cpu_at_exit

    def tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@dataclass
class Procs:
    """Every child of a run; ``stop_all`` is idempotent and runs on any exit path."""

    logdir: Path
    children: list[Proc] = field(default_factory=list)

    def __post_init__(self) -> None:
        atexit.register(self.stop_all)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Proc:
        log = self.logdir / f"{name}.log"
        fh = open(log, "ab")
        try:
            popen = subprocess.Popen(
                list(argv), stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=REPO, env={**os.environ, **(env or {})}, start_new_session=True,
            )
        finally:
            fh.close()
        proc = Proc(name, popen, log)
        self.children.append(proc)
        return proc

    def kill(self, proc: Proc, sig: int = signal.SIGKILL, wait: float = 10.0) -> None:
        """Signal one child's whole process group and reap it."""
        if proc.alive():
            proc.cpu_at_exit = cpu_seconds(proc.pid)
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        try:
            proc.popen.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.popen.wait(timeout=5)

    def pause(self, proc: Proc, frozen: bool) -> None:
        """Freeze (SIGSTOP) or thaw (SIGCONT) one child's process group; it stays ours to reap."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def stop_all(self, grace: float = 5.0) -> None:
        live = [p for p in self.children if p.alive()]
        for p in live:
            p.cpu_at_exit = cpu_seconds(p.pid)
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        end = time.monotonic() + grace
        for p in live:
            try:
                p.popen.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in self.children:
            try:  # the group too: a child's own children must not outlive the run
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if p.popen.poll() is None:
                p.popen.wait(timeout=5)


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signal.Signals(signum).name)


def _raise_deadline(signum: int, frame: FrameType | None) -> None:
    raise DeadlineExceeded("hard deadline reached")


def hard_deadline(seconds: float) -> None:
    """Raise ``DeadlineExceeded`` in the main thread after ``seconds``; SIGTERM/SIGINT raise
    ``Stopped``. Either unwinds through the caller's ``finally`` that stops the children."""
    signal.signal(signal.SIGALRM, _raise_deadline)
    signal.signal(signal.SIGTERM, _raise_stopped)
    signal.signal(signal.SIGINT, _raise_stopped)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def run_bounded(name: str, deadline: float, keep: bool, body: Callable[[Path, Procs], int],
                errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run ``body(workdir, procs)`` under a hard deadline; whatever happens, stop every child
    process and (unless ``keep``) remove the temporary folder. Aborts print one line, exit 1."""
    workdir = Path(tempfile.mkdtemp(prefix=f"qrgw-{name}-"))
    procs = Procs(workdir)
    aborts: tuple[type[BaseException], ...] = (DeadlineExceeded, Stopped, RuntimeError, *errors)
    t0 = time.monotonic()
    hard_deadline(deadline)
    try:
        return body(workdir, procs)
    except aborts as exc:
        print(f"{name}: aborted after {time.monotonic() - t0:.0f}s: {exc}", file=sys.stderr)
        return 1
    finally:
        hard_deadline(0)
        procs.stop_all()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat (psutil is not a dependency)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2:].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# --- redis -----------------------------------------------------------------------------------------
def redis_command(port: int, *args: str, timeout: float = 5.0) -> str:
    """One command to a local redis-server over RESP; the reply's text (bulk or status)."""
    wire = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(wire.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            data += chunk
            if not chunk or (data.startswith((b"+", b"-", b":")) and data.endswith(b"\r\n")):
                break
            if data.startswith(b"$"):
                head, _, rest = data.partition(b"\r\n")
                if int(head[1:]) < 0 or len(rest) >= int(head[1:]) + 2:
                    break
    return data.decode(errors="replace")


def redis_commands_processed(port: int) -> int:
    """INFO stats total_commands_processed: every command a client sent (a script counts once)."""
    for line in redis_command(port, "INFO", "stats").splitlines():
        if line.startswith("total_commands_processed:"):
            return int(line.split(":", 1)[1])
    return 0


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB (0 when gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def redis_ping(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(procs: Procs, datadir: Path, port: int, *, name: str = "redis", fsync: str = "always") -> Proc:
    """A private redis-server on loopback: own port, own folder, AOF with fsync on every write by
    default (so a restart, even after SIGKILL, keeps everything acknowledged)."""
    datadir.mkdir(parents=True, exist_ok=True)
    argv = [
        os.environ.get("QRGW_REDIS_SERVER", "redis-server"), "--port", str(port), "--bind", "127.0.0.1",
        "--dir", str(datadir), "--appendonly", "yes", "--appendfsync", fsync, "--save", "",
        "--daemonize", "no", "--protected-mode", "yes", "--logfile", "",
    ]
    proc = procs.start(name, argv)
    wait_until(lambda: redis_ping(port), 15, f"redis-server on port {port}", [proc])
    return proc


# --- statistics and output -------------------------------------------------------------------------
def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0 when empty)."""
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return float(sorted_values[k])


def latency_summary(latencies_s: Iterable[float]) -> dict[str, float]:
    xs = sorted(latencies_s)
    return {
        "n": float(len(xs)),
        "p50_ms": percentile(xs, 50) * 1000,
        "p90_ms": percentile(xs, 90) * 1000,
        "p99_ms": percentile(xs, 99) * 1000,
        "max_ms": (xs[-1] * 1000) if xs else 0.0,
    }


def table(title: str, rows: Sequence[tuple[str, str]]) -> str:
    width = max([len(k) for k, _ in rows] + [10])
    line = "-" * (width + 3 + max([len(v) for _, v in rows] + [10]))
    out = [f"== {title} ==", line]
    out += [f"{k:<{width}} | {v}" for k, v in rows]
    out.append(line)
    return "\n".join(out)


def machine_line() -> str:
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    return f"cores={os.cpu_count()} loadavg(1,5,15)={load} python={sys.version.split()[0]}"
