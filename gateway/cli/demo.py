"""``qrgw demo`` (interim): decode the sandbox Seoul merchant's shared QR and show its routes.

Payments are not wired into the demo yet; this shows the first step of every journey: the
code a payer scans, decoded, and the route each sandbox wallet would get for it.
"""

from __future__ import annotations

import argparse
import tomllib
from typing import Any

from gateway.cli.qr import table
from gateway.qr import decode, samples
from gateway.routing import RoutingTable
from gateway.sandbox_env import TEMPLATE
from schemas.errors import NoRoute


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="walk through the sandbox journeys", description=__doc__)
    p.set_defaults(func=run)


def sandbox_routing() -> RoutingTable:
    """The routing table of config/sandbox.toml (identifiers and partner countries only)."""
    data = tomllib.loads(TEMPLATE.read_text(encoding="utf-8"))
    return RoutingTable(
        {r["identifier"]: r["partner"] for r in data.get("routing", [])},
        {p["id"]: p["country"] for p in data.get("partners", [])},
    )


def run(args: argparse.Namespace) -> int:
    payload = samples.seoul()
    qr = decode(payload)
    print("Seoul merchant's shared QR (EMVCo MPM):")
    print(f"  {payload}\n")
    print(table(qr) + "\n")
    routing = sandbox_routing()
    print("Route per sandbox wallet:")
    for wallet in sorted(routing.partner_country):
        try:
            r = routing.resolve(qr, wallet)
            print(f"  {wallet:<14} -> {r.acquirer:<14} {r.kind:<12} (template {r.identifier})")
        except NoRoute as exc:
            print(f"  {wallet:<14} -> no route: {exc.detail}")
    print("\nPayments are not part of this demo yet: it stops after decoding and routing.")
    return 0
