"""``qrgw recon``: reconcile a partner's settlement file against its frozen batch, list the
exceptions found, resolve one with a note (docs/settlement.md "Reconciliation").

    qrgw recon import --partner ID --window W [--family F] FILE   exit 0: no difference, 1: differences
    qrgw recon exceptions [--window W] [--open]                   one JSON object per line
    qrgw recon resolve EXCEPTION_ID --note TEXT
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.cli.settle import open_settle_store
from gateway.config import load_settings
from gateway.logging import configure_logging
from gateway.settlement.day import parse_day
from gateway.settlement.recon import import_file
from schemas.errors import NotFound, ValidationFailed


def register(sub: Any) -> None:
    p = sub.add_parser("recon", help="reconcile partner settlement files", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    acts = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    imp = acts.add_parser("import", help="match a partner's file against its frozen batch")
    imp.add_argument("--partner", required=True)
    imp.add_argument("--window", required=True, help="window id (its business day, YYYY-MM-DD)")
    imp.add_argument("--family", choices=("qrgw", "alipayplus", "kakaopay"),
                     help="the file's format (default: the partner's configured family)")
    imp.add_argument("file", type=Path)
    exc = acts.add_parser("exceptions", help="list reconciliation exceptions")
    exc.add_argument("--window")
    exc.add_argument("--open", action="store_true", help="only those not resolved")
    res = acts.add_parser("resolve", help="resolve an exception with a note")
    res.add_argument("exception_id")
    res.add_argument("--note", required=True)
    for q in (imp, exc, res):
        q.add_argument("--config", type=Path, help="TOML file layered over config/gateway.toml (names the store)")
    p.set_defaults(func=run)


async def _run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    store = await open_settle_store(settings)
    try:
        if args.action == "import":
            partner = settings.partner(args.partner)
            if partner is None and args.family is None:
                raise ValidationFailed(f"partner {args.partner!r} is not configured: give --family")
            family = args.family or (partner.family if partner else "qrgw")
            currency = partner.currency if partner else "KRW"
            try:
                data = args.file.read_bytes()
            except OSError as exc:
                raise ValidationFailed(f"{args.file}: {exc.strerror}") from None
            result = await import_file(store, args.partner, parse_day(args.window), family, currency, data)
            for found in result.exceptions:
                print(json.dumps(found, ensure_ascii=False))
            print(f"recon {args.partner} {args.window}: {result.rows} row(s), {len(result.exceptions)} "
                  f"difference(s), {result.new} new", file=sys.stderr)
            return 1 if result.exceptions else 0
        if args.action == "exceptions":
            for e in await store.recon_exceptions(parse_day(args.window) if args.window else None):
                if not (args.open and e.get("resolved_at")):
                    print(json.dumps(e, ensure_ascii=False))
            return 0
        at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        doc = await store.resolve_recon_exception(args.exception_id, args.note, at)
        if doc is None:
            raise NotFound(f"no exception {args.exception_id}")
        print(json.dumps(doc, ensure_ascii=False))
        return 0
    finally:
        await store.aclose()


def run(args: argparse.Namespace) -> int:
    configure_logging("WARNING", "auto", sys.stderr)  # stdout is one JSON document per line
    return asyncio.run(_run(args))
