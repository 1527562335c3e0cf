"""``qrgw demo``: the sandbox partners and the gateway in-process on loopback, the journeys of
PROTOCOL.md §1 plus a partial refund and a cancel, each outcome checked (``gateway.demo``).

Exit status: 0 when every journey ended as expected, 1 otherwise (the failed checks are named).
"""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the payment journeys end to end against the sandbox partners",
        description="Start the three sandbox partners and the gateway (embedded in-memory store) on loopback "
        "with keys generated at run time, then run, as the partners would (signed HTTP, every answer's "
        "signature verified), a Chinese tourist paying a Seoul shared QR (CNY->KRW), a Korean paying a "
        "Shanghai QR from prepaid KRW (KRW->CNY, FX policy), a domestic Korean payment, a partial refund "
        "and a cancel. Ends with each partner's balances and the day's settlement check. Exits 0 only "
        "when every outcome is as expected.",
    )
    p.add_argument("--json", action="store_true", help="print a machine-readable summary instead of the walk-through")
    p.add_argument("--verbose", action="store_true", help="also show the gateway's INFO logs (on stderr)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gateway.demo import main

    return main(as_json=args.json, verbose=args.verbose)
