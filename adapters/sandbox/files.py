"""Sandbox partners' settlement files (``GET /sandbox/settlement-file?day=``), written from their
own ledger journal in their family's format (docs/settlement.md "Partner files").

- ``qrgw``: PROTOCOL.md §9.1, every movement (FAILED ones too).
- ``alipayplus``: modelled on the Alipay+ / Antom settlement "transaction items" files: camelCase
  columns ``transactionId`` (the partner's id), ``transactionRequestId`` (the request id the
  gateway sent: paymentRequestId / refundRequestId / ...), ``transactionType`` (PAYMENT, REFUND,
  CANCEL), ``transactionTime`` (ISO 8601 with offset), ``transactionAmountValue`` (minor units, as
  Alipay+ ``Amount.value``) and ``transactionAmountCurrency``; successful transactions only;
  the last line is ``<END>``.
- ``kakaopay``: modelled on Kakao Pay's order inquiry (``cid``, ``tid``, ``partner_order_id``,
  ``payment_action_details[]`` with ``aid``, ``payment_action_type`` PAYMENT / CANCEL, ``amount``,
  ``approved_at`` in KST without offset) plus the ``partner_cancel_id`` a cancel was sent with;
  one row per successful action.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence

from adapters.sandbox.ledger import Movement

QRGW_HEADER = ("business_day", "partner_ref", "gateway_ref", "type", "currency", "amount", "status")
ALIPAY_HEADER = ("transactionId", "transactionRequestId", "transactionType", "transactionTime",
                 "transactionAmountValue", "transactionAmountCurrency")
KAKAO_HEADER = ("cid", "tid", "aid", "partner_order_id", "partner_cancel_id", "payment_action_type", "amount",
                "approved_at")
_ALIPAY_TYPES = {"debit": "PAYMENT", "credit": "PAYMENT", "refund": "REFUND", "reversal": "CANCEL"}


def _csv(header: Sequence[str], rows: Sequence[Sequence[str]], trailer: str = "") -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue() + (trailer + "\r\n" if trailer else "")


def qrgw_file(moves: Sequence[Movement], client_id: str | None = None) -> str:
    return _csv(QRGW_HEADER, [(m.day, m.partner_ref, m.gateway_ref, m.type, m.currency, str(m.amount), m.status)
                              for m in moves])


def alipayplus_file(moves: Sequence[Movement], client_id: str | None = None) -> str:
    rows = [(m.partner_ref, m.gateway_ref, _ALIPAY_TYPES[m.type], m.at.isoformat(timespec="seconds"),
             str(m.amount), m.currency) for m in moves if m.status == "SUCCEEDED"]
    return _csv(ALIPAY_HEADER, rows, "<END>")


def kakaopay_file(moves: Sequence[Movement], client_id: str | None = None) -> str:
    rows = []
    for m in moves:
        if m.status != "SUCCEEDED":
            continue
        pay = m.type in ("debit", "credit")
        # A cancel names its order (the original id) and, unless it gives the whole debit back,
        # the partner_cancel_id it was sent with.
        order = m.gateway_ref if pay else m.of
        cancel = "" if pay or m.gateway_ref == m.of else m.gateway_ref
        rows.append((client_id or "", m.partner_ref, f"A{m.partner_ref}", order, cancel,
                     "PAYMENT" if pay else "CANCEL", str(m.amount), m.at.strftime("%Y-%m-%dT%H:%M:%S")))
    return _csv(KAKAO_HEADER, rows)


WRITERS: dict[str, Callable[[Sequence[Movement], str | None], str]] = {
    "qrgw": qrgw_file, "alipayplus": alipayplus_file, "kakaopay": kakaopay_file,
}
