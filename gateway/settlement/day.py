"""Loading a business day from the store, and the all-partners day report of ``qrgw settle``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

from gateway.settlement.balance import Offense, balance_json, balance_offenses, day_balance, record_offenses
from gateway.settlement.fees import NO_FEES, FeeSchedule
from gateway.settlement.items import Item, items_of_day
from gateway.settlement.report import item_json, margins_json, margins_of, partners_of, positions_json, positions_of
from schemas.errors import ValidationFailed
from schemas.payment import PaymentRecord

_FETCH_BATCH = 64  # concurrent get_payment calls while loading a day


class DayStore(Protocol):
    """The part of ``gateway.store.base.Store`` a report reads."""

    async def payments_of_day(self, day: str) -> list[str]: ...

    async def get_payment(self, payment_id: str) -> PaymentRecord | None: ...


@dataclass
class Day:
    day: str
    records: list[PaymentRecord]
    missing: list[str] = field(default_factory=list)  # indexed under the day but not found
    fees: FeeSchedule = NO_FEES

    @property
    def items(self) -> list[Item]:
        return items_of_day(self.records, self.day, self.fees)


def parse_day(text: str) -> str:
    """``YYYY-MM-DD`` (a real calendar date) or ValidationFailed."""
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValidationFailed(f"date {text[:32]!r}: expected a business day as YYYY-MM-DD") from None


async def load_day(store: DayStore, day: str, fees: FeeSchedule = NO_FEES) -> Day:
    """Every payment indexed under ``day`` (its own, or one of its cancels or refunds)."""
    ids = sorted(set(await store.payments_of_day(day)))
    records: list[PaymentRecord] = []
    missing: list[str] = []
    for start in range(0, len(ids), _FETCH_BATCH):
        chunk = ids[start:start + _FETCH_BATCH]
        got = await asyncio.gather(*(store.get_payment(pid) for pid in chunk))
        for pid, rec in zip(chunk, got, strict=True):
            if rec is None:
                missing.append(pid)
            else:
                records.append(rec)
    return Day(day, records, missing, fees)


def check_day(d: Day) -> list[Offense]:
    """Everything ``qrgw settle --check`` reports: missing records, inconsistent records, and
    items or currencies that do not balance. Empty: the day settles to zero difference."""
    out = [Offense(pid, pid, "RECORD_MISSING", "indexed under the day but not in the store") for pid in d.missing]
    for rec in d.records:
        out.extend(record_offenses(rec))
    out.extend(balance_offenses(d.items))
    return out


def day_report(d: Day, zone: str, partners: list[str] | None = None) -> dict[str, Any]:
    """All partners' view of the day: every item once, each partner's positions, the FX table,
    the balance per currency and the offenses found."""
    items = d.items
    offenses = check_day(d)
    return {
        "business_day": d.day,
        "zone": zone,
        "generated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "items": [item_json(i) for i in items],
        "partners": [
            {"partner_id": p,
             "positions": positions_json(positions_of([i for i in items if p in (i.wallet, i.acquirer)], p))}
            for p in partners_of(items, partners or ())
        ],
        "fx_margin": margins_json(margins_of(items)),
        "balance": balance_json(day_balance(items)),
        "balanced": not offenses,
        "offenses": [o.to_json() for o in offenses],
    }
