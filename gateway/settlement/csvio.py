"""The CSV form of a settlement report: one table per kind of record, each with its own header.

Tables, in this order, separated by one empty line: ``items``, ``positions``, ``margins`` (and,
in the all-partners report, ``balance`` and ``offenses``). The first column of every table is
``table`` (its name), the second ``partner_id``, filled on every row: an item's row names the
partner whose report it is (the day report repeats an item once per partner on its route, with
its ``role``), a margin row the partner the margin was earned on (empty only in the operator's
day-wide ``margins`` / ``balance`` / ``offenses`` tables, which belong to no partner). Amounts are
the same integer minor-unit strings as in the JSON; the mid rate and margin columns are absent
when the report hides them (docs/settlement.md lists every column).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gateway.settlement.balance import BALANCE_FIELDS
from gateway.settlement.report import FX_FIELDS, MARGIN_FIELDS, POSITION_FIELDS

ITEM_COLUMNS = (
    "kind",
    "item_id",
    "payment_id",
    "business_day",
    "at",
    "status",
    "settles",
    "role",
    "wallet",
    "acquirer",
    "route_kind",
    "payer_currency",
    "payer_amount",
    "merchant_currency",
    "merchant_amount",
    "wallet_fee",
    "acquirer_fee",
    *FX_FIELDS,
)
POSITION_COLUMNS = ("currency", *POSITION_FIELDS)
MARGIN_COLUMNS = ("pair", "merchant_currency", "payer_currency", *MARGIN_FIELDS)
BALANCE_COLUMNS = ("currency", *BALANCE_FIELDS)
OFFENSE_COLUMNS = ("payment_id", "item_id", "code", "detail")
TABLES: dict[str, tuple[str, ...]] = {
    "items": ITEM_COLUMNS,
    "positions": POSITION_COLUMNS,
    "margins": MARGIN_COLUMNS,
    "balance": BALANCE_COLUMNS,
    "offenses": OFFENSE_COLUMNS,
}


def item_row(item: Mapping[str, Any]) -> dict[str, str]:
    route = item["route"]
    row = {
        "kind": item["kind"],
        "item_id": item["item_id"],
        "payment_id": item["payment_id"],
        "business_day": item["business_day"],
        "at": item["at"],
        "status": item["status"],
        "settles": "true" if item["settles"] else "false",
        "role": item.get("role", ""),
        "wallet": route["wallet"],
        "acquirer": route["acquirer"],
        "route_kind": route["kind"],
        "payer_currency": item["payer_amount"]["currency"],
        "payer_amount": item["payer_amount"]["value"],
        "merchant_currency": item["merchant_amount"]["currency"],
        "merchant_amount": item["merchant_amount"]["value"],
        "wallet_fee": item["wallet_fee"]["value"],
        "acquirer_fee": item["acquirer_fee"]["value"],
    }
    if "mid_rate" in item:
        row.update(
            rate=item["rate"] or "",
            mid_rate=item["mid_rate"] or "",
            mid_equivalent=item["mid_equivalent"]["value"],
            margin=item["margin"]["value"],
        )
    return row


def _role(item: Mapping[str, Any], partner: str) -> str:
    r = item["route"]
    return "+".join(n for n, p in (("wallet", r["wallet"]), ("acquirer", r["acquirer"])) if p == partner)


def tables(report: Mapping[str, Any]) -> dict[str, list[dict[str, str]]]:
    """The report's rows per table (partner report or day report)."""
    out: dict[str, list[dict[str, str]]] = {name: [] for name in TABLES}
    if "positions" in report:  # a partner report
        me = str(report["partner_id"])
        groups = [(me, report["positions"])]
        out["items"] = [{"partner_id": me, **item_row(i)} for i in report["items"]]
        owner = me
    else:
        groups = [(p["partner_id"], p["positions"]) for p in report["partners"]]
        for i in report["items"]:
            for p in dict.fromkeys((i["route"]["wallet"], i["route"]["acquirer"])):
                out["items"].append({"partner_id": p, **item_row(i), "role": _role(i, p)})
        owner = ""
    for partner, positions in groups:
        out["positions"] += [{"partner_id": partner, **p} for p in positions]
    margins = report.get("fx_margin", ())
    out["margins"] = [{"partner_id": owner, **{k: str(v) for k, v in m.items()}} for m in margins]
    out["balance"] = [{"partner_id": "", **b} for b in report.get("balance", ())]
    out["offenses"] = [{"partner_id": "", **{k: o[k] for k in OFFENSE_COLUMNS}} for o in report.get("offenses", ())]
    return out


def write_table(name: str, columns: Sequence[str], rows: Iterable[Mapping[str, str]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(
        buf, fieldnames=("table", "partner_id", *columns), lineterminator="\r\n", extrasaction="ignore", restval=""
    )
    w.writeheader()
    for row in rows:
        w.writerow({"table": name, **row})
    return buf.getvalue()


def to_csv(report: Mapping[str, Any], only: str | None = None) -> str:
    """All tables (``only``: that one), an empty line between them. A table with no rows keeps
    its header, so a reader always finds each one. Hidden FX columns are left out."""
    show_fx = "fx_margin" in report
    parts: list[str] = []
    rows = tables(report)
    for name, columns in TABLES.items():
        if only not in (None, name) or (name in ("balance", "offenses") and "partners" not in report):
            continue
        if name == "items" and not show_fx:
            columns = tuple(c for c in columns if c not in FX_FIELDS)
        if name == "margins" and not show_fx:
            continue
        parts.append(write_table(name, columns, rows[name]))
    return "\r\n".join(parts)


def batch_csv(batch: Mapping[str, Any]) -> str:
    """A frozen batch as CSV: its ``items`` (one row per movement) and ``positions`` tables."""
    cols = list(batch["columns"])
    partner = str(batch["partner_id"])
    rows = ({"partner_id": partner, **dict(zip(cols, r, strict=True))} for r in batch["rows"])
    positions = ({"partner_id": partner, **p} for p in batch["positions"])
    return write_table("items", cols, rows) + "\r\n" + write_table("positions", POSITION_COLUMNS, positions)


def read_tables(text: str) -> dict[str, list[dict[str, str]]]:
    """Parse ``to_csv`` output back into rows per table (tests, tools); an empty table is known
    by its header."""
    out: dict[str, list[dict[str, str]]] = {}
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        reader = csv.DictReader(io.StringIO(block))
        rows = list(reader)
        head = set(reader.fieldnames or ())
        known = (n for n, cols in TABLES.items()
                 if set(cols) - set(FX_FIELDS) <= head <= {"table", "partner_id", *cols})
        out[rows[0]["table"] if rows else next(known, "")] = rows
    return out
