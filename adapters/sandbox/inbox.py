"""The sandbox partner's webhook inbox: every delivery it received, verified or not, and why.

Partner engineers read it at ``GET /sandbox/events`` (newest last) to see what the gateway sent
them; ``?event_id=`` narrows it to one event. It is bounded (oldest dropped first) so a long
soak cannot grow it without limit.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

MAX_ENTRIES = 1000


@dataclass(frozen=True)
class Delivery:
    """One POST to ``/webhooks`` as the sandbox judged it."""

    received_at: str
    verified: bool
    accepted: bool  # verified, well-formed and new (a duplicate is verified but not accepted)
    duplicate: bool
    reason: str  # "ok", "duplicate event_id", or the refusal code and detail
    event_id: str | None
    type: str | None
    keyid: str | None
    event: dict[str, Any] | None


class Inbox:
    def __init__(self, limit: int = MAX_ENTRIES) -> None:
        self._entries: deque[Delivery] = deque(maxlen=limit)

    def record(
        self,
        *,
        verified: bool,
        accepted: bool,
        reason: str,
        event: dict[str, Any] | None,
        keyid: str | None = None,
        duplicate: bool = False,
    ) -> Delivery:
        eid = event.get("event_id") if event else None
        etype = event.get("type") if event else None
        entry = Delivery(
            received_at=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            verified=verified,
            accepted=accepted,
            duplicate=duplicate,
            reason=reason,
            event_id=eid if isinstance(eid, str) else None,
            type=etype if isinstance(etype, str) else None,
            keyid=keyid,
            event=event,
        )
        self._entries.append(entry)
        return entry

    def entries(self, event_id: str | None = None) -> list[Delivery]:
        return [e for e in self._entries if event_id is None or e.event_id == event_id]

    async def handler(self, request: web.Request) -> web.Response:
        """``GET /sandbox/events[?event_id=ID]``: the deliveries, oldest first."""
        found = self.entries(request.query.get("event_id"))
        doc = {"count": len(found), "events": [asdict(e) for e in found]}
        return web.Response(text=json.dumps(doc, ensure_ascii=False), content_type="application/json")


def keyid_of(signature_input: str | None) -> str | None:
    """The ``keyid`` parameter as sent (for the inbox only; never trusted for anything)."""
    if not signature_input:
        return None
    _, found, rest = signature_input.partition(';keyid="')
    return rest.split('"', 1)[0] if found else None
