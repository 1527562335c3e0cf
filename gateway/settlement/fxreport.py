"""The regulatory foreign-exchange extract (``qrgw settle --fx-report``), as CSV.

Lists the day's settled cross-border payments the FX policy flagged ``report``
(``PaymentRecord.flags``): payer residency and country, both amounts, the USD equivalent
and a purpose code. Amounts here are decimal strings in *major* units (``"150.05"``), the
form a foreign-exchange report is filed in; the settlement report keeps minor units.

USD equivalent, first that applies (column ``usd_source``):
``policy``  — ``reservation["usd_equivalent"]`` recorded by the FX policy at payment time;
``direct``  — one of the two amounts is in USD;
``rates``   — the merchant (else payer) amount at the configured mid rate table, half-up to cents;
``unavailable`` — none of the above (the column is left empty, never guessed).
Travel-rule data (payer account, address, date of birth, national id hash) as the wallet sent
it, with the fields the policy required (``travel_rule_fields``).
Purpose code: ``reservation["purpose_code"]`` when the payment recorded one, else the
default ``GDSV`` (ISO 20022 ExternalPurpose1Code "purchase/sale of goods and services").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any

from fx.currency import exponent
from gateway.settlement.items import EXACT
from schemas.payment import PaymentRecord, PaymentStatus

DEFAULT_PURPOSE_CODE = "GDSV"
REPORT_FLAG = "report"
FX_COLUMNS = (
    "payment_id", "business_day", "created_at", "status", "wallet", "acquirer", "payer_id", "payer_name",
    "payer_residency", "payer_country", "payer_account", "payer_address", "payer_date_of_birth",
    "payer_national_id_hash", "travel_rule_fields", "merchant_name", "merchant_city", "merchant_country",
    "payer_currency", "payer_amount", "merchant_currency", "merchant_amount", "rate",
    "usd_equivalent", "usd_source", "purpose_code", "flags",
)
_SETTLED = frozenset(
    {PaymentStatus.SUCCEEDED, PaymentStatus.CANCELLED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}
)


def major(minor: int, currency: str) -> Decimal:
    e = exponent(currency)
    return Decimal(minor).scaleb(-e).quantize(Decimal(1).scaleb(-e))


def _from_rates(minor: int, currency: str, rates: Mapping[str, str]) -> Decimal | None:
    """``BASE/QUOTE`` rates price one BASE in QUOTE (``USD/KRW = 1385.20``)."""
    with localcontext(EXACT):
        amount = Decimal(minor).scaleb(-exponent(currency))
        try:
            if f"USD/{currency}" in rates:
                usd = amount / Decimal(rates[f"USD/{currency}"])
            elif f"{currency}/USD" in rates:
                usd = amount * Decimal(rates[f"{currency}/USD"])
            else:
                return None
        except (InvalidOperation, ZeroDivisionError):
            return None
        return usd.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def usd_equivalent(rec: PaymentRecord, rates: Mapping[str, str]) -> tuple[Decimal | None, str]:
    """(USD amount in major units, source) per the order in the module docstring."""
    recorded: Any = (rec.reservation or {}).get("usd_equivalent")
    if isinstance(recorded, Mapping) and recorded.get("currency") == "USD":
        try:
            return major(int(str(recorded["value"])), "USD"), "policy"
        except (KeyError, ValueError):
            pass
    for m in (rec.merchant_amount, rec.payer_amount):
        if m.currency == "USD":
            return major(m.minor, "USD"), "direct"
    for m in (rec.merchant_amount, rec.payer_amount):
        usd = _from_rates(m.minor, m.currency, rates)
        if usd is not None:
            return usd, "rates"
    return None, "unavailable"


def reportable(rec: PaymentRecord, day: str) -> bool:
    return (
        rec.business_day == day and rec.route.kind == "cross-border" and REPORT_FLAG in rec.flags
        and rec.status in _SETTLED
    )


def travel_columns(rec: PaymentRecord) -> dict[str, str]:
    """Travel-rule data as sent by the wallet, and the fields the FX policy required of it
    (``reservation["travel_rule"]``; ``account`` falls back to the wallet's payer id, docs/fx.md)."""
    p = rec.payer
    required = (rec.reservation or {}).get("travel_rule") or []
    account = p.account or (p.id if "account" in required else "")
    return {
        "payer_account": account, "payer_address": p.address or "",
        "payer_date_of_birth": p.date_of_birth.isoformat() if p.date_of_birth else "",
        "payer_national_id_hash": p.national_id_hash or "", "travel_rule_fields": " ".join(map(str, required)),
    }


def fx_rows(records: Sequence[PaymentRecord], day: str, rates: Mapping[str, str],
            purpose_code: str = DEFAULT_PURPOSE_CODE) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for rec in sorted((r for r in records if reportable(r, day)), key=lambda r: (r.created_at, r.payment_id)):
        usd, source = usd_equivalent(rec, rates)
        P, M = rec.payer_amount, rec.merchant_amount
        out.append({
            "payment_id": rec.payment_id, "business_day": rec.business_day,
            "created_at": rec.created_at.isoformat().replace("+00:00", "Z"), "status": str(rec.status),
            "wallet": rec.route.wallet, "acquirer": rec.route.acquirer,
            "payer_id": rec.payer.id, "payer_name": rec.payer.name or "",
            "payer_residency": rec.payer.residency, "payer_country": rec.payer.country,
            **travel_columns(rec),
            "merchant_name": rec.merchant.name, "merchant_city": rec.merchant.city,
            "merchant_country": rec.merchant.country,
            "payer_currency": P.currency, "payer_amount": str(major(P.minor, P.currency)),
            "merchant_currency": M.currency, "merchant_amount": str(major(M.minor, M.currency)),
            "rate": str((rec.quote or {}).get("rate", "")),
            "usd_equivalent": "" if usd is None else str(usd), "usd_source": source,
            "purpose_code": str((rec.reservation or {}).get("purpose_code") or purpose_code),
            "flags": " ".join(f for f in rec.flags if not f.startswith("_")),
        })
    return out


def fx_report_csv(records: Sequence[PaymentRecord], day: str, rates: Mapping[str, str],
                  purpose_code: str = DEFAULT_PURPOSE_CODE) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=FX_COLUMNS, lineterminator="\r\n")
    w.writeheader()
    w.writerows(fx_rows(records, day, rates, purpose_code))
    return buf.getvalue()
