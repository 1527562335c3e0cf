"""The append-only audit log of operator actions: who, when, what, on what, before and after.

Entries go to the store (``Store.append_audit``: a stream on Redis, shared by every process);
nothing in the API changes or deletes one. Every action records its entry after it took effect,
so an entry is never written for an action that failed; an action whose audit write fails
answers 503 (the operator repeats it: each action is idempotent, and so is the append).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gateway.admin.auth import Operator
from gateway.store.base import Store


async def record(
    store: Store, op: Operator, action: str, target: str, *,
    before: Mapping[str, Any] | None = None, after: Mapping[str, Any] | None = None, note: str = "",
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "audit_id": "aud_" + secrets.token_hex(10),
        "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "operator": op.name,
        "role": op.role,
        "via": op.via,
        "action": action,
        "target": target,
        "before": dict(before) if before is not None else None,
        "after": dict(after) if after is not None else None,
        "note": note,
    }
    await store.append_audit(entry["audit_id"], entry)
    return entry


async def page(store: Store, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; ``next_cursor`` is None on the last page."""
    rows = await store.audit_page(limit + 1, before=cursor)
    more = len(rows) > limit
    rows = rows[:limit]
    return [e for _, e in rows], (rows[-1][0] if more and rows else None)
