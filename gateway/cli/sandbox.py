"""``qrgw sandbox``: run the three sandbox partners standalone, for partners' engineers to try.

Generates fresh keys into ``--dir`` (a new temporary folder by default), starts one sandbox per
adapter family on loopback, writes a ready-to-use gateway config (``<dir>/gateway.toml``) and
prints where everything is. ``--json`` prints the same as one JSON line (for scripts and the
fault soak, which then drive faults and read ledgers over ``/sandbox/*``). Runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from gateway import loop
from schemas.errors import ConfigError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sandbox",
        help="run the sandbox partners (qrgw, Alipay+, Kakao Pay families) on loopback",
        description="Run the three sandbox partners with run-time keys; print URLs and a gateway config.",
    )
    p.add_argument("--dir", type=Path, help="where keys and gateway.toml go (default: a new temp folder)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument(
        "--port-base", type=int, default=0, help="first of three consecutive ports (default: free ports)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed of rate-based faults")
    p.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    p.add_argument("--ready-file", type=Path, help="write the JSON description here once serving")
    p.set_defaults(func=run)


def describe(env: Any) -> dict[str, Any]:
    return {
        "config": str(env.config_path),
        "gateway_url": env.gateway_url,
        "keys_dir": str(env.keys_dir),
        "partners": {
            pid: {
                "family": sbx.family,
                "url": sbx.url,
                "private_key": str(env.partner_key_files[pid].private_path),
                "keyid": env.partner_key_files[pid].keyid,
                "ledger": f"{sbx.url}/sandbox/ledger",
                "faults": f"{sbx.url}/sandbox/faults",
                "events": f"{sbx.url}/sandbox/events",
            }
            for pid, sbx in env.sandboxes.items()
        },
        # the national limit registry (ORIS-style) the gateway config points at; /sandbox/mode up|down|slow
        "registry": {"url": env.oris.url, "mode": f"{env.oris.url}/sandbox/mode"} if env.fx_sandboxes else None,
    }


async def serve(args: argparse.Namespace, workdir: Path) -> None:
    from gateway.sandbox_env import SandboxEnvironment

    ports = {}
    if args.port_base:
        ids = ("kakaopay-kr", "alipay-cn", "openwallet-sg")
        ports = {pid: args.port_base + i for i, pid in enumerate(ids)}
    try:
        env = SandboxEnvironment(workdir, host=args.host, seed=args.seed, ports=ports)
        await env.start()
    except OSError as exc:
        raise ConfigError(f"cannot start the sandboxes: {exc.strerror or exc}") from exc
    try:
        from gateway.partnerkit.client import write_sandbox_client_config

        doc = describe(env) | {"client_config": str(write_sandbox_client_config(env))}
        if args.ready_file:
            args.ready_file.write_text(json.dumps(doc), encoding="utf-8")
        if args.json:
            print(json.dumps(doc), flush=True)
        else:
            print("qrgw sandbox partners (Ctrl-C to stop)")
            for pid, p in doc["partners"].items():
                print(f"  {pid:<14} {p['family']:<11} {p['url']}   key {p['keyid']}: {p['private_key']}")
            if doc["registry"]:
                print(f"  registry (ORIS)  {doc['registry']['url']}   faults: POST {doc['registry']['mode']}")
            print(f"  keys:            {doc['keys_dir']}")
            print(f"  gateway config:  {doc['config']}   (qrgw serve --config {doc['config']})")
            print(f"  client config:   {doc['client_config']}   (qrgw call --config ... GET /openapi.json)")
            print("  faults:  header X-Sandbox-Fault: timeout|drop|5xx|U|latency=MS|F=CODE")
            print("           or POST <url>/sandbox/faults")
            print("  ledgers: GET <url>/sandbox/ledger")
            print("  webhook inbox (every delivery, verified or not, and why): GET <url>/sandbox/events")
            for pid, p in doc["partners"].items():
                print(f"    {pid:<14} {p['events']}")
            print(flush=True)
        await asyncio.Event().wait()
    finally:
        await env.stop()


def run(args: argparse.Namespace) -> int:
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        loop.run(serve(args, args.dir))
        return 0
    with tempfile.TemporaryDirectory(prefix="qrgw-sandbox-") as tmp:
        loop.run(serve(args, Path(tmp)))
    return 0
