"""Business days (PROTOCOL.md §9): 00:00–24:00 in the configured zone, and the cancel cut-off."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def business_day(at: datetime, zone: str) -> str:
    """``YYYY-MM-DD`` of the business day ``at`` (aware) falls in."""
    return at.astimezone(ZoneInfo(zone)).date().isoformat()


def cancel_deadline(day: str, cutoff: str, zone: str) -> datetime:
    """The instant cancels of a payment of business day ``day`` stop being allowed.

    ``cutoff`` is ``HH:MM`` local time of that day; ``24:00`` is the end of the day.
    """
    d = date.fromisoformat(day)
    hh, mm = (int(x) for x in cutoff.split(":"))
    tz = ZoneInfo(zone)
    if hh == 24:
        return datetime.combine(d + timedelta(days=1), time(0, 0), tz)
    return datetime.combine(d, time(hh, mm), tz)
