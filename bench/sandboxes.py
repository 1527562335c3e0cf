"""The sandbox partners in their own process, for the bench scripts.

Runs ``gateway.sandbox_env.SandboxEnvironment`` (run-time keys, the three sandbox partners,
a filled ``gateway.toml`` pointing at ``--store-url`` and ``--gateway-port``), writes a JSON
description to ``--ready-file`` once serving, and adds a small control server (``--control-port``):

- ``GET /state``: per payment, what the sandboxes' ledgers say (debited, returned, credited,
  reversed, count of live succeeded debits), the ledger violations, every webhook event each
  partner received, and the faults injected;
- ``POST /faults``: one ``/sandbox/faults`` document applied to every sandbox.

Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import tomllib
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.sandbox_env import SandboxEnvironment, dump_toml


def describe(env: SandboxEnvironment, control_url: str) -> dict[str, Any]:
    return {
        "config": str(env.config_path),
        "gateway_url": env.gateway_url,
        "control": control_url,
        "partners": {
            pid: {
                "family": sbx.family,
                "url": sbx.url,
                "keyid": env.partner_key_files[pid].keyid,
                "alg": env.partner_key_files[pid].alg,
                "private_key": str(env.partner_key_files[pid].private_path),
                "public_key": str(env.partner_key_files[pid].public_path),
            }
            for pid, sbx in env.sandboxes.items()
        },
    }


def state(env: SandboxEnvironment) -> dict[str, Any]:
    payments: dict[str, dict[str, Any]] = {}
    for sbx in env.sandboxes.values():
        for pid, s in sbx.ledger.by_payment().items():
            p = payments.setdefault(pid, {"debited": 0, "returned": 0, "credited": 0, "credit_reversed": 0,
                                          "live_debits": 0, "live_credits": 0})
            p["debited"] += s.debited
            p["returned"] += s.returned
            p["credited"] += s.credited
            p["credit_reversed"] += s.credit_reversed
        for d in sbx.ledger.debits.values():
            if d.answer.ok and not d.cancelled:
                payments.setdefault(d.payment_id, {})["live_debits"] = (
                    payments[d.payment_id].get("live_debits", 0) + 1)
        for c in sbx.ledger.credits.values():
            if c.answer.ok and c.reversed < c.amount:
                payments.setdefault(c.payment_id, {})["live_credits"] = (
                    payments[c.payment_id].get("live_credits", 0) + 1)
    return {
        "payments": payments,
        "violations": env.violations(),
        "events": {
            pid: [[e.get("event_id"), e.get("type"), e.get("payment_id")] for e in sbx.events]
            for pid, sbx in env.sandboxes.items()
        },
        "injected": {pid: dict(sbx.faults.injected) for pid, sbx in env.sandboxes.items()},
        "calls": {pid: dict(sbx.calls) for pid, sbx in env.sandboxes.items()},
    }


def raise_rate_limits(config: Path, rate: float) -> None:
    """Per-partner rate limits high enough that the bench measures the gateway, not its limiter
    (the limiter still runs on every request)."""
    doc = tomllib.loads(config.read_text(encoding="utf-8"))
    for p in doc["partners"]:
        p["rate_limit"] = {"rate_per_s": rate, "burst": int(rate * 2)}
    config.write_text(dump_toml(doc), encoding="utf-8")


def control_app(env: SandboxEnvironment) -> web.Application:
    async def get_state(request: web.Request) -> web.Response:
        return web.json_response(state(env))

    async def post_faults(request: web.Request) -> web.Response:
        doc = await request.json()
        for sbx in env.sandboxes.values():
            sbx.faults.configure(doc)
        return web.json_response({pid: s.faults.describe() for pid, s in env.sandboxes.items()})

    app = web.Application()
    app.router.add_get("/state", get_state)
    app.router.add_post("/faults", post_faults)
    return app


async def run(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    env = SandboxEnvironment(args.dir, store_url=args.store_url, gateway_port=args.gateway_port,
                             seed=args.seed, hang_s=args.hang_s)
    await env.start()
    raise_rate_limits(env.config_path, args.rate_limit)
    runner = web.AppRunner(control_app(env), access_log=None)
    try:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", args.control_port).start()
        doc = describe(env, f"http://127.0.0.1:{args.control_port}")
        tmp = args.ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.rename(args.ready_file)
        await stop.wait()
    finally:
        await runner.cleanup()
        await env.stop()


def main() -> None:
    p = argparse.ArgumentParser(description="Run the sandbox partners plus a bench control server.")
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--store-url", default="memory://")
    p.add_argument("--gateway-port", type=int, required=True)
    p.add_argument("--control-port", type=int, required=True)
    p.add_argument("--ready-file", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate-limit", type=float, default=100_000.0, help="per-partner requests/s allowed")
    p.add_argument("--hang-s", type=float, default=30.0, help="how long an injected timeout hangs")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
