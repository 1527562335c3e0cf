"""A partner's frozen batch of one window (PROTOCOL.md §9.1): one row per money movement with
the partner, its positions per currency (fees included), and a content hash over all of it.

Rows name each movement the way the partner was called (§8), so its own file matches them:

| item | wallet row | acquirer row |
|---|---|---|
| payment | ``debit`` of the debit id | ``credit`` of the credit id |
| cancel | ``reversal`` of the debit id (the debit's cancel) | ``reversal`` of ``<payment>-cxl`` |
| refund | ``refund`` of the refund id | ``reversal`` of the refund id |

A payment that FAILED in the window adds ``VOID`` rows for its legs (debit, its cancel, credit,
its reversal ``<payment>-crv``) with status ``VOID``: money may have moved and come back, and
reconciliation checks that it did (docs/settlement.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from gateway.settlement.items import Item
from gateway.settlement.report import margins_json, margins_of, positions_json, positions_of
from schemas.payment import PaymentRecord
from schemas.settlement import BATCH_VERSION

COLUMNS = ("item_kind", "item_id", "payment_id", "business_day", "at", "role", "type", "gateway_ref",
           "partner_ref", "currency", "amount", "fee", "status")
FX_COLUMNS = ("rate", "mid_rate", "mid_equivalent", "margin")
ROLE_TYPES = {("payment", "wallet"): "debit", ("payment", "acquirer"): "credit", ("cancel", "wallet"): "reversal",
              ("cancel", "acquirer"): "reversal", ("refund", "wallet"): "refund", ("refund", "acquirer"): "reversal"}


def debit_id(rec: PaymentRecord) -> str:
    return str(rec.legs.get("debit", {}).get("id") or f"{rec.payment_id}-db")


def credit_id(rec: PaymentRecord) -> str:
    return str(rec.legs.get("credit", {}).get("id") or f"{rec.payment_id}-cr")


def partner_ref(rec: PaymentRecord, leg: str) -> str:
    """The partner's own id for a payment leg, when its answer carried one."""
    for step in rec.legs.get(leg, {}).values():
        if isinstance(step, dict) and step.get("kind") == "succeeded" and step.get("partner_ref"):
            return str(step["partner_ref"])
    return ""


def gateway_ref(rec: PaymentRecord, item: Item, role: str) -> str:
    if item.kind == "payment":
        return debit_id(rec) if role == "wallet" else credit_id(rec)
    if item.kind == "cancel":
        return debit_id(rec) if role == "wallet" else f"{rec.payment_id}-cxl"
    return item.item_id


def _at(item: Item) -> str:
    return item.at.isoformat().replace("+00:00", "Z")


def item_rows(rec: PaymentRecord, item: Item, partner: str, show_fx: bool) -> list[list[str]]:
    """The rows ``item`` gives ``partner`` (two for a partner that is both wallet and acquirer)."""
    out: list[list[str]] = []
    for role, who in (("wallet", item.wallet), ("acquirer", item.acquirer)):
        if who != partner:
            continue
        wallet = role == "wallet"
        ref = partner_ref(rec, "debit" if wallet else "credit") if item.kind == "payment" else ""
        row = [item.kind, item.item_id, item.payment_id, item.business_day, _at(item), role,
               ROLE_TYPES[(item.kind, role)], gateway_ref(rec, item, role), ref,
               item.payer_currency if wallet else item.merchant_currency,
               str(item.payer_amount if wallet else item.merchant_amount),
               str(item.wallet_fee if wallet else item.acquirer_fee), "SUCCEEDED"]
        if show_fx:
            fx = item.cross_border and wallet
            row += [item.rate or "", item.mid_rate or "", str(item.mid_equivalent) if fx else "",
                    str(item.margin) if fx else ""]
        out.append(row)
    return out


def void_rows(rec: PaymentRecord, partner: str, show_fx: bool) -> list[list[str]]:
    """A FAILED payment's legs with ``partner``: whatever moved must have come back."""
    at = rec.updated_at.isoformat().replace("+00:00", "Z")
    legs: list[tuple[str, str, str, str, int]] = []
    if rec.route.wallet == partner:
        c, m = rec.payer_amount.currency, rec.payer_amount.minor
        legs += [("wallet", "debit", debit_id(rec), c, m), ("wallet", "reversal", debit_id(rec), c, m)]
    if rec.route.acquirer == partner:
        c, m = rec.merchant_amount.currency, rec.merchant_amount.minor
        legs += [("acquirer", "credit", credit_id(rec), c, m), ("acquirer", "reversal", f"{rec.payment_id}-crv", c, m)]
    extra = ["", "", "", ""] if show_fx else []
    return [["payment", rec.payment_id, rec.payment_id, rec.business_day, at, role, typ, ref, "", cur, str(amt),
             "0", "VOID", *extra] for role, typ, ref, cur, amt in legs]


def content_hash(doc: dict[str, Any]) -> str:
    """sha256 over the canonical JSON (sorted keys, no spaces) of the batch without its hash."""
    body = {k: v for k, v in doc.items() if k != "content_hash"}
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def build_batch(window_id: str, partner: str, closed_at: str, zone: str, items: Sequence[Item],
                rows: Iterable[list[str]], show_fx: bool) -> dict[str, Any]:
    """The frozen batch: ``items`` are the partner's settled items (for positions), ``rows``
    their movements (and VOID legs)."""
    doc: dict[str, Any] = {
        "batch_id": f"{window_id}:{partner}",
        "window_id": window_id,
        "partner_id": partner,
        "version": BATCH_VERSION,
        "closed_at": closed_at,
        "zone": zone,
        "columns": [*COLUMNS, *(FX_COLUMNS if show_fx else ())],
        "rows": list(rows),
        "positions": positions_json(positions_of(items, partner)),
    }
    if show_fx:
        doc["fx_margin"] = margins_json(margins_of(items))
    doc["content_hash"] = content_hash(doc)
    return doc


def batch_objects(batch: dict[str, Any]) -> list[dict[str, str]]:
    """The rows as objects keyed by column (the JSON answer to partners)."""
    cols = batch["columns"]
    return [dict(zip(cols, r, strict=True)) for r in batch["rows"]]
