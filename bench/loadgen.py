"""The load generator: signed ``POST /v1/payments`` traffic from its own process.

Reads a JSON spec (``--spec``): the target ``url`` and the ``journeys``, each naming the calling
partner's key (``keyid``, ``alg``, ``private_key`` path) and a body template. Every request gets
a fresh ``payment_request_id`` and a distinct payer id, is signed with the partner's key
(PROTOCOL.md §2), and is timed. Two modes:

- closed loop (default): ``--concurrency`` workers, each sending its next request as soon as the
  previous one answered: the maximum rate the target sustains at that concurrency;
- open loop (``--rate R``): arrivals at a fixed R per second whatever the answers; latency is
  measured from the *scheduled* send time, so a stalled server cannot hide its queue.

Writes one JSON result document to ``--out``; with ``--records`` also one JSON line per request
(caller, ids, body, answer) for the soak's later checks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from gateway.signing import Signer, load_private_key, sign_request

PATH = "/v1/payments"


@dataclass(frozen=True)
class Journey:
    name: str
    partner: str
    signer: Signer
    body: dict[str, Any]


def load_journeys(spec: dict[str, Any]) -> list[Journey]:
    out = []
    for j in spec["journeys"]:
        key = load_private_key(Path(j["private_key"]), j["alg"])
        out.append(Journey(j["name"], j["partner"], Signer(j["keyid"], j["alg"], key), dict(j["body"])))
    return out


class Run:
    def __init__(self, spec: dict[str, Any], journeys: list[Journey], records: TextIO | None) -> None:
        self.url = spec["url"].rstrip("/") + PATH
        self.journeys = journeys
        self.records = records
        self.prefix = spec.get("run_id") or secrets.token_hex(4)
        self.seq = 0
        self.latencies: list[float] = []  # of 2xx answers, seconds
        self.statuses: Counter[str] = Counter()  # HTTP status or transport error
        self.errors: Counter[str] = Counter()  # problem code or transport error class
        self.payment_status: Counter[str] = Counter()  # "status" of 2xx answers
        self.by_journey: Counter[str] = Counter()
        self.overload = 0  # open loop: arrivals skipped because too many were in flight

    def next_request(self) -> tuple[Journey, str, dict[str, Any], bytes, dict[str, str]]:
        n = self.seq
        self.seq += 1
        j = self.journeys[n % len(self.journeys)]
        prid = f"{self.prefix}-{n:08d}"
        body = dict(j.body)
        payer = dict(body["payer"])
        payer["id"] = f"{payer['id']}-{self.prefix}-{n}"  # distinct payers: no per-payer limit hit
        body |= {"payment_request_id": prid, "payer": payer}
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        sign_request(j.signer, method="POST", url=self.url, headers=headers, body=raw)
        return j, prid, body, raw, headers

    async def one(self, session: aiohttp.ClientSession, t_sched: float | None = None) -> None:
        j, prid, body, raw, headers = self.next_request()
        t0 = time.perf_counter() if t_sched is None else t_sched
        status: str
        doc: dict[str, Any] = {}
        try:
            async with session.post(self.url, data=raw, headers=headers) as resp:
                data = await resp.read()
                status = str(resp.status)
                try:
                    loaded = json.loads(data) if data else {}
                    doc = loaded if isinstance(loaded, dict) else {}
                except ValueError:
                    doc = {}
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            status = f"transport:{type(exc).__name__}"
        elapsed = time.perf_counter() - t0
        self.statuses[status] += 1
        self.by_journey[j.name] += 1
        if status.startswith("2"):
            self.latencies.append(elapsed)
            self.payment_status[str(doc.get("status", "?"))] += 1
        else:
            self.errors[str(doc.get("code") or status)] += 1
        if self.records is not None:
            rec = {"journey": j.name, "partner": j.partner, "prid": prid, "body": body, "http": status,
                   "payment_id": doc.get("payment_id"), "status": doc.get("status"), "code": doc.get("code")}
            self.records.write(json.dumps(rec) + "\n")

    async def closed(self, session: aiohttp.ClientSession, concurrency: int, duration: float) -> None:
        end = time.perf_counter() + duration

        async def worker() -> None:
            while time.perf_counter() < end:
                await self.one(session)

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    async def open(self, session: aiohttp.ClientSession, rate: float, duration: float, max_inflight: int) -> None:
        start = time.perf_counter()
        tasks: set[asyncio.Task[None]] = set()
        i = 0
        while True:
            t_sched = start + i / rate
            if t_sched - start >= duration:
                break
            delay = t_sched - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            i += 1
            if len(tasks) >= max_inflight:
                self.overload += 1
                continue
            task = asyncio.create_task(self.one(session, t_sched))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)


async def main_async(args: argparse.Namespace, run: Run) -> dict[str, Any]:
    limit = max(args.concurrency, args.max_inflight if args.rate else 0)
    connector = aiohttp.TCPConnector(limit=limit, force_close=False)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            if args.rate:
                await run.open(session, args.rate, args.duration, args.max_inflight)
            else:
                await run.closed(session, args.concurrency, args.duration)
    finally:
        if run.records is not None:
            run.records.close()
    elapsed = time.perf_counter() - t0
    ok = len(run.latencies)
    return {
        "mode": "open" if args.rate else "closed",
        "rate": args.rate,
        "concurrency": args.concurrency,
        "elapsed_s": elapsed,
        "sent": run.seq,
        "ok": ok,
        "rps": ok / elapsed if elapsed else 0.0,
        "latencies_s": sorted(run.latencies),
        "statuses": dict(run.statuses),
        "errors": dict(run.errors),
        "payment_status": dict(run.payment_status),
        "by_journey": dict(run.by_journey),
        "overload": run.overload,
        "cpu_s": time.process_time() - cpu0,
        "pid": os.getpid(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--spec", required=True, help="JSON: url, run_id, journeys")
    p.add_argument("--out", required=True, help="where the JSON result goes")
    p.add_argument("--records", help="append one JSON line per request here")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--rate", type=float, default=0.0, help="open loop at this many requests/s")
    p.add_argument("--max-inflight", type=int, default=512, help="open loop: skip arrivals beyond this")
    p.add_argument("--timeout", type=float, default=10.0, help="per-request client timeout, seconds")
    args = p.parse_args()
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    spec = json.loads(Path(args.spec).read_text())
    records = open(args.records, "a", encoding="utf-8") if args.records else None
    result = asyncio.run(main_async(args, Run(spec, load_journeys(spec), records)))
    tmp = Path(args.out + ".tmp")
    tmp.write_text(json.dumps(result))
    tmp.rename(args.out)  # atomic: the parent never reads half a document


if __name__ == "__main__":
    main()
