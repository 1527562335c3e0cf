"""Whose limit it is: counters keyed by (wallet, payer id), joined by a national id hash; no
answer (errors, GET /v1/limits view) ever shows another wallet's payer's counters. Each real
store in turn (memory, Redis, Redis Cluster)."""

from __future__ import annotations

import asyncio

import pytest
from fx_kit import AT, NID, kr_payer, make_policy, pay_abroad

from fx.identity import holder_of, national_holder, wallet_holder
from fx.limits import payer_limits
from fx.policy import FxPolicy
from gateway.testing.redis import StoreCase
from schemas.errors import LimitExceeded

KAKAO, TOSS = "kakaopay-kr", "tosspay-kr"


@pytest.fixture
def policy(store_case: StoreCase) -> FxPolicy:
    return make_policy(store_case.store)


async def spend(policy: FxPolicy, wallet: str, n: int, prefix: str, **payer: str) -> None:
    for i in range(n):
        await pay_abroad(policy, f"{prefix}{i}", "5000", wallet=wallet, payer=kr_payer(**payer))


def annual(view: dict[str, object]) -> dict[str, object]:
    rules = view["rules"]
    assert isinstance(rules, list)
    return next(r for r in rules if r["rule"] == "resident_annual_usd" and r["jurisdiction"] == "KR")


async def test_two_wallets_with_the_same_payer_id_keep_separate_counters(policy: FxPolicy) -> None:
    await spend(policy, KAKAO, 20, "k")  # USD 100,000: this payer's year is spent at KAKAO
    with pytest.raises(LimitExceeded) as err:
        await pay_abroad(policy, "k-over", "0.01", wallet=KAKAO)
    assert err.value.extra["remaining"] == {"currency": "USD", "value": "0"}
    # the same string at another wallet is another person: all of its allowance is left ...
    await pay_abroad(policy, "t0", "5000", wallet=TOSS)
    kakao, toss = await payer_limits(policy, KAKAO, "u-1", AT), await payer_limits(policy, TOSS, "u-1", AT)
    assert annual(kakao)["used"] == {"currency": "USD", "value": "10000000"}
    # ... and what it reads is its own counter only, never the other wallet's
    assert annual(toss)["used"] == {"currency": "USD", "value": "500000"}
    assert annual(toss)["remaining"] == {"currency": "USD", "value": "9500000"}
    assert kakao["identity"] == toss["identity"] == "wallet"
    assert wallet_holder(KAKAO, "u-1") != wallet_holder(TOSS, "u-1")


async def test_a_refusal_names_only_the_callers_own_counter(policy: FxPolicy) -> None:
    await spend(policy, TOSS, 19, "t")  # another wallet's customer with the same id: USD 95,000
    await spend(policy, KAKAO, 2, "k")  # ours: USD 10,000
    with pytest.raises(LimitExceeded):
        await pay_abroad(policy, "over", "5000.01", wallet=KAKAO)  # per-payment cap, not the other's counter
    await spend(policy, KAKAO, 18, "k2")  # ours reaches USD 100,000
    with pytest.raises(LimitExceeded) as err:
        await pay_abroad(policy, "over2", "1", wallet=KAKAO)
    e = err.value
    assert e.detail.endswith("; 0.00 USD remains")  # ours; the other wallet's payer has 5000.00 left
    assert e.extra["remaining"] == {"currency": "USD", "value": "0"}


async def test_a_national_id_joins_the_payers_of_two_wallets(policy: FxPolicy) -> None:
    await spend(policy, KAKAO, 10, "k", pid="kim-at-kakao", national_id_hash=NID)
    await spend(policy, TOSS, 10, "t", pid="kim-at-toss", national_id_hash=NID)
    with pytest.raises(LimitExceeded) as err:  # one person: USD 100,000 across both wallets
        await pay_abroad(policy, "over", "0.01", wallet=TOSS, payer=kr_payer("kim-at-toss", national_id_hash=NID))
    assert err.value.extra["limit"] == "resident_annual"
    # each wallet sees the person's counter under its own payer id (bound when it sent the id) ...
    for wallet, pid in ((KAKAO, "kim-at-kakao"), (TOSS, "kim-at-toss")):
        view = await payer_limits(policy, wallet, pid, AT)
        assert view["identity"] == "national"
        assert annual(view)["remaining"] == {"currency": "USD", "value": "0"}
    # ... but a wallet that never sent this national id for a payer id cannot reach it
    stranger = await payer_limits(policy, KAKAO, "kim-at-toss", AT)
    assert stranger["identity"] == "wallet" and annual(stranger)["used"] == {"currency": "USD", "value": "0"}
    assert holder_of(kr_payer(national_id_hash=NID), KAKAO) == national_holder(NID)


async def test_concurrent_payments_of_one_person_through_two_wallets_never_pass_the_cap(policy: FxPolicy) -> None:
    async def one(i: int) -> bool:
        wallet = (KAKAO, TOSS)[i % 2]
        try:
            payer = kr_payer(f"p-{wallet}", national_id_hash=NID)
            await pay_abroad(policy, f"c{i}", "5000", wallet=wallet, payer=payer)
            return True
        except LimitExceeded:
            return False

    results = await asyncio.gather(*(one(i) for i in range(30)))
    assert sum(results) == 20  # USD 100,000 / 5,000
    view = await payer_limits(policy, KAKAO, f"p-{KAKAO}", AT)
    assert annual(view)["used"] == {"currency": "USD", "value": "10000000"}
