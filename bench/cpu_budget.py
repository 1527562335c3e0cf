"""Where a gateway worker's CPU goes, by component: py-spy samples one ``qrgw serve`` worker on Redis
while the e2e load generator drives signed payments, and each sample's innermost frame is
attributed to a component (aiohttp server, aiohttp client, redis-py, signing, pydantic, ...).

Needs ``py-spy`` (``pip install py-spy``; it reads the worker's memory, so run as root or with
ptrace allowed). Prints the table that docs/benchmarks.md quotes: share of samples and CPU ms per
payment for each component.

Examples:
  python bench/cpu_budget.py                       # 1 worker, c=16, 15 s sampled
  python bench/cpu_budget.py --concurrency 32 --duration 20
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import _stack
from _harness import Procs, free_port, machine_line, run_bounded, start_redis, table

# First match wins: (component, pattern on the innermost frame's file path).
COMPONENTS: list[tuple[str, str]] = [
    ("redis-py (store client)", r"(^|/)redis/"),
    ("aiohttp client (partner calls, webhooks)", r"(^|/)aiohttp/(client|connector)"),
    ("aiohttp server and HTTP codec", r"(^|/)aiohttp/"),
    ("multidict/yarl (headers, URLs)", r"(^|/)(multidict|yarl|propcache)/"),
    ("cryptography (sign, verify)", r"(^|/)cryptography/"),
    ("qrgw signing (RFC 9421, Alipay+)", r"(^|/)gateway/signing/"),
    ("pydantic (models, JSON)", r"(^|/)pydantic(_core)?/"),
    ("json (stdlib)", r"(^|/)json/"),
    ("logging (structlog, stdlib)", r"(^|/)(structlog|logging)/"),
    ("metrics, tracing", r"(^|/)(prometheus_client|opentelemetry)/"),
    ("tenacity (retries)", r"(^|/)tenacity/"),
    ("event loop (uvloop/asyncio)", r"(^|/)(uvloop|asyncio)/"),
    ("qrgw payments core", r"(^|/)gateway/payments/"),
    ("qrgw store (scripts, records)", r"(^|/)gateway/store/"),
    ("qrgw webhooks, settlement", r"(^|/)gateway/(webhooks|settlement)/"),
    ("qrgw other (http edge, qr, routing, fx, adapters)", r"(^|/)(gateway|adapters|fx|schemas)/"),
]


def component(frame: str) -> str:
    path = frame[frame.rfind("(") + 1:] if "(" in frame else frame
    for name, pattern in COMPONENTS:
        if re.search(pattern, path):
            return name
    return "other (interpreter, stdlib, idle)"


def budget(raw: Path) -> Counter[str]:
    """Samples per component from py-spy's raw (collapsed stack) output."""
    out: Counter[str] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.split(";")[-1]
        out[component(leaf)] += int(count)
    return out


def run(args: argparse.Namespace, workdir: Path, procs: Procs) -> int:
    if shutil.which("py-spy") is None:
        print("cpu_budget: py-spy is not installed (pip install py-spy)", file=sys.stderr)
        return 2
    rport = free_port()
    start_redis(procs, workdir / "redis", rport, fsync="everysec")
    _, sbx = _stack.start_sandboxes(procs, workdir, store_url=f"redis://127.0.0.1:{rport}/0")
    journeys = _stack.journeys(sbx["partners"])
    (worker,) = _stack.start_gateway(procs, sbx["config"], sbx["gateway_port"], 1)
    url = f"http://127.0.0.1:{sbx['gateway_port']}"
    warm, out = _stack.run_loadgen(procs, workdir, "warm", url, journeys, concurrency=4, duration=2)
    _stack.finish_loadgen(warm, out, 60)
    cpu0 = worker.cpu()
    load, out = _stack.run_loadgen(procs, workdir, "load", url, journeys, concurrency=args.concurrency,
                                   duration=args.duration + 2)
    raw = workdir / "pyspy.txt"
    subprocess.run(["py-spy", "record", "--pid", str(worker.pid), "--duration", str(int(args.duration)),
                    "--rate", str(args.rate), "--format", "raw", "--nonblocking", "--output", str(raw)],
                   check=True, capture_output=True, timeout=args.duration + 60)
    res = _stack.finish_loadgen(load, out, args.duration + 60)
    cpu = worker.cpu() - cpu0
    paid = res["ok"]
    samples = budget(raw)
    total = sum(samples.values()) or 1
    per_payment_ms = 1000 * cpu / paid if paid else 0.0
    rows = [("machine", machine_line()),
            ("load", f"c={args.concurrency}, {paid} payments in {res['elapsed_s']:.1f} s = {res['rps']:.1f}/s; "
                     f"worker CPU {per_payment_ms:.2f} ms/payment; {total} samples")]
    for name, n in samples.most_common():
        rows.append((name, f"{100 * n / total:5.1f} %  {per_payment_ms * n / total:5.2f} ms/payment"))
    print(table("cpu budget of one gateway worker", rows), flush=True)
    return 0 if paid else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None,
                                epilog=__doc__.split("Examples:")[1] if __doc__ else None,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--concurrency", type=int, default=16, help="closed-loop in-flight requests (default 16)")
    p.add_argument("--duration", type=float, default=15.0, help="seconds sampled (default 15)")
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second (default 250)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (the raw profile)")
    args = p.parse_args(argv)
    return run_bounded("cpu_budget", 180 + 2 * args.duration, args.keep, lambda w, procs: run(args, w, procs), ())


if __name__ == "__main__":
    sys.exit(main())
