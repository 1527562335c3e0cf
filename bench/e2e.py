"""End-to-end benchmark: the gateway against its floor, on one machine, from a clean checkout.

Starts a private redis-server (own port, temporary folder, AOF), the three sandbox partners (their
own process), N gateway workers (``qrgw serve --reuse-port``, one port), then drives signed
``POST /v1/payments`` (the three journeys, distinct payers) from a separate load-generator
process and prints payments/s, latency p50/p90/p99/max, errors by code and CPU seconds per
payment of the gateway processes; Redis round trips per payment (the request path and the
background tasks separately, counted by the workers' own store and logged when they stop), the
Redis commands per second of the idle gateway, and the workers' RSS. The gateway runs once per
Redis fsync policy (``--fsync``: ``appendfsync everysec``, then ``always``, by default).
In the same run it measures the floor (``bench/floor.py``:
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
import time
from pathlib import Path
from typing import Any

import _stack
from _harness import (
    Proc,
    Procs,
    free_port,
    latency_summary,
    machine_line,
    redis_command,
    redis_commands_processed,
    rss_mb,
    run_bounded,
    start_redis,
    table,
)


def measure(procs: Procs, workdir: Path, tag: str, url: str, journeys: list[dict[str, Any]],
            servers: list[Proc], args: argparse.Namespace, *, duration: float, rate: float = 0.0,
            concurrency: int | None = None) -> dict[str, Any]:
    """One load phase; CPU of ``servers`` is sampled around it."""
    cpu0 = sum(p.cpu() for p in servers)
    rport = getattr(args, "_redis_port", None)
    cmds0 = redis_commands_processed(rport) if rport else 0
    proc, out = _stack.run_loadgen(procs, workdir, tag, url, journeys, concurrency=concurrency or args.concurrency,
                                   duration=duration, rate=rate, timeout=args.timeout)
    res = _stack.finish_loadgen(proc, out, duration + args.timeout + 60)
    res["server_cpu_s"] = sum(p.cpu() for p in servers) - cpu0
    if rport:
        res["redis_cmds_per_payment"] = (redis_commands_processed(rport) - cmds0) / res["ok"] if res["ok"] else None
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
    args._warm_ok = 0
    if args.warmup > 0:
        warm = measure(procs, workdir, f"{name}-warmup", url, journeys, servers, args, duration=args.warmup,
                       concurrency=min(4, args.concurrency))
        args._warm_ok = warm["ok"]
    out = [measure(procs, workdir, name, url, journeys, servers, args, duration=args.duration)]
    print("\n".join(f"{k:<22} {v}" for k, v in rows(out[0])), flush=True)
    if args.single > 0:  # one payment at a time: the latency of the path itself, no queueing
        one = measure(procs, workdir, f"{name}-1", url, journeys, servers, args, duration=args.single, concurrency=1)
        out[0]["single"] = one["latency"]
        args._warm_ok += one["ok"]
        lat = one["latency"]
        print(f"{'  one at a time ms':<22} p50 {lat['p50_ms']:.1f}  p90 {lat['p90_ms']:.1f}  p99 {lat['p99_ms']:.1f}",
              flush=True)
    if args.at70 and out[0]["rps"] > 0:
        rate = 0.7 * out[0]["rps"]
        out.append(measure(procs, workdir, f"{name}@70%", url, journeys, servers, args,
                           duration=args.duration, rate=rate))
        print("\n".join(f"{k:<22} {v}" for k, v in rows(out[-1])), flush=True)
    return out


def idle_rate(redis_port: int, seconds: float) -> float:
    """Redis commands per second while the gateway is up and nobody pays (its background tasks)."""
    c0, t0 = redis_commands_processed(redis_port), time.monotonic()
    time.sleep(seconds)
    return (redis_commands_processed(redis_port) - c0 - 1) / (time.monotonic() - t0)  # -1: our own INFO


def round_trips(stats: Path) -> dict[str, int]:
    """Store round trips by purpose, summed over the JSON lines stopped workers appended to ``stats``
    (``QRGW_STORE_STATS_FILE``: each RedisStore writes its counts when it closes)."""
    out: dict[str, int] = {}
    lines = stats.read_text().splitlines() if stats.exists() else []
    for line in lines:
        for k, v in json.loads(line).items():
            out[k] = out.get(k, 0) + int(v)
    return out


def gateway_run(procs: Procs, workdir: Path, sbx: dict[str, Any], journeys: list[dict[str, Any]],
                args: argparse.Namespace, redis_port: int | None, fsync: str) -> list[dict[str, Any]]:
    """Workers started afresh for one fsync policy: idle cost, the load phases, RSS, round trips."""
    if redis_port is not None:
        redis_command(redis_port, "CONFIG", "SET", "appendfsync", fsync)
    name = f"gateway[{fsync}]" if redis_port is not None else "gateway"
    stats = workdir / f"store-stats-{fsync}.jsonl"
    workers = _stack.start_gateway(procs, sbx["config"], sbx["gateway_port"], args.workers,
                                   env={"QRGW_STORE_STATS_FILE": str(stats)})
    idle = idle_rate(redis_port, args.idle_s) if redis_port is not None and args.idle_s > 0 else None
    rss0 = [rss_mb(w.pid) for w in workers]
    out = phases(procs, workdir, name, f"http://127.0.0.1:{sbx['gateway_port']}", journeys, workers, args)
    rss1 = [rss_mb(w.pid) for w in workers]
    for w in workers:  # SIGTERM: a clean stop logs the store's round trips (and frees the cores)
        procs.kill(w, sig=15)
    trips = round_trips(stats)
    paid = sum(r["ok"] for r in out) + getattr(args, "_warm_ok", 0)
    out[0]["extra"] = {
        "idle_cmds_per_s": idle,
        "rss_mb_start": max(rss0, default=0.0),
        "rss_mb_end": max(rss1, default=0.0),
        "round_trips_request_per_payment": trips.get("request", 0) / paid if paid else None,
        "round_trips_background_per_payment": trips.get("background", 0) / paid if paid else None,
        "redis_cmds_per_payment": out[0].get("redis_cmds_per_payment"),
    }
    print("\n".join(f"{k:<22} {v}" for k, v in extra_rows(out[0]["extra"])), flush=True)
    return out


def extra_rows(x: dict[str, Any]) -> list[tuple[str, str]]:
    def f(v: float | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    return [
        ("  redis RT/payment", f"request path {f(x['round_trips_request_per_payment'], '.2f')}, background "
                               f"{f(x['round_trips_background_per_payment'], '.2f')} (commands Redis ran, scripts' "
                               f"inner ones included: {f(x['redis_cmds_per_payment'], '.2f')})"),
        ("  idle redis cmds/s", f(x["idle_cmds_per_s"], ".2f")),
        ("  worker RSS MiB", f"{x['rss_mb_start']:.0f} at start, {x['rss_mb_end']:.0f} at end (max of workers)"),
    ]


def run(args: argparse.Namespace, workdir: Path, procs: Procs) -> int:
    print(f"e2e: {machine_line()}; workers={args.workers} store={args.store} concurrency={args.concurrency} "
          f"duration={args.duration}s; logs in {workdir}", flush=True)
    results: list[dict[str, Any]] = []
    gateway_ok = True
    if args.floor_only:
        partners = _stack.partner_keys(workdir / "partner-keys")
    else:
        store_url = "memory://"
        rport: int | None = None
        if args.store == "redis":
            rport = free_port()
            start_redis(procs, workdir / "redis", rport, fsync="everysec")
            store_url = f"redis://127.0.0.1:{rport}/0"
            args._redis_port = rport
        _, sbx = _stack.start_sandboxes(procs, workdir, store_url=store_url)
        partners = sbx["partners"]
        journeys = _stack.journeys(partners)
        modes = ["everysec", "always"] if args.fsync == "both" else [args.fsync]
        for mode in modes if rport is not None else ["-"]:
            gw = gateway_run(procs, workdir, sbx, journeys, args, rport, mode)
            results += gw
            gateway_ok = gateway_ok and gw[0]["ok"] > 0
        args._redis_port = None
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
        if "extra" in r:
            summary += [(f"  {k.strip()}", v) for k, v in extra_rows(r["extra"])]
    by_tag = {r["tag"]: r for r in results}
    floor = by_tag.get("floor")
    for r in results:
        if not r["tag"].startswith("gateway") or "@" in r["tag"] or not floor or not floor["rps"]:
            continue
        summary.append((f"ratio {r['tag']}/floor", f"{r['rps'] / floor['rps']:.2f} (goal >= 0.60)"))
        if args.single and "single" in r:
            g, fl = r["single"]["p90_ms"], floor.get("single", {}).get("p90_ms")
            if fl:
                summary.append((f"1-at-a-time p90 {r['tag']}/floor", f"{g:.1f} / {fl:.1f} ms = {g / fl:.2f}x "
                                                                     "(goal <= 1.5x)"))
    for r in results:
        if r["tag"].endswith("@70%"):
            summary.append((f"{r['tag']} p99", f"{r['latency']['p99_ms']:.1f} ms (goal < 50)"))
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
    p.add_argument("--fsync", choices=["everysec", "always", "both"], default="both",
                   help="Redis appendfsync policy for the gateway phase(s) (default both: everysec, then always)")
    p.add_argument("--idle-s", type=float, default=5.0,
                   help="seconds the idle gateway's Redis commands are counted before the load (default 5)")
    p.add_argument("--single", type=float, default=5.0,
                   help="seconds of one-payment-at-a-time load after each closed-loop phase (default 5; 0: none)")
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
    per_target = (args.warmup + args.single + args.idle_s + args.duration * (2 if args.at70 else 1)
                  + 3 * args.timeout + 30) * (2 if args.fsync == "both" else 1)
    deadline = args.deadline or 60 + per_target * (1 if args.floor_only or args.no_floor else 2)
    return run_bounded("e2e", deadline, args.keep, lambda workdir, procs: run(args, workdir, procs), ())


if __name__ == "__main__":
    sys.exit(main())
