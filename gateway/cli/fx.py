"""``qrgw fx quote`` and ``qrgw fx policy``: the FX module from the command line.

``--amount`` is the merchant amount in MAJOR units of ``--from`` (a decimal string: ``15000``
KRW, ``15.05`` CNY), exactly as a payer reads a price; anything finer than the currency's minor
unit is refused. ``--to`` is the payer's currency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fx.money import Money
from fx.quotes import QuoteService, rfc3339
from fx.rates import build_rates
from fx.rules import jurisdictions_of
from gateway.config import load_settings
from gateway.store.memory import MemoryStore
from schemas.errors import ValidationFailed


def register(sub: Any) -> None:
    p = sub.add_parser("fx", help="exchange-rate quotes and FX policy", description=__doc__)
    fx_sub = p.add_subparsers(dest="fx_command", metavar="ACTION", required=True)

    q = fx_sub.add_parser("quote", help="quote a payment as the payer would see it")
    q.add_argument("--from", dest="src", required=True, metavar="CUR", help="merchant currency (ISO 4217)")
    q.add_argument("--to", dest="dst", required=True, metavar="CUR", help="payer currency (ISO 4217)")
    q.add_argument("--amount", required=True, help="merchant amount in major units of --from, e.g. 15000 or 15.05")
    q.add_argument("--config", type=Path, help="TOML file layered over config/gateway.toml")
    q.add_argument("--json", action="store_true", help="print the wire form (POST /v1/quotes answer)")
    q.set_defaults(func=run_quote)

    pol = fx_sub.add_parser("policy", help="print the FX rules in force on a date")
    pol.add_argument("--date", type=date.fromisoformat, help="YYYY-MM-DD in the policy zone (default: today)")
    pol.add_argument("--config", type=Path, help="TOML file layered over config/gateway.toml")
    pol.set_defaults(func=run_policy)


def _store() -> MemoryStore:
    """An in-process store for one command (quotes, rate cache): nothing outlives the process."""
    return MemoryStore()


def run_quote(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    src, dst = args.src.upper(), args.dst.upper()
    try:
        amount = Money.parse(args.amount, src)
    except ValueError as exc:
        raise ValidationFailed(f"--amount: {exc}") from None

    async def go() -> dict[str, Any]:
        store = _store()
        rates = build_rates(settings.fx, store)
        try:
            q = await QuoteService(rates, store, settings.fx).quote(
                merchant_amount=amount, payer_currency=dst, partner_id="cli", qr_fingerprint="cli"
            )
        finally:
            close = getattr(rates, "aclose", None)
            if close is not None:
                await close()
        wire = q.to_wire()
        if not args.json:
            spread = f"{q.spread_bps / 100:.2f}%"
            print(f"Merchant amount : {q.merchant_amount}")
            print(f"You pay         : {q.payer_amount}")
            print(f"Rate (all-in)   : 1 {src} = {q.rate} {dst}  (spread {q.spread_bps} bps = {spread} over mid)")
            print(f"Mid rate        : 1 {src} = {q.mid_rate} {dst}")
            print(f"Valid until     : {rfc3339(q.expires_at)}  ({settings.fx.quote_ttl_s} s)")
            print(f"Quote id        : {q.quote_id}")
        return wire

    wire = asyncio.run(go())
    if args.json:
        print(json.dumps(wire, indent=2))
    return 0


def run_policy(args: argparse.Namespace) -> int:
    """Every jurisdiction's rules in force on the date, each value with its source; values not
    verified against the official text are marked [ASSUMED]."""
    settings = load_settings(args.config)
    cfg = settings.fx.policy
    state = "enabled" if cfg.enabled else "DISABLED"
    for j in jurisdictions_of(cfg):
        on = args.date or datetime.now(j.zone).date()
        who = "its residents" if j.covers == "residents" else "payers of its wallets"
        print(f"FX policy of {j.country} on {on.isoformat()} ({j.zone.key}, covers {who}, {state})")
        for line in j.rules_at(on).describe():
            print(line)
    reg = cfg.registry
    print(f"National registry {reg.name}: " + (f"{reg.url}, fallback {reg.fallback}" if reg.enabled else "not used"))
    return 0
