"""Reconciliation (PROTOCOL.md §9.1): a partner's own file of one window against its frozen batch.

Importers turn each family's file into neutral rows (``FileRow``): the ``qrgw`` family's §9.1 CSV,
and the Alipay+-style and Kakao Pay-style families' own formats (the public fields relied on are
listed in ``adapters/sandbox/files.py``, which writes them, and docs/settlement.md). A row of the
latter two can stand for more than one of our movement types (Alipay+ ``PAYMENT`` is a debit to a
wallet, a credit to an acquirer), so a row carries the set of types it may be.

Matching (``reconcile``): each file row finds the batch row with its ``gateway_ref`` and one of its
types, else (no gateway ref known) the one with its ``partner_ref``. Then, per difference, one
exception of kind ``missing_at_partner`` (a settled batch row no file row matched),
``missing_at_gateway`` (a successful file row matching nothing), ``amount_differs`` (currency or
minor units), ``status_differs`` (the partner says FAILED for a settled movement, or kept money
the gateway recorded as a failed payment: its VOID legs must net to zero), ``duplicate`` (a
second file row for an already matched movement). A FAILED file row that matches nothing moved
no money and is no difference. Exception ids hash (window, partner, kind, type, refs, how many
times the same difference occurred before in this file), so importing the same file again adds
nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from schemas.errors import NotFound, ValidationFailed
from schemas.settlement import ReconException

TYPES = frozenset({"debit", "credit", "refund", "reversal"})
KINDS = ("missing_at_partner", "missing_at_gateway", "amount_differs", "status_differs", "duplicate")


@dataclass(frozen=True, slots=True)
class FileRow:
    line: int
    partner_ref: str
    gateway_ref: str
    types: frozenset[str]
    currency: str
    amount: int
    status: str  # SUCCEEDED | FAILED


def _rows(text: str, header: Sequence[str], family: str) -> list[tuple[int, dict[str, str]]]:
    lines = text.lstrip("\ufeff").splitlines()
    if lines and lines[-1].strip() == "<END>":
        lines = lines[:-1]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    missing = [h for h in header if h not in (reader.fieldnames or ())]
    if missing:
        raise ValidationFailed(f"{family} file: header lacks {', '.join(missing)}")
    return [(n, row) for n, row in enumerate(reader, start=2) if any(v for v in row.values())]


def _amount(value: str, line: int) -> int:
    v = (value or "").strip()
    if not v.isdigit():
        raise ValidationFailed(f"line {line}: amount {v[:20]!r} is not minor units")
    return int(v)


def _currency(value: str, line: int) -> str:
    v = (value or "").strip()
    if len(v) != 3 or not v.isalpha() or not v.isupper():
        raise ValidationFailed(f"line {line}: currency {v[:8]!r} is not ISO 4217")
    return v


def parse_qrgw(text: str) -> list[FileRow]:
    header = ("business_day", "partner_ref", "gateway_ref", "type", "currency", "amount", "status")
    out: list[FileRow] = []
    for n, r in _rows(text, header, "qrgw"):
        typ, status = r["type"].strip(), r["status"].strip()
        if typ not in TYPES:
            raise ValidationFailed(f"line {n}: type {typ[:16]!r} is not debit, credit, refund or reversal")
        if status not in ("SUCCEEDED", "FAILED"):
            raise ValidationFailed(f"line {n}: status {status[:16]!r} is not SUCCEEDED or FAILED")
        out.append(FileRow(n, r["partner_ref"].strip(), r["gateway_ref"].strip(), frozenset({typ}),
                           _currency(r["currency"], n), _amount(r["amount"], n), status))
    return out


_ALIPAY = {"PAYMENT": frozenset({"debit", "credit"}), "REFUND": frozenset({"refund", "reversal"}),
           "CANCEL": frozenset({"reversal"})}


def parse_alipayplus(text: str) -> list[FileRow]:
    header = ("transactionId", "transactionRequestId", "transactionType", "transactionAmountValue",
              "transactionAmountCurrency")
    out: list[FileRow] = []
    for n, r in _rows(text, header, "alipayplus"):
        typ = r["transactionType"].strip().upper()
        if typ not in _ALIPAY:
            raise ValidationFailed(f"line {n}: transactionType {typ[:16]!r} is not PAYMENT, REFUND or CANCEL")
        out.append(FileRow(n, r["transactionId"].strip(), r["transactionRequestId"].strip(), _ALIPAY[typ],
                           _currency(r["transactionAmountCurrency"], n), _amount(r["transactionAmountValue"], n),
                           "SUCCEEDED"))  # the file lists successful transactions only
    return out


def parse_kakaopay(text: str, currency: str = "KRW") -> list[FileRow]:
    header = ("tid", "partner_order_id", "partner_cancel_id", "payment_action_type", "amount")
    out: list[FileRow] = []
    for n, r in _rows(text, header, "kakaopay"):
        action, cancel_id = r["payment_action_type"].strip().upper(), r["partner_cancel_id"].strip()
        if action == "PAYMENT":
            types = frozenset({"debit", "credit"})
        elif action == "CANCEL":
            types = frozenset({"refund", "reversal"}) if cancel_id else frozenset({"reversal"})
        else:
            raise ValidationFailed(f"line {n}: payment_action_type {action[:16]!r} is not PAYMENT or CANCEL")
        out.append(FileRow(n, r["tid"].strip(), cancel_id or r["partner_order_id"].strip(), types, currency,
                           _amount(r["amount"], n), "SUCCEEDED"))  # one row per successful action
    return out


def parse_file(family: str, text: str, currency: str) -> list[FileRow]:
    if family == "qrgw":
        return parse_qrgw(text)
    if family == "alipayplus":
        return parse_alipayplus(text)
    if family == "kakaopay":
        return parse_kakaopay(text, currency)
    raise ValidationFailed(f"family {family[:16]!r}: no importer")


def _exception(ctx: Mapping[str, str], seen: dict[tuple[str, ...], int], kind: str, typ: str, gref: str,
               pref: str, currency: str, g_amt: str | None, p_amt: str | None, g_st: str | None,
               p_st: str | None) -> dict[str, Any]:
    key = (kind, typ, gref, pref)
    n = seen[key] = seen.get(key, 0) + 1
    raw = "|".join((ctx["window_id"], ctx["partner_id"], *key, str(n)))
    return {
        "exception_id": "rx_" + hashlib.sha256(raw.encode()).hexdigest()[:24],
        "window_id": ctx["window_id"], "partner_id": ctx["partner_id"], "kind": kind, "type": typ,
        "gateway_ref": gref, "partner_ref": pref, "currency": currency,
        "gateway_amount": g_amt, "partner_amount": p_amt, "gateway_status": g_st, "partner_status": p_st,
        "file_sha256": ctx["file_sha256"], "detected_at": ctx["at"], "resolved_at": None, "note": None,
    }


def reconcile(batch: Mapping[str, Any], rows: Sequence[FileRow], file_sha256: str,
              at: datetime | None = None) -> list[dict[str, Any]]:
    """Every difference between ``batch`` (frozen) and the partner's file ``rows``."""
    cols = list(batch["columns"])
    gw = [dict(zip(cols, r, strict=True)) for r in batch["rows"]]
    by_ref: dict[str, list[int]] = defaultdict(list)
    by_pref: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(gw):
        by_ref[g["gateway_ref"]].append(i)
        if g["partner_ref"]:
            by_pref[g["partner_ref"]].append(i)
    ctx = {"window_id": str(batch["window_id"]), "partner_id": str(batch["partner_id"]), "file_sha256": file_sha256,
           "at": (at or datetime.now(UTC)).isoformat().replace("+00:00", "Z")}
    seen: dict[tuple[str, ...], int] = {}
    out: list[dict[str, Any]] = []
    matched: dict[int, FileRow] = {}
    voids: dict[str, int] = defaultdict(int)  # payment id -> money the partner kept on a failed payment

    def ex(kind: str, g: Mapping[str, str] | None, f: FileRow | None) -> None:
        typ = g["type"] if g else "/".join(sorted(f.types)) if f else ""
        out.append(_exception(
            ctx, seen, kind, typ, g["gateway_ref"] if g else f.gateway_ref if f else "",
            f.partner_ref if f else g["partner_ref"] if g else "", g["currency"] if g else f.currency if f else "",
            g["amount"] if g else None, str(f.amount) if f else None, g["status"] if g else None,
            f.status if f else None))

    for f in rows:
        cands = [i for i in by_ref.get(f.gateway_ref, []) if gw[i]["type"] in f.types]
        if not cands and f.partner_ref:
            cands = [i for i in by_pref.get(f.partner_ref, []) if gw[i]["type"] in f.types]
        free = [i for i in cands if i not in matched]
        if not free:
            if cands and f.status == "SUCCEEDED":
                ex("duplicate", gw[cands[0]], f)
            elif not cands and f.status == "SUCCEEDED":
                ex("missing_at_gateway", None, f)
            continue
        same = [i for i in free if gw[i]["amount"] == str(f.amount)]
        i = (same or free)[0]
        matched[i] = f
        g = gw[i]
        if g["status"] == "VOID":
            if f.status == "SUCCEEDED":
                voids[g["payment_id"]] += f.amount if g["type"] in ("debit", "credit") else -f.amount
            continue
        if f.status != "SUCCEEDED":
            ex("status_differs", g, f)
        elif (f.currency, str(f.amount)) != (g["currency"], g["amount"]):
            ex("amount_differs", g, f)
    for i, g in enumerate(gw):
        if i not in matched and g["status"] == "SUCCEEDED":
            ex("missing_at_partner", g, None)
    for pid, kept in sorted(voids.items()):
        if kept:
            g = next(x for x in gw if x["payment_id"] == pid and x["status"] == "VOID")
            out.append(_exception(ctx, seen, "status_differs", "void", pid, "", g["currency"], "0", str(kept),
                                  "FAILED", "SUCCEEDED"))
    return out


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ImportResult:
    rows: int
    exceptions: list[dict[str, Any]]  # every difference found in this file
    new: int  # of which not stored before (0 for a re-import of the same file)


class ReconStore(Protocol):
    async def get_batch(self, window_id: str, partner_id: str) -> Mapping[str, Any] | None: ...

    async def add_recon_exceptions(self, exceptions: Sequence[Mapping[str, Any]]) -> int: ...


async def import_file(store: ReconStore, partner: str, window_id: str, family: str, currency: str,
                      data: bytes, at: datetime | None = None) -> ImportResult:
    """Reconcile ``data`` (the partner's file of ``window_id``) against its frozen batch and store
    the differences. NotFound while the window is not closed for that partner."""
    batch = await store.get_batch(window_id, partner)
    if batch is None:
        raise NotFound(f"window {window_id} is not closed for {partner}", code="SETTLEMENT_NOT_FOUND")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed("the file is not UTF-8") from None
    rows = parse_file(family, text, currency)
    found = reconcile(batch, rows, file_digest(data), at)
    for e in found:
        ReconException.model_validate(e)  # the stored document's contract (schemas/settlement.py)
    return ImportResult(len(rows), found, await store.add_recon_exceptions(found))
