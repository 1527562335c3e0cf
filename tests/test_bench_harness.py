"""The bench harness on its own: process groups die with the run, redis keeps data across a restart
(AOF), CPU and listening sockets are read from /proc, and the floor benchmark runs end to end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import _harness  # noqa: E402


def redis_cmd(port: int, *parts: str) -> bytes:
    wire = f"*{len(parts)}\r\n" + "".join(f"${len(p)}\r\n{p}\r\n" for p in parts)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(wire.encode())
        return s.recv(256)


def test_percentiles_are_nearest_rank() -> None:
    xs = [float(i) for i in range(1, 101)]
    assert _harness.percentile(xs, 50) == 50.0
    assert _harness.percentile(xs, 99) == 99.0
    assert _harness.percentile(xs, 100) == 100.0
    assert _harness.percentile([], 99) == 0.0
    s = _harness.latency_summary([0.002, 0.001, 0.003])
    assert s["max_ms"] == pytest.approx(3.0) and s["p50_ms"] == pytest.approx(2.0)


def test_stop_all_kills_the_children_of_children(tmp_path: Path) -> None:
    procs = _harness.Procs(tmp_path)
    pidfile = tmp_path / "grandchild"
    p = procs.start("sh", ["sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"])
    _harness.wait_until(lambda: pidfile.exists() and pidfile.read_text().strip() != "", 10, "grandchild pid")
    grandchild = int(pidfile.read_text())
    assert _harness.cpu_seconds(os.getpid()) > 0
    procs.stop_all(grace=2)
    assert p.popen.poll() is not None
    time.sleep(0.1)  # the kernel reaps the orphan asynchronously
    with pytest.raises(ProcessLookupError):
        for _ in range(50):
            os.kill(grandchild, 0)
            time.sleep(0.05)


def test_redis_keeps_acknowledged_writes_across_a_kill(tmp_path: Path) -> None:
    procs = _harness.Procs(tmp_path)
    port = _harness.free_port()
    try:
        r = _harness.start_redis(procs, tmp_path / "data", port)
        assert _harness.listening(r.pid, port)
        assert redis_cmd(port, "SET", "bench-key", "42").startswith(b"+OK")
        procs.kill(r, signal.SIGKILL)
        assert not _harness.redis_ping(port)
        _harness.start_redis(procs, tmp_path / "data", port, name="redis-2")
        assert redis_cmd(port, "GET", "bench-key") == b"$2\r\n42\r\n"
    finally:
        procs.stop_all()


def test_hard_deadline_unwinds_through_finally() -> None:
    code = (f"import sys, time; sys.path.insert(0, {str(BENCH)!r}); import _harness\n"
            "_harness.hard_deadline(0.2)\n"
            "try:\n    time.sleep(5)\nexcept _harness.DeadlineExceeded:\n    print('deadline')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert out.stdout.strip() == "deadline"


def test_e2e_help_and_floor_only_run(tmp_path: Path) -> None:
    helped = subprocess.run([sys.executable, str(BENCH / "e2e.py"), "--help"], capture_output=True, text=True,
                            timeout=30)
    assert helped.returncode == 0 and "--floor-only" in helped.stdout and "--at70" in helped.stdout
    out = subprocess.run(
        [sys.executable, str(BENCH / "e2e.py"), "--floor-only", "--workers", "1", "--duration", "1.5",
         "--warmup", "0", "--concurrency", "4", "--at70", "--json-out", str(tmp_path / "r.json")],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "== e2e summary ==" in out.stdout
    lines = {line.split("|")[0].strip(): line for line in out.stdout.splitlines() if "|" in line}
    assert "/s" in lines["floor"] and "errors 0" in lines["floor"], out.stdout
    assert "floor@70%" in lines, out.stdout
    assert (tmp_path / "r.json").exists()
