"""``qrgw conformance``: test a partner's ``qrgw`` family server with one command.

The config is a gateway config (``qrgw serve --config``): the runner signs with its
``gateway.keys`` and checks answers against the partner's ``partners[].keys``.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "conformance",
        help="test a partner server of the qrgw family; prints a pass/fail table",
        description="Play the gateway against a partner's qrgw family server (PROTOCOL.md §2, §8, §9). "
        "Exit 1 if any check fails.",
    )
    p.add_argument("--partner-url", required=True, help="the partner's base URL")
    p.add_argument("--partner-id", required=True, help="the partner's id in --config")
    p.add_argument("--config", type=Path, required=True, help="gateway config with gateway.keys and the partner")
    p.add_argument("--payer", default="conformance-payer", help="a test payer id with a balance (wallet role)")
    p.add_argument("--webhook-url", help="the partner's webhook URL (default: <partner-url>/webhooks)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gateway.config import load_settings
    from gateway.partnerkit.conformance import partner_from_settings, run_checks, table

    settings = load_settings(args.config)
    partner = partner_from_settings(settings, args.partner_id, args.partner_url, payer=args.payer,
                                    webhook_url=args.webhook_url)
    results = asyncio.run(run_checks(partner))
    print(f"qrgw conformance: {args.partner_id} at {partner.url} (run {partner.run})")
    print(table(results), flush=True)
    return 1 if any(r.passed is False for r in results) else 0
