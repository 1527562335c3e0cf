"""Travel-rule data (FATF Recommendation 16): the payer fields each threshold requires.

``travel_rule_fields`` maps a USD threshold to the fields required *above* it; an entry
``"address|date_of_birth|national_id_hash"`` is satisfied by any one of them. ``account`` is
satisfied by ``payer.account`` or, absent, by the wallet's payer id: the wallet's reference of
the account debited (R.16 allows a unique reference where there is no account number).
"""

from __future__ import annotations

from decimal import Decimal

from schemas.errors import DataRequired
from schemas.payment import Payer

__all__ = ["check_travel_data", "required_fields"]


def required_fields(fields_by_threshold: dict[str, list[str]] | None, usd: Decimal) -> list[str]:
    """Every requirement of the thresholds ``usd`` passes (strictly above), in threshold order."""
    out: list[str] = []
    for threshold, names in sorted((fields_by_threshold or {}).items(), key=lambda kv: Decimal(kv[0])):
        if usd > Decimal(threshold):
            out += [n for n in names if n not in out]
    return out


def _present(payer: Payer, name: str) -> bool:
    if name == "account":
        return bool((payer.account or payer.id).strip())
    v = getattr(payer, name)
    return v is not None and (not isinstance(v, str) or bool(v.strip()))


def check_travel_data(payer: Payer, required: list[str]) -> None:
    """DataRequired (``field`` = the first missing requirement) unless every one is present."""
    for req in required:
        alternatives = req.split("|")
        if not any(_present(payer, a) for a in alternatives):
            shown = " or ".join(f"payer.{a}" for a in alternatives)
            raise DataRequired(f"{shown} is required for this amount (travel rule)", field=f"payer.{alternatives[0]}")

