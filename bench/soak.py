"""Fault soak: the e2e set-up under faults for a bounded time, then proof that nothing was lost.

Starts a private redis-server (AOF, fsync always), the sandbox partners and N gateway workers,
then drives signed payments (the three journeys) while the sandboxes inject timeouts, 5xx, ``U``
and dropped connections at the given rates; one gateway worker is SIGKILLed and replaced,
redis is frozen in short bursts (SIGSTOP/SIGCONT: replies to writes that happened are lost, the
case of a double charge in issue 15), and redis is restarted once. Afterwards the faults stop
and the soak waits for recovery: every lost answer is re-sent (same ``payment_request_id``:
idempotent) and every accepted payment inquired until final. Then it checks, and exits 1 on any violation:

- every accepted payment is final;
- the sandboxes' ledgers agree with the gateway: a SUCCEEDED payment debited the payer and
  credited the merchant, a FAILED one left both untouched (or reversed), no payer debited
  without the merchant credited (or vice versa), no payment debited twice, no money moved for a
  payment no caller knows of;
- every final payment's webhook event reached each partner on its route;
- ``qrgw settle --check`` passes (when that command exists).

Examples:
  python bench/soak.py                               # 30 s of faults, 2 workers
  python bench/soak.py --duration 60 --rates timeout=0.05,5xx=0.05,U=0.05,drop=0.05
  python bench/soak.py --redis-signal KILL           # redis killed, not stopped, mid-run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import _stack
import httpx
from _harness import (
    PY,
    REPO,
    Proc,
    Procs,
    free_port,
    machine_line,
    run_bounded,
    start_redis,
    table,
)
from _soakcheck import FINAL, Recovery, verify, webhooks_missing

from gateway.config import load_settings


def parse_rates(text: str) -> dict[str, float]:
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        spec, _, rate = part.rpartition("=")
        if not spec:
            raise argparse.ArgumentTypeError(f"{part!r}: expected FAULT=RATE, e.g. timeout=0.02")
        out[spec] = float(rate)
    return out


def log(t0: float, msg: str) -> None:
    print(f"[{time.monotonic() - t0:6.1f}s] {msg}", flush=True)


def faults(control: str, doc: dict[str, Any]) -> None:
    httpx.post(f"{control}/faults", json=doc, timeout=10).raise_for_status()


def state(control: str) -> dict[str, Any]:
    doc: dict[str, Any] = httpx.get(f"{control}/state", timeout=30).json()
    return doc


def settle_check(config: str) -> tuple[str, bool]:
    """``qrgw settle --check`` against the same store; (what it said, passed)."""
    if not (REPO / "gateway" / "cli" / "settle.py").exists():
        return "n/a (qrgw settle not built yet)", True
    out = subprocess.run([PY, "-m", "gateway.cli", "settle", "--check", "--config", config], cwd=REPO,
                         capture_output=True, text=True, timeout=120, env=_stack.quiet_env())
    said = (out.stdout.strip().splitlines() or out.stderr.strip().splitlines() or ["(no output)"])[-1]
    return f"exit {out.returncode}: {said}", out.returncode == 0


def disturb(procs: Procs, args: argparse.Namespace, t0: float, loadgen: Proc, workers: list[Proc],
            redis: Proc, redis_port: int, workdir: Path, config: str, gw_port: int) -> tuple[list[Proc], Proc]:
    """The scheduled accidents, while the load runs: redis stalls, a worker SIGKILLed, redis restarted."""
    plan = []
    for i in range(args.redis_stalls):  # spread over the run, between the other accidents
        plan.append((args.duration * (0.15 + 0.7 * i / max(1, args.redis_stalls)), "stall-redis"))
    if not args.no_worker_kill:
        plan.append((args.duration * 0.3, "kill-worker"))
    if not args.no_redis_restart:
        plan.append((args.duration * 0.55, "restart-redis"))
    start = time.monotonic()
    for at, what in sorted(plan):
        while time.monotonic() - start < at and loadgen.alive():
            time.sleep(0.1)
        if what == "stall-redis":
            procs.pause(redis, True)
            time.sleep(args.stall_s)
            procs.pause(redis, False)
            log(t0, f"redis frozen for {args.stall_s}s (SIGSTOP/SIGCONT)")
        elif what == "kill-worker":
            victim = workers[0]
            procs.kill(victim, signal.SIGKILL)
            log(t0, f"SIGKILLed gateway worker pid {victim.pid}")
            fresh = _stack.start_worker(procs, config, gw_port, f"gateway-r{len(workers)}")
            workers = [*workers[1:], fresh]
            _stack.wait_workers([fresh], gw_port)
            log(t0, f"replacement worker pid {fresh.pid} serving")
        else:
            sig = signal.SIGKILL if args.redis_signal == "KILL" else signal.SIGTERM
            procs.kill(redis, sig)
            log(t0, f"redis stopped with SIG{args.redis_signal}; down for {args.redis_down}s")
            time.sleep(args.redis_down)
            redis = start_redis(procs, workdir / "redis", redis_port, name="redis-2")
            log(t0, f"redis restarted (pid {redis.pid}) from its AOF")
    return workers, redis


def run(args: argparse.Namespace, workdir: Path, procs: Procs) -> int:
    t0 = time.monotonic()
    print(f"soak: {machine_line()}; workers={args.workers} concurrency={args.concurrency} "
          f"duration={args.duration}s rates={args.rates}; logs in {workdir}", flush=True)
    redis_port = free_port()
    redis = start_redis(procs, workdir / "redis", redis_port)
    _, sbx = _stack.start_sandboxes(procs, workdir, store_url=f"redis://127.0.0.1:{redis_port}/0",
                                    hang_s=args.hang_s, seed=args.seed)
    config, gw_port, control = sbx["config"], sbx["gateway_port"], sbx["control"]
    if args.lease_s:
        _stack.set_config(config, "payments", lease_s=args.lease_s)
    url = f"http://127.0.0.1:{gw_port}"
    workers = _stack.start_gateway(procs, config, gw_port, args.workers)
    journeys = _stack.journeys(sbx["partners"])
    records = workdir / "records.jsonl"
    log(t0, f"{args.workers} workers up on {url}; faults on")
    faults(control, {"clear": True, "seed": args.seed, "rates": {"*": args.rates}})
    loadgen, out = _stack.run_loadgen(procs, workdir, "soak", url, journeys, concurrency=args.concurrency,
                                      duration=args.duration, timeout=args.timeout, records=records)
    workers, redis = disturb(procs, args, t0, loadgen, workers, redis, redis_port, workdir, config, gw_port)
    load = _stack.finish_loadgen(loadgen, out, args.duration + args.timeout + 60)
    faults(control, {"clear": True})
    log(t0, f"load done: {load['sent']} sent, {load['ok']} answered 2xx; faults off; recovering")

    # A repeat of a request still being processed is answered within the gateway's own request
    # timeout (it waits for the first one); a shorter client timeout would only start it over.
    recovery = Recovery(url, sbx["partners"], timeout_s=load_settings(config).server.request_timeout_s + 5)
    lines = [json.loads(x) for x in records.read_text().splitlines() if x.strip()]
    until = time.monotonic() + args.recovery
    asyncio.run(recovery.settle_requests(lines, until))
    log(t0, f"every request's fate known ({recovery.fate.resent} re-sent)")
    asyncio.run(recovery.until_final(until))
    fate = recovery.fate
    log(t0, f"{sum(p.status in FINAL for p in fate.accepted.values())} of {len(fate.accepted)} payments final")
    snap = state(control)
    while not args.no_webhooks and webhooks_missing(fate, snap) and time.monotonic() < until:
        time.sleep(1.0)
        snap = state(control)
    log(t0, "recovery window over; checking")
    counts, bad = verify(fate, snap, webhooks=not args.no_webhooks)
    settle_said, settle_ok = ("skipped (--no-settlement)", True) if args.no_settlement else settle_check(config)
    if not settle_ok:
        bad.append(f"settlement: {settle_said}")
    injected: Counter[str] = Counter()
    for per in snap["injected"].values():
        injected.update(per)
    summary = [
        ("machine", machine_line()),
        ("requests sent", f"{load['sent']} ({load['ok']} 2xx during the run, {fate.resent} re-sent after)"),
        ("accepted payments", str(len(fate.accepted))),
        ("final statuses", ", ".join(f"{k[7:]}={v}" for k, v in sorted(counts.items()) if k.startswith("status "))
         or "-"),
        ("rejected (4xx)", ", ".join(f"{k}={v}" for k, v in sorted(fate.rejected.items())) or "none"),
        ("fate unknown", str(fate.unresolved)),
        ("faults injected", ", ".join(f"{k}={v}" for k, v in sorted(injected.items())) or "none"),
        ("run errors by code", ", ".join(f"{k}={v}" for k, v in sorted(load["errors"].items())) or "none"),
        ("ledger payments", str(counts.get("ledger payments", 0))),
        ("ledger violations", str(counts.get("ledger violations", 0))),
        ("webhooks received", f"{counts.get('webhooks received', 0)}"
         + ("" if args.no_webhooks else f" (missing {counts.get('webhooks missing', 0)})")),
        ("settlement", settle_said),
        ("violations", str(len(bad) + fate.unresolved)),
    ]
    for b in bad[:20]:
        print(f"VIOLATION {b}")
    if len(bad) > 20:
        print(f"... and {len(bad) - 20} more violations")
    print(table("soak summary", summary), flush=True)
    if not fate.accepted:
        print("soak: no payment was accepted at all (is POST /v1/payments served?)", file=sys.stderr)
        return 1
    return 1 if bad or fate.unresolved else 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None,
                                epilog=__doc__.split("Examples:")[1] if __doc__ else None,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=2, help="gateway processes on one port (default 2)")
    p.add_argument("--concurrency", type=int, default=8, help="in-flight requests (default 8)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of load under faults (default 30)")
    p.add_argument("--rates", type=parse_rates, default=parse_rates("timeout=0.02,5xx=0.02,U=0.02,drop=0.02"),
                   help="sandbox faults per call, FAULT=RATE,... (default timeout=0.02,5xx=0.02,U=0.02,drop=0.02)")
    p.add_argument("--hang-s", type=float, default=5.0, help="how long an injected timeout hangs (default 5)")
    p.add_argument("--timeout", type=float, default=15.0, help="client timeout per request, seconds")
    p.add_argument("--recovery", type=float, default=90.0, help="seconds allowed for recovery (default 90)")
    p.add_argument("--redis-signal", choices=["TERM", "KILL"], default="TERM", help="how redis is stopped")
    p.add_argument("--redis-down", type=float, default=1.0, help="seconds redis stays down (default 1)")
    p.add_argument("--lease-s", type=float, default=0.0,
                   help="the gateway's [payments] lease_s: how soon a killed worker's payments resume "
                        "(default: the config's, 30 s)")
    p.add_argument("--redis-stalls", type=int, default=3,
                   help="times redis is frozen (SIGSTOP, then SIGCONT) during the run (default 3)")
    p.add_argument("--stall-s", type=float, default=2.6,
                   help="seconds each freeze lasts: longer than the store's socket timeout (default 2.6)")
    p.add_argument("--no-worker-kill", action="store_true", help="do not SIGKILL a worker")
    p.add_argument("--no-redis-restart", action="store_true", help="do not restart redis")
    p.add_argument("--no-webhooks", action="store_true", help="do not check webhook delivery")
    p.add_argument("--no-settlement", action="store_true", help="do not run qrgw settle --check")
    p.add_argument("--seed", type=int, default=1, help="seed of the sandboxes' fault dice")
    p.add_argument("--deadline", type=float, default=0.0, help="hard wall-clock limit (default: computed)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, keys, records)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    deadline = (args.deadline or 120 + args.duration + args.timeout + args.recovery + 2 * args.redis_down
                + args.redis_stalls * args.stall_s)
    return run_bounded("soak", deadline, args.keep, lambda workdir, procs: run(args, workdir, procs),
                       (httpx.HTTPError,))


if __name__ == "__main__":
    sys.exit(main())
