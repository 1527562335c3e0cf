"""Helpers of the FX tests (identity, registry, screening, limits): a real policy on a real store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fx.money import Money
from fx.policy import FxPolicy, PolicyDecision
from fx.rates import StaticRates
from fx.registry import RegistryGuard
from gateway.config import load_settings
from schemas.payment import Payer

RATES = StaticRates.from_strings({"USD/KRW": "1000", "USD/CNY": "8"})  # round numbers: exact USD equivalents
AT = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)  # the 2026 rules: USD 100,000 a year for a KR resident
NID = "a" * 64  # one person's national id hash


def kr_payer(pid: str = "u-1", **kw: Any) -> Payer:
    return Payer(id=pid, residency="resident", country="KR", name="Kim Minji", **kw)


def make_policy(store: Any, registry: RegistryGuard | None = None) -> FxPolicy:
    return FxPolicy(load_settings().fx, store, RATES, registry=registry)  # the shipped rule sets


async def pay_abroad(
    policy: FxPolicy, rid: str, usd: str, *, payer: Payer | None = None, wallet: str = "kakaopay-kr",
    at: datetime = AT,
) -> PolicyDecision:
    """A Korean resident paying a US merchant in USD (no prepaid ceiling)."""
    amount = Money.parse(usd, "USD")
    return await policy.reserve(
        reservation_id=rid, payer=payer or kr_payer(), wallet=wallet, merchant_country="US",
        merchant_amount=amount, payer_amount=amount, at=at,
    )
