"""Settlement (PROTOCOL.md §9): business-day items, partner and day reports (JSON, CSV), the
exact day balance with its checks, and the regulatory FX extract. See docs/settlement.md."""

from __future__ import annotations

from gateway.settlement.balance import CurrencyBalance, Offense, day_balance, record_offenses
from gateway.settlement.csvio import to_csv
from gateway.settlement.day import Day, check_day, day_report, load_day, parse_day
from gateway.settlement.items import Item, items_of, items_of_day, mid_equivalent
from gateway.settlement.report import partner_report, positions_of

__all__ = [
    "CurrencyBalance",
    "Day",
    "Item",
    "Offense",
    "check_day",
    "day_balance",
    "day_report",
    "items_of",
    "items_of_day",
    "load_day",
    "mid_equivalent",
    "parse_day",
    "partner_report",
    "positions_of",
    "record_offenses",
    "to_csv",
]
