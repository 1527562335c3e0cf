"""What a wallet's payer may still spend: the view behind ``GET /v1/limits`` (docs/fx.md).

Only the calling wallet's own payer is ever looked up: the holder is (wallet, payer id), or the
national identity that this very wallet sent for this payer id on an earlier payment (a binding
the policy remembers). A wallet cannot name a national id itself, so it cannot read anyone
else's counters.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fx.identity import binding_key, wallet_holder
from fx.money import Money
from fx.policy import FxPolicy, counter_name, window_end
from fx.quotes import rfc3339
from fx.rules import LABELS, LIMITS

__all__ = ["payer_limits"]


async def _identity(policy: FxPolicy, wallet: str, payer_id: str) -> tuple[str, str, bool]:
    """(holder, registry person, joined by a national id)."""
    raw = await policy.ledger.get_blob(binding_key(wallet, payer_id))
    if raw:
        bound = json.loads(raw)
        return str(bound["holder"]), str(bound["person"]), True
    holder = wallet_holder(wallet, payer_id)
    return holder, holder, False


async def payer_limits(policy: FxPolicy, wallet: str, payer_id: str, at: datetime | None = None) -> dict[str, Any]:
    at = at or datetime.now(UTC)
    holder, person, joined = await _identity(policy, wallet, payer_id)
    rules: list[dict[str, Any]] = []
    for j in policy.jurisdictions if policy.cfg.enabled else ():
        local = at.astimezone(j.zone)
        r = j.rules_at(local.date())
        if not r.in_force:
            continue
        for name, (kind, window, currency) in LIMITS.items():
            value = getattr(r, name)
            if value is None:
                continue
            source, confirmed = r.source(name)
            limit = Money.from_decimal(value, currency)
            entry: dict[str, Any] = {
                "jurisdiction": j.country, "rule": name, "description": LABELS[name], "applies_to": kind,
                "window": window, "limit": limit.to_dict(), "source": source, "confirmed": confirmed,
                "rule_set": r.effective_from.isoformat(),
            }
            if window != "payment":
                used = await policy.ledger.limit_usage(holder, counter_name(j, window, local))
                entry["used"] = Money(used, currency).to_dict()
                entry["remaining"] = Money(max(0, limit.minor - used), currency).to_dict()
                entry["window_end"] = rfc3339(window_end(window, local, j))
            rules.append(entry)
    out: dict[str, Any] = {
        "payer_id": payer_id, "identity": "national" if joined else "wallet", "as_of": rfc3339(at), "rules": rules,
    }
    if policy.registry is not None:
        year = at.astimezone(policy.home.zone).year
        a = await policy.registry.allowance(person, year)
        out["national"] = {"status": "unavailable"} if a is None else {
            "status": "ok", "year": year, "limit": Money(a.limit, "USD").to_dict(),
            "used": Money(a.used, "USD").to_dict(), "remaining": Money(a.remaining, "USD").to_dict(),
        }
    return out
