"""After a soak: learn the fate of every request, wait for recovery, and check the books.

``Recovery`` signs as each calling partner (PROTOCOL.md §2): it re-sends every request whose
answer was lost (same ``payment_request_id`` and body: idempotent, so it either returns the
payment or creates it once) and inquires every accepted payment until it is final. ``verify``
then compares the gateway's view with the sandboxes' ledgers and webhook inboxes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from gateway.signing import Signer, load_private_key, sign_request

FINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "PARTIALLY_REFUNDED", "REFUNDED"})
EVENT_OF = {"SUCCEEDED": "payment.succeeded", "FAILED": "payment.failed", "CANCELLED": "payment.cancelled",
            "REFUNDED": "payment.refunded"}


@dataclass
class Payment:
    payment_id: str
    partner: str
    status: str
    wallet: str | None = None
    acquirer: str | None = None


@dataclass
class Fate:
    accepted: dict[str, Payment] = field(default_factory=dict)  # payment_id -> last view
    rejected: Counter[str] = field(default_factory=Counter)  # 4xx code -> count
    unresolved: int = 0  # requests whose fate stayed unknown even after re-sending
    resent: int = 0


class Recovery:
    def __init__(self, url: str, partners: dict[str, dict[str, Any]], timeout_s: float = 35.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.signers = {pid: Signer(p["keyid"], p["alg"], load_private_key(Path(p["private_key"]), p["alg"]))
                        for pid, p in partners.items()}
        self.fate = Fate()

    async def call(self, session: aiohttp.ClientSession, partner: str, method: str, path: str,
                   body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        url = self.url + path
        raw = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        headers: dict[str, str] = {"Content-Type": "application/json"} if raw else {}
        sign_request(self.signers[partner], method=method, url=url, headers=headers, body=raw)
        try:
            async with session.request(method, url, data=raw, headers=headers) as resp:
                data = await resp.read()
                try:
                    doc = json.loads(data) if data else {}
                except ValueError:
                    doc = {}
                return resp.status, doc if isinstance(doc, dict) else {}
        except (TimeoutError, aiohttp.ClientError, OSError):
            return 0, {}

    def note(self, partner: str, status: int, doc: dict[str, Any]) -> bool:
        """Record an answer; True when the request's fate is known."""
        if 200 <= status < 300 and doc.get("payment_id"):
            route = doc.get("route") or {}
            self.fate.accepted[doc["payment_id"]] = Payment(
                doc["payment_id"], partner, str(doc.get("status")), route.get("wallet"), route.get("acquirer"))
            return True
        if 400 <= status < 500:
            self.fate.rejected[str(doc.get("code") or status)] += 1
            return True
        return False

    async def settle_requests(self, records: list[dict[str, Any]], deadline: float) -> None:
        """Every request ends accepted or rejected: lost answers are re-sent (idempotent)."""
        lost = []
        for r in records:
            http = r["http"]
            status = int(http) if http.isdigit() else 0
            if not self.note(r["partner"], status, r):
                lost.append(r)
        async with aiohttp.ClientSession(timeout=self.timeout) as session:
            sem = asyncio.Semaphore(16)

            async def resend(r: dict[str, Any]) -> None:
                async with sem:
                    while time.monotonic() < deadline:
                        self.fate.resent += 1
                        status, doc = await self.call(session, r["partner"], "POST", "/v1/payments", r["body"])
                        if self.note(r["partner"], status, doc):
                            return
                        await asyncio.sleep(1.0)
                    self.fate.unresolved += 1

            await asyncio.gather(*(resend(r) for r in lost))

    async def until_final(self, deadline: float) -> None:
        """Inquire every accepted payment until it is final (or the deadline passes)."""
        async with aiohttp.ClientSession(timeout=self.timeout) as session:
            sem = asyncio.Semaphore(16)

            async def inquire(p: Payment) -> None:
                async with sem:
                    status, doc = await self.call(session, p.partner, "GET", f"/v1/payments/{p.payment_id}")
                    if status == 200:
                        self.note(p.partner, status, doc)

            first = True  # every payment once (its route and current status), then the unfinished ones
            while time.monotonic() < deadline:
                pending = [p for p in self.fate.accepted.values() if first or p.status not in FINAL]
                first = False
                if not pending:
                    return
                await asyncio.gather(*(inquire(p) for p in pending))
                await asyncio.sleep(1.0)


def webhooks_missing(fate: Fate, state: dict[str, Any]) -> list[str]:
    """Final payments whose event did not reach every partner on the route."""
    got: dict[str, set[tuple[str, str]]] = {}
    for pid, events in state["events"].items():
        got[pid] = {(str(t), str(p)) for _e, t, p in events}
    missing = []
    for p in fate.accepted.values():
        kind = EVENT_OF.get(p.status)
        if kind is None:
            continue
        for party in {x for x in (p.wallet, p.acquirer) if x}:
            if (kind, p.payment_id) not in got.get(party, set()):
                missing.append(f"{p.payment_id}: {kind} not delivered to {party}")
    return missing


def verify(fate: Fate, state: dict[str, Any], *, webhooks: bool) -> tuple[dict[str, int], list[str]]:
    """Counts and violations; see the soak's docstring for each rule."""
    bad: list[str] = []
    ledger: dict[str, dict[str, int]] = state["payments"]
    counts: Counter[str] = Counter()
    for p in fate.accepted.values():
        counts[f"status {p.status}"] += 1
        if p.status not in FINAL:
            bad.append(f"{p.payment_id}: still {p.status} after recovery")
        s = ledger.get(p.payment_id, {})
        payer_out = s.get("debited", 0) - s.get("returned", 0)
        merchant_in = s.get("credited", 0) - s.get("credit_reversed", 0)
        if s.get("live_debits", 0) > 1:
            bad.append(f"{p.payment_id}: payer debited {s['live_debits']} times")
        if p.status == "SUCCEEDED" and (payer_out <= 0 or merchant_in <= 0):
            bad.append(f"{p.payment_id}: SUCCEEDED but ledgers say payer out {payer_out}, merchant in {merchant_in}")
        if p.status in ("FAILED", "CANCELLED", "REFUNDED") and (payer_out != 0 or merchant_in != 0):
            bad.append(f"{p.payment_id}: {p.status} but ledgers say payer out {payer_out}, merchant in {merchant_in}")
    for pid, s in ledger.items():
        if pid not in fate.accepted and (s.get("debited", 0) - s.get("returned", 0) > 0
                                         or s.get("credited", 0) - s.get("credit_reversed", 0) > 0):
            bad.append(f"{pid}: money moved for a payment no caller ever got back")
    bad += [f"ledger: {v}" for v in state["violations"]]
    counts["ledger payments"] = len(ledger)
    counts["ledger violations"] = len(state["violations"])
    if webhooks:
        missing = webhooks_missing(fate, state)
        counts["webhooks missing"] = len(missing)
        bad += missing
    counts["webhooks received"] = sum(len(v) for v in state["events"].values())
    return dict(counts), bad
