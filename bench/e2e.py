"""End-to-end benchmark: the gateway against its floor, on one machine, from a clean checkout.

Starts a private redis-server (own port, temporary folder, AOF), the three sandbox partners (their
own process), N gateway workers (``qrgw serve --reuse-port``, one port), then drives signed
``POST /v1/payments`` (the three journeys, distinct payers) from a separate load-generator
process and prints payments/s, latency p50/p90/p99/max, errors by code and CPU seconds per
payment of the gateway processes. In the same run it measures the floor (``bench/floor.py``:
verify one signature, two signed loopback calls, sign the answer) under the same load generator
and prints the ratio gateway/floor. ``--at70`` also finds the maximum rate (closed loop) and runs
open loop at 70% of it to report the latency there.

Examples:
  python bench/e2e.py                                # 2 workers, 32 concurrent, 15 s per phase
  python bench/e2e.py --floor-only --duration 3      # the floor alone (no gateway, no redis)
  python bench/e2e.py --workers 2 --at70 --duration 20
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import _stack
from _harness import (
    Proc,
    Procs,
    free_port,
    latency_summary,
    machine_line,
    run_bounded,
    start_redis,
    table,
)


def measure(procs: Procs, workdir: Path, tag: str, url: str, journeys: list[dict[str, Any]],
            servers: list[Proc], args: argparse.Namespace, *, duration: float, rate: float = 0.0,
            concurrency: int | None = None) -> dict[str, Any]:
    """One load phase; CPU of ``servers`` is sampled around it."""
    cpu0 = sum(p.cpu() for p in servers)
    proc, out = _stack.run_loadgen(procs, workdir, tag, url, journeys, concurrency=concurrency or args.concurrency,
                                   duration=duration, rate=rate, timeout=args.timeout)
    res = _stack.finish_loadgen(proc, out, duration + args.timeout + 60)
    res["server_cpu_s"] = sum(p.cpu() for p in servers) - cpu0
    res["cpu_per_payment_ms"] = 1000 * res["server_cpu_s"] / res["ok"] if res["ok"] else 0.0
    res["latency"] = latency_summary(res.pop("latencies_s"))
    res["tag"] = tag
    return res


def rows(res: dict[str, Any]) -> list[tuple[str, str]]:
    lat = res["latency"]
    mode = f"open loop @ {res['rate']:.0f}/s" if res["mode"] == "open" else f"closed, c={res['concurrency']}"
    errors = ", ".join(f"{k}={v}" for k, v in sorted(res["errors"].items())) or "none"
    status = ", ".join(f"{k}={v}" for k, v in sorted(res["payment_status"].items())) or "-"
    return [
        (f"{res['tag']}: mode", f"{mode}, {res['elapsed_s']:.1f} s"),
        ("  payments/s", f"{res['rps']:.1f}  ({res['ok']} ok of {res['sent']} sent)"),
        ("  latency ms", f"p50 {lat['p50_ms']:.1f}  p90 {lat['p90_ms']:.1f}  p99 {lat['p99_ms']:.1f}  "
                         f"max {lat['max_ms']:.1f}"),
        ("  payment status", status),
        ("  errors", errors + (f", skipped arrivals={res['overload']}" if res["overload"] else "")),
        ("  server CPU/payment", f"{res['cpu_per_payment_ms']:.2f} ms  (server {res['server_cpu_s']:.1f} s, "
                                 f"loadgen {res['cpu_s']:.1f} s)"),
    ]


def phases(procs: Procs, workdir: Path, name: str, url: str, journeys: list[dict[str, Any]],
           servers: list[Proc], args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.warmup > 0:
        measure(procs, workdir, f"{name}-warmup", url, journeys, servers, args, duration=args.warmup,
                concurrency=min(4, args.concurrency))
    out = [measure(procs, workdir, name, url, journeys, servers, args, duration=args.duration)]
    print("\n".join(f"{k:<22} {v}" for k, v in rows(out[0])), flush=True)
    if args.at70 and out[0]["rps"] > 0:
        rate = 0.7 * out[0]["rps"]
        out.append(measure(procs, workdir, f"{name}@70%", url, journeys, servers, args,
                           duration=args.duration, rate=rate))
        print("\n".join(f"{k:<22} {v}" for k, v in rows(out[-1])), flush=True)
    return out


def run(args: argparse.Namespace, workdir: Path, procs: Procs) -> int:
    print(f"e2e: {machine_line()}; workers={args.workers} store={args.store} concurrency={args.concurrency} "
          f"duration={args.duration}s; logs in {workdir}", flush=True)
    results: list[dict[str, Any]] = []
    gateway_ok = True
    if args.floor_only:
        partners = _stack.partner_keys(workdir / "partner-keys")
    else:
        store_url = "memory://"
        if args.store == "redis":
            rport = free_port()
            start_redis(procs, workdir / "redis", rport)
            store_url = f"redis://127.0.0.1:{rport}/0"
        _, sbx = _stack.start_sandboxes(procs, workdir, store_url=store_url)
        partners = sbx["partners"]
        journeys = _stack.journeys(partners)
        workers = _stack.start_gateway(procs, sbx["config"], sbx["gateway_port"], args.workers)
        gw = phases(procs, workdir, "gateway", f"http://127.0.0.1:{sbx['gateway_port']}", journeys, workers, args)
        results += gw
        gateway_ok = gw[0]["ok"] > 0
        for w in workers:  # free the cores for the floor
            procs.kill(w, sig=15)
    if not args.no_floor:
        journeys = _stack.journeys(partners)
        every, url = _stack.start_floor(procs, workdir, partners, args.workers)
        # CPU of the floor servers only, as for the gateway (the responder stands for the sandboxes)
        results += phases(procs, workdir, "floor", url, journeys, every[1:], args)
    summary: list[tuple[str, str]] = [("machine", machine_line())]
    for r in results:
        lat = r["latency"]
        summary.append((r["tag"], f"{r['rps']:8.1f}/s  p50 {lat['p50_ms']:6.1f}  p90 {lat['p90_ms']:6.1f}  "
                                  f"p99 {lat['p99_ms']:6.1f}  max {lat['max_ms']:7.1f} ms  "
                                  f"cpu {r['cpu_per_payment_ms']:5.2f} ms/pay  errors {sum(r['errors'].values())}"))
    by_tag = {r["tag"]: r for r in results}
    if "gateway" in by_tag and "floor" in by_tag and by_tag["floor"]["rps"]:
        summary.append(("ratio gateway/floor", f"{by_tag['gateway']['rps'] / by_tag['floor']['rps']:.2f} "
                                               "(goal >= 0.60)"))
    if "gateway@70%" in by_tag:
        summary.append(("gateway p99 @70% max", f"{by_tag['gateway@70%']['latency']['p99_ms']:.1f} ms (goal < 50)"))
    print(table("e2e summary", summary), flush=True)
    if args.json_out:
        args.json_out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                             "results": results}, indent=1))
    if not gateway_ok:
        print("e2e: the gateway completed no payment (see the errors above and the logs)", file=sys.stderr)
        return 1
    if any(r["ok"] == 0 for r in results):
        return 1
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None,
                                epilog=__doc__.split("Examples:")[1] if __doc__ else None,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=2, help="gateway (and floor) processes on one port (default 2)")
    p.add_argument("--concurrency", type=int, default=32, help="closed-loop in-flight requests (default 32)")
    p.add_argument("--duration", type=float, default=15.0, help="seconds per measured phase (default 15)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each target (default 2)")
    p.add_argument("--timeout", type=float, default=10.0, help="client timeout per request, seconds")
    p.add_argument("--at70", action="store_true", help="also run open loop at 70%% of the measured max rate")
    p.add_argument("--floor-only", action="store_true", help="measure the floor alone (no redis, no gateway)")
    p.add_argument("--store", choices=["redis", "memory"], default="redis",
                   help="gateway store: a private redis-server (default) or each worker's own memory")
    p.add_argument("--no-floor", action="store_true", help="skip the floor")
    p.add_argument("--deadline", type=float, default=0.0,
                   help="hard wall-clock limit in seconds (default: computed from the phases)")
    p.add_argument("--json-out", type=Path, help="write every figure as JSON here")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, keys)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.floor_only and args.no_floor:
        print("e2e: --floor-only and --no-floor exclude each other", file=sys.stderr)
        return 2
    per_target = (args.warmup + args.duration * (2 if args.at70 else 1)) + 3 * args.timeout + 30
    deadline = args.deadline or 60 + per_target * (1 if args.floor_only or args.no_floor else 2)
    return run_bounded("e2e", deadline, args.keep, lambda workdir, procs: run(args, workdir, procs), ())


if __name__ == "__main__":
    sys.exit(main())
