"""``qrgw settle``: settlement reports, the day balance check and the FX regulatory extract,
read from the configured store (docs/settlement.md).

Exit status: 0 done (and, with ``--check``, the day balances); 1 ``--check`` found offenses
(listed on stderr, one per line); 2 a usage or store error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tomllib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.config import Settings, load_settings
from gateway.settlement import check_day, day_balance, day_report, load_day, parse_day, partner_report, to_csv
from gateway.settlement.day import Day
from gateway.settlement.fees import FeeSchedule
from gateway.settlement.fxreport import DEFAULT_PURPOSE_CODE, fx_report_csv
from gateway.store.base import Store
from schemas.errors import ConfigError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "settle",
        help="settlement report, balance check, FX extract",
        description="Settlement report of one business day from the configured store. Without --partner: "
        "every partner's positions, the FX margin table and the per-currency balance.",
    )
    p.add_argument("--config", type=Path, help="TOML file layered over config/gateway.toml (names the store)")
    p.add_argument("--date", help="business day YYYY-MM-DD (default: today in [business_day] zone)")
    p.add_argument("--partner", help="the report one partner gets from GET /v1/settlements/{date}")
    p.add_argument("--format", choices=("json", "csv"), default="json")
    p.add_argument("--out", type=Path, help="write the report here instead of stdout")
    p.add_argument("--check", action="store_true", help="verify the day balances; exit 1 listing offenses")
    p.add_argument("--fx-report", action="store_true", help="CSV of the day's cross-border payments flagged report")
    p.add_argument("--purpose-code", default=DEFAULT_PURPOSE_CODE, help="FX extract purpose code default")
    p.set_defaults(func=run)
    acts = p.add_subparsers(dest="action", metavar="ACTION")
    c = acts.add_parser("close", help="close a settlement window now (idempotent)",
                        description="Freeze the window's batches (PROTOCOL.md §9.1). Default: the window whose "
                        "cut-off passed last; --window closes one early (later items go to the next).")
    c.add_argument("--config", type=Path, help="TOML file layered over config/gateway.toml (names the store)")
    c.add_argument("--window", help="window id: its business day YYYY-MM-DD")
    c.set_defaults(func=run_close)


def today(settings: Settings) -> str:
    from zoneinfo import ZoneInfo

    return datetime.now(UTC).astimezone(ZoneInfo(settings.business_day.zone)).date().isoformat()


def mid_rates(settings: Settings) -> dict[str, str]:
    """The configured mid-rate table (``table_file``'s ``[rates]``, then the inline table over it)."""
    src = settings.fx.rates
    table: dict[str, str] = {}
    if src.table_file is not None:
        try:
            with src.table_file.open("rb") as fh:
                raw = tomllib.load(fh).get("rates", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"fx.rates.table_file: cannot read {src.table_file}: {exc}") from exc
        table.update({str(k): str(v) for k, v in raw.items()})
    table.update(src.table)
    return table


async def open_settle_store(settings: Settings) -> Store:
    """The configured store; on ``memory://`` say that it cannot see a server's payments."""
    from gateway.store.factory import open_store

    if settings.store.url.startswith("memory://"):
        print("note: store memory:// only sees its own process: no payment a server (another process) "
              "made is here; settle a server's payments through its Redis store", file=sys.stderr)
    return await open_store(settings.store)


async def _load(settings: Settings, day: str) -> Day:
    store = await open_settle_store(settings)
    try:
        return await load_day(store, day, FeeSchedule.from_settings(settings.settlement.fees))
    finally:
        await store.aclose()


async def _close(settings: Settings, window: str | None) -> dict[str, Any]:
    from gateway.settlement.windows import CloseConfig, close_window, due_window

    cfg = CloseConfig.from_settings(settings)
    store = await open_settle_store(settings)
    try:
        wid = parse_day(window) if window else due_window(datetime.now(UTC), cfg)
        doc, closed = await close_window(store, wid, cfg, owner=f"cli-{uuid.uuid4().hex[:12]}")
        return {"closed_now": closed, **doc}
    finally:
        await store.aclose()


def run_close(args: argparse.Namespace) -> int:
    from gateway.logging import configure_logging

    settings = load_settings(args.config)
    configure_logging("WARNING", "auto", sys.stderr)  # stdout is the window document
    doc = asyncio.run(_close(settings, args.window))
    print(json.dumps(doc, indent=2))
    state = "closed" if doc["closed_now"] else "was already closed"
    print(f"settle close {doc['window_id']}: {state}; {doc['items']} item(s), {len(doc['batches'])} batch(es)",
          file=sys.stderr)
    return 0


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        out.write_text(text, encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    day = parse_day(args.date) if args.date else today(settings)
    loaded = asyncio.run(_load(settings, day))
    zone = settings.business_day.zone
    if args.fx_report:
        _emit(fx_report_csv(loaded.records, day, mid_rates(settings), args.purpose_code), args.out)
    elif not args.check or args.out is not None:
        report: dict[str, Any]
        if args.partner:
            report = partner_report(loaded.items, args.partner, day, zone, settings.settlement.show_fx_margin)
        else:
            report = day_report(loaded, zone, [p.id for p in settings.partners])
        text = to_csv(report) if args.format == "csv" else json.dumps(report, indent=2, ensure_ascii=False)
        _emit(text, args.out)
    if not args.check:
        return 0
    offenses = check_day(loaded)
    for o in offenses:
        who = f"{o.payment_id} {o.item_id}" if o.payment_id else "day"
        print(f"{o.code} {who}: {o.detail}", file=sys.stderr)
    items = [i for i in loaded.items if i.settles]
    currencies = " ".join(f"{c}:{b.difference:+d}" for c, b in day_balance(items).items()) or "none"
    if offenses:
        print(f"settle {day}: NOT balanced, {len(offenses)} offense(s); differences {currencies}")
        return 1
    print(f"settle {day}: balanced, {len(items)} settled item(s) of {len(loaded.records)} payment(s); "
          f"differences {currencies}")
    return 0
