"""The full-path bench scripts, run as a user runs them (``python bench/<x>.py`` from the repo root).

Short runs: they prove the scripts start the whole set-up (redis, sandboxes, gateway workers,
floor, load generator), finish in time and print their summaries; the soak also proves that a
worker SIGKILL and a redis restart under partner faults lose nothing. The figures are printed
(``pytest -s``), never asserted: the machine is shared.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_bench(script: str, *args: str, timeout: float = 240) -> str:
    out = subprocess.run([sys.executable, f"bench/{script}", *args], cwd=REPO, capture_output=True,
                         text=True, timeout=timeout)
    print(out.stdout)
    assert out.returncode == 0, f"{script} exited {out.returncode}\n{out.stdout}\n{out.stderr[-3000:]}"
    return out.stdout


def row(text: str, name: str) -> str:
    """The value of one ``name | value`` row of a summary table."""
    m = re.search(rf"^\s*{re.escape(name)}\s*\|\s*(.*)$", text, re.MULTILINE)
    assert m, f"no {name!r} row in:\n{text}"
    return m.group(1).strip()


def test_e2e_prints_gateway_floor_and_ratio() -> None:
    text = run_bench("e2e.py", "--workers", "1", "--duration", "2", "--warmup", "0.5", "--concurrency", "4",
                     "--at70", "--fsync", "everysec", "--single", "1", "--idle-s", "1")
    assert "== e2e summary ==" in text
    gw = "gateway[everysec]"
    for target in (gw, "floor", f"{gw}@70%", "floor@70%"):
        got = row(text, target)
        m = re.match(r"([\d.]+)/s\s+p50\s+[\d.]+\s+p90\s+[\d.]+\s+p99\s+[\d.]+\s+max\s+[\d.]+ ms\s+"
                     r"cpu\s+[\d.]+ ms/pay\s+errors (\d+)$", got)
        assert m, f"{target} row: {got!r}"
        assert float(m.group(1)) > 0 and m.group(2) == "0"  # no faults injected: every payment answered 2xx
    ratio = row(text, f"ratio {gw}/floor")
    assert re.match(r"\d+\.\d\d \(goal >= 0\.60\)$", ratio) and float(ratio.split()[0]) > 0
    assert re.match(r"[\d.]+ / [\d.]+ ms = [\d.]+x \(goal <= 1\.5x\)$", row(text, f"1-at-a-time p90 {gw}/floor"))
    # the store's own count of round trips reached the bench: the request path makes some, per payment
    trips = re.match(r"request path ([\d.]+), background ([\d.]+)", row(text, "redis RT/payment"))
    assert trips and float(trips.group(1)) > 0, text
    assert float(row(text, "idle redis cmds/s")) >= 0
    assert row(text, "machine").startswith("cores=")
    assert re.match(r"[\d.]+ ms \(goal < 50\)$", row(text, f"{gw}@70% p99"))


def test_soak_kill_and_redis_restart_lose_nothing() -> None:
    text = run_bench("soak.py", "--workers", "2", "--duration", "6", "--concurrency", "4", "--hang-s", "4",
                     "--recovery", "60", "--redis-down", "0.3", "--lease-s", "5")
    assert re.search(r"SIGKILLed gateway worker pid \d+", text)
    assert re.search(r"replacement worker pid \d+ serving", text)
    assert re.search(r"redis stopped with SIGTERM", text) and re.search(r"redis restarted \(pid \d+\)", text)
    assert "VIOLATION" not in text
    assert row(text, "violations") == "0"
    assert int(row(text, "accepted payments")) >= 1
    assert row(text, "fate unknown") == "0"
    assert row(text, "ledger violations") == "0"
    assert row(text, "webhooks received").endswith("(missing 0)")
    assert row(text, "settlement").startswith("exit 0: ")
    statuses = dict(s.split("=") for s in row(text, "final statuses").split(", "))
    assert sum(map(int, statuses.values())) == int(row(text, "accepted payments"))
    assert set(statuses) <= {"SUCCEEDED", "FAILED", "CANCELLED", "PARTIALLY_REFUNDED", "REFUNDED"}
