"""One partner call's latency and CPU through the outbound layer, against a loopback sandbox.

The sandbox partners run in their own process (``bench/sandboxes.py``), so the CPU measured here
is the caller's alone. Three paths, each a signed ``POST /qrgw/v1/debits`` to the qrgw-family
sandbox with its answer's signature verified:

- ``adapter``: ``QrgwAdapter.pay`` through ``adapters.http.OutboundHttp`` (aiohttp), the gateway's path;
- ``aiohttp``: ``OutboundHttp.call`` alone (signing + transport + verification);
- ``one shared session``: the same on one ``ClientSession`` for all partners (the alternative design);
- ``httpx``: the same call on a pooled ``httpx.AsyncClient`` with ``QrgwAuth`` (the old layer).

Each runs one call at a time (p50/p99 latency, CPU per call) and then ``--concurrency`` calls
in flight (CPU per call: httpcore polls every idle pooled connection per request).

    python bench/partner_call.py [--calls 2000] [--concurrency 32] [--loop uvloop|asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx
from _harness import Procs, run_bounded
from _stack import start_sandboxes
from yarl import URL

from adapters.endpoint import PartnerEndpoint
from adapters.http import OutboundHttp
from adapters.qrgw import QrgwAdapter
from gateway.config import load_settings
from gateway.keys import registry_from_settings
from gateway.logging import configure_logging
from gateway.loop import new_event_loop
from gateway.signing import KeyRegistry, QrgwAuth, QrgwCallAuth
from gateway.testing.sandboxes import debit_request
from schemas.money import MoneyModel

PARTNER = "openwallet-sg"
PATH = "/qrgw/v1/debits"


def debit_body() -> bytes:
    did = f"bench-{uuid.uuid4().hex}"
    doc = {"debit_id": did, "payment_id": did, "payer": {"id": "sg-user-1"},
           "amount": {"currency": "SGD", "value": "1"}, "merchant_amount": {"currency": "SGD", "value": "1"},
           "quote": None, "merchant": {"name": "BENCH", "city": "SINGAPORE", "country": "SG"}}
    return json.dumps(doc, separators=(",", ":")).encode()


async def measure(call: Callable[[], Awaitable[int]], calls: int, concurrency: int) -> dict[str, float]:
    for _ in range(50):  # warm pools, caches and the sandbox
        await call()
    lat: list[float] = []
    cpu0 = time.process_time()
    for _ in range(calls):
        t = time.perf_counter()
        status = await call()
        lat.append(time.perf_counter() - t)
        assert status < 300, status
    cpu_seq = (time.process_time() - cpu0) / calls
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            await call()

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(calls)))
    cpu_conc, wall = (time.process_time() - cpu0) / calls, time.perf_counter() - t0
    q = statistics.quantiles(lat, n=100)
    return {"p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000, "cpu_ms": cpu_seq * 1000,
            f"cpu_ms_at_{concurrency}": cpu_conc * 1000, f"calls_per_s_at_{concurrency}": calls / wall}


async def bench(config: str, calls: int, concurrency: int) -> dict[str, dict[str, float]]:
    settings = load_settings(Path(config))
    registry: KeyRegistry = registry_from_settings(settings)
    p = next(p for p in settings.partners if p.id == PARTNER)
    ep = PartnerEndpoint.from_settings(p.model_dump(), sandbox=True)
    out: dict[str, dict[str, float]] = {}
    http = OutboundHttp()
    try:
        adapter = QrgwAdapter(ep, registry, http)

        async def via_adapter() -> int:
            req = debit_request(payer="sg-user-1", amount=MoneyModel.of("SGD", 1))
            outcome = await adapter.pay(req)
            return 200 if outcome.kind == "succeeded" else 599

        auth = QrgwCallAuth(registry.signer, registry, PARTNER)

        async def via_aiohttp() -> int:
            return (await http.call(ep, "pay", "POST", PATH, body=debit_body(), auth=auth)).status_code

        out["adapter (aiohttp)"] = await measure(via_adapter, calls, concurrency)
        out["aiohttp layer"] = await measure(via_aiohttp, calls, concurrency)
    finally:
        await http.aclose()
    # The alternative design: one session for every partner, limits and TLS per request.
    shared = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=100))
    try:

        async def via_shared() -> int:
            hdrs = {"Content-Type": "application/json"}
            body, url = debit_body(), ep.base_url + PATH
            auth.sign("POST", url, hdrs, body)
            async with shared.post(URL(url, encoded=True), data=body, headers=hdrs, ssl=False,
                                   timeout=aiohttp.ClientTimeout(total=ep.total_timeout_s)) as r:
                content = await r.read()
            auth.check("POST", PATH, hdrs, r.status, r.headers, content)
            return r.status

        out["one shared session"] = await measure(via_shared, calls, concurrency)
    finally:
        await shared.close()
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=ep.base_url, auth=QrgwAuth(registry.signer, registry, PARTNER),
                                 limits=limits, headers={"Accept": "application/json"}) as client:

        async def via_httpx() -> int:
            r = await client.post(PATH, content=debit_body(), headers={"Content-Type": "application/json"})
            return r.status_code

        out["httpx layer (old)"] = await measure(via_httpx, calls, concurrency)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()

    def body(workdir: Path, procs: Procs) -> int:
        _proc, doc = start_sandboxes(procs, workdir, store_url="memory://")
        configure_logging("WARNING", "json")  # the layer's cost, not the console's
        factory = new_event_loop if args.loop == "uvloop" else asyncio.new_event_loop
        with asyncio.Runner(loop_factory=factory) as runner:
            results = runner.run(bench(doc["config"], args.calls, args.concurrency))
        print(f"one partner call, {args.calls} calls, loop={args.loop} (CPU: this process only)")
        cols = list(next(iter(results.values())))
        print(f"{'path':<20}" + "".join(f"{c:>20}" for c in cols))
        for name, row in results.items():
            print(f"{name:<20}" + "".join(f"{row[c]:>20.2f}" for c in cols))
        return 0

    return run_bounded("partner-call", 600, args.keep, body)


if __name__ == "__main__":
    raise SystemExit(main())
