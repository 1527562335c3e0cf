"""The CSV form of a settlement report: one table, one row per record of the JSON report.

Column ``record`` says what a row is: ``item``, ``position``, ``margin``, ``balance`` or
``offense``; a row fills the columns of its kind and leaves the others empty. Amounts are
the same integer minor-unit strings as in the JSON (docs/settlement.md lists every column).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from gateway.settlement.balance import BALANCE_FIELDS
from gateway.settlement.report import MARGIN_FIELDS, POSITION_FIELDS

ITEM_COLUMNS = (
    "kind", "item_id", "payment_id", "business_day", "at", "status", "settles", "role", "wallet", "acquirer",
    "route_kind", "payer_currency", "payer_amount", "merchant_currency", "merchant_amount", "rate", "mid_rate",
    "mid_equivalent", "margin",
)
# Rows of other kinds reuse a column of the same name (a margin row's "payer_amount", a
# balance row's "margin"), so the header lists each name once.
COLUMNS: tuple[str, ...] = tuple(dict.fromkeys((
    "record", "partner_id", *ITEM_COLUMNS, "currency", *POSITION_FIELDS, "pair", "items", *MARGIN_FIELDS,
    *BALANCE_FIELDS, "code", "detail",
)))


def item_row(item: Mapping[str, Any]) -> dict[str, str]:
    route = item["route"]
    return {
        "record": "item", "kind": item["kind"], "item_id": item["item_id"], "payment_id": item["payment_id"],
        "business_day": item["business_day"], "at": item["at"], "status": item["status"],
        "settles": "true" if item["settles"] else "false", "role": item.get("role", ""),
        "wallet": route["wallet"], "acquirer": route["acquirer"], "route_kind": route["kind"],
        "payer_currency": item["payer_amount"]["currency"], "payer_amount": item["payer_amount"]["value"],
        "merchant_currency": item["merchant_amount"]["currency"],
        "merchant_amount": item["merchant_amount"]["value"],
        "rate": item["rate"] or "", "mid_rate": item["mid_rate"] or "",
        "mid_equivalent": item["mid_equivalent"]["value"], "margin": item["margin"]["value"],
    }


def rows(report: Mapping[str, Any]) -> list[dict[str, str]]:
    """The report's CSV rows (partner report or day report)."""
    out = [item_row(i) for i in report["items"]]
    if "positions" in report:  # a partner report
        groups = [(report["partner_id"], report["positions"])]
    else:
        groups = [(p["partner_id"], p["positions"]) for p in report["partners"]]
    for partner, positions in groups:
        for p in positions:
            out.append({"record": "position", "partner_id": partner, **p})
    for m in report["fx_margin"]:
        out.append({"record": "margin", **{k: str(v) for k, v in m.items()}})
    for b in report.get("balance", ()):
        out.append({"record": "balance", **b})
    for o in report.get("offenses", ()):
        out.append({"record": "offense", "payment_id": o["payment_id"], "item_id": o["item_id"],
                    "code": o["code"], "detail": o["detail"]})
    return out


def to_csv(report: Mapping[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\r\n", extrasaction="raise")
    w.writeheader()
    for row in rows(report):
        w.writerow(row)
    return buf.getvalue()
