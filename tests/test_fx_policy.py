"""FX policy: each limit at / just below / just above, Seoul year boundary, dated rule change,
flags, release, and concurrent payments of one payer never passing a cap.

The ledger is each real Store in turn (``store_case``: MemoryStore, RedisStore, RedisStore on a
Cluster), so the caps hold on the counters the gateway really uses."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from fx.identity import holder_of
from fx.money import Money
from fx.policy import FxPolicy
from fx.ports import LimitLedger
from fx.rates import StaticRates
from fx.settings import FXSettings, PolicyRuleSet, PolicySettings
from gateway.config import load_settings
from gateway.testing.redis import StoreCase
from schemas.errors import DataRequired, LimitExceeded
from schemas.payment import Payer

RATES = StaticRates.from_strings({"USD/KRW": "1000", "USD/CNY": "8"})  # round numbers: exact USD equivalents
MID_2025 = datetime(2025, 6, 1, 3, 0, tzinfo=UTC)
KIM = Payer(id="kim", residency="resident", country="KR", name="Kim Minji")
WANG = Payer(id="wang", residency="non-resident", country="CN", name="Wang Fang", date_of_birth=date(1990, 5, 4))
WALLET = "kakaopay-kr"  # the wallet whose payer id these are


@pytest.fixture
def ledger(store_case: StoreCase) -> LimitLedger:
    return store_case.store


@pytest.fixture
def policy(ledger: LimitLedger) -> FxPolicy:
    return FxPolicy(load_settings().fx, ledger, RATES)  # the shipped rule sets


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


async def abroad(
    policy: FxPolicy,
    rid: str,
    amount: Money,
    at: datetime = MID_2025,
    payer: Payer = KIM,
    payer_amount: Money | None = None,
) -> tuple[str, ...]:
    """A Korean resident paying a US merchant (payer pays USD unless told: no prepaid ceiling)."""
    d = await policy.reserve(
        reservation_id=rid,
        payer=payer,
        wallet=WALLET,
        merchant_country="US",
        merchant_amount=amount,
        payer_amount=payer_amount or amount,
        at=at,
    )
    return d.flags


async def inbound(
    policy: FxPolicy, rid: str, krw: int, at: datetime = MID_2025, payer: Payer = WANG
) -> tuple[str, ...]:
    d = await policy.reserve(
        reservation_id=rid,
        payer=payer,
        wallet=WALLET,
        merchant_country="KR",
        merchant_amount=Money(krw, "KRW"),
        payer_amount=Money(krw * 8 // 10, "CNY"),
        at=at,
    )
    return d.flags


def test_rules_in_force_come_from_dated_config_sets(policy: FxPolicy) -> None:
    old, new = policy.rules_at(date(2025, 12, 31)), policy.rules_at(date(2026, 1, 1))
    assert (old.resident_annual_usd, new.resident_annual_usd) == (Decimal(50000), Decimal(100000))
    assert old.resident_per_payment_usd == new.resident_per_payment_usd == Decimal(5000)  # inherited
    assert new.prepaid_ceiling_krw == Decimal(2000000) and new.nonresident_daily_usd == Decimal(50000)
    assert policy.rules_at(date(2023, 1, 1)).resident_annual_usd is None  # before any set: no rules
    assert any("100,000" in line for line in new.describe())


@pytest.mark.parametrize(("amount", "ok"), [("4999.99", True), ("5000", True), ("5000.01", False)])
async def test_per_payment_cap(policy: FxPolicy, amount: str, ok: bool) -> None:
    if ok:
        await abroad(policy, "p1", usd(amount))
        return
    with pytest.raises(LimitExceeded) as err:
        await abroad(policy, "p1", usd(amount))
    e = err.value
    assert e.code == "FX_LIMIT_EXCEEDED" and e.extra["limit"] == "resident_per_payment"
    assert e.extra["limit_value"] == {"currency": "USD", "value": "500000"}


@pytest.mark.parametrize(("krw", "ok"), [(1_999_999, True), (2_000_000, True), (2_000_001, False)])
async def test_prepaid_ceiling(policy: FxPolicy, krw: int, ok: bool) -> None:
    merchant = Money(krw * 8 // 1000, "CNY")  # a Shanghai merchant; the payer pays from a KRW balance
    call = policy.reserve(
        reservation_id="p1",
        payer=KIM,
        wallet=WALLET,
        merchant_country="CN",
        merchant_amount=merchant,
        payer_amount=Money(krw, "KRW"),
        at=MID_2025,
    )
    if ok:
        assert (await call).reservation is not None
        return
    with pytest.raises(LimitExceeded) as err:
        await call
    assert err.value.extra["limit"] == "prepaid_ceiling"
    assert err.value.extra["limit_value"] == {"currency": "KRW", "value": "2000000"}


@pytest.mark.parametrize(("last", "ok"), [("4999.98", True), ("4999.99", True), ("5000", False)])
async def test_annual_cap_at_below_above(policy: FxPolicy, ledger: LimitLedger, last: str, ok: bool) -> None:
    for i in range(9):
        await abroad(policy, f"p{i}", usd("5000"))
    await abroad(policy, "cent", usd("0.01"))  # USD 45,000.01 used: 4,999.99 remains of 50,000
    if ok:
        await abroad(policy, "last", usd(last))
        assert await ledger.limit_usage(holder_of(KIM, WALLET), "KR:annual:2025") == 4_500_001 + usd(last).minor
        return
    with pytest.raises(LimitExceeded) as err:
        await abroad(policy, "last", usd(last))
    assert err.value.extra == {
        "limit": "resident_annual",
        "limit_value": {"currency": "USD", "value": "5000000"},
        "remaining": {"currency": "USD", "value": "499999"},
        "window": "2025",
        "jurisdiction": "KR",
    }
    assert await ledger.limit_usage(holder_of(KIM, WALLET), "KR:annual:2025") == 4_500_001  # nothing reserved


async def test_year_boundary_is_counted_in_seoul(policy: FxPolicy, ledger: LimitLedger) -> None:
    for i in range(10):
        await abroad(policy, f"p{i}", usd("5000"), at=datetime(2025, 12, 31, 14, 0, tzinfo=UTC))
    with pytest.raises(LimitExceeded):  # 23:59:59 on Dec 31 in Seoul: still 2025 and its USD 50,000
        await abroad(policy, "late", usd("0.01"), at=datetime(2025, 12, 31, 14, 59, 59, tzinfo=UTC))
    await abroad(policy, "new", usd("5000"), at=datetime(2025, 12, 31, 15, 0, tzinfo=UTC))  # 00:00 Jan 1 KST
    assert await ledger.limit_usage(holder_of(KIM, WALLET), "KR:annual:2026") == 500_000


async def test_new_cap_applies_on_its_effective_date(policy: FxPolicy) -> None:
    jan1 = datetime(2025, 12, 31, 15, 0, tzinfo=UTC)  # 2026-01-01 00:00 in Seoul: USD 100,000
    for i in range(20):
        await abroad(policy, f"p{i}", usd("5000"), at=jan1)
    with pytest.raises(LimitExceeded) as err:
        await abroad(policy, "over", usd("0.01"), at=jan1)
    assert err.value.extra["limit_value"] == {"currency": "USD", "value": "10000000"}


async def test_rule_change_on_its_effective_date_in_the_zone(ledger: LimitLedger) -> None:
    rules = [
        PolicyRuleSet(effective_from=date(2026, 1, 1), resident_per_payment_usd=Decimal(5000)),
        PolicyRuleSet(effective_from=date(2026, 3, 1), resident_per_payment_usd=Decimal(3000)),
    ]
    policy = FxPolicy(FXSettings(policy=PolicySettings(rules=rules)), ledger, RATES)
    await abroad(policy, "a", usd("4000"), at=datetime(2026, 2, 28, 14, 59, 59, tzinfo=UTC))  # Feb 28 23:59:59 KST
    with pytest.raises(LimitExceeded):
        await abroad(policy, "b", usd("4000"), at=datetime(2026, 2, 28, 15, 0, tzinfo=UTC))  # Mar 1 00:00 KST


@pytest.mark.parametrize(("last_krw", "ok"), [(9_999_990, True), (10_000_000, True), (10_000_010, False)])
async def test_nonresident_daily_cap(policy: FxPolicy, last_krw: int, ok: bool) -> None:
    for i in range(4):
        await inbound(policy, f"p{i}", 10_000_000)  # USD 10,000 each at 1000 KRW/USD
    if ok:
        await inbound(policy, "last", last_krw)
    else:
        with pytest.raises(LimitExceeded) as err:
            await inbound(policy, "last", last_krw)
        assert err.value.extra["limit"] == "nonresident_daily" and err.value.extra["window"] == "2025-06-01"
    await inbound(policy, "tomorrow", 10_000_000, at=datetime(2025, 6, 1, 15, 0, tzinfo=UTC))  # June 2 in Seoul


async def test_flags_and_travel_rule_data(policy: FxPolicy) -> None:
    assert await abroad(policy, "a", usd("1000")) == ()
    assert await abroad(policy, "b", usd("1000.01")) == ("travel_rule",)
    anon = Payer(id="kim", residency="resident", country="KR")
    with pytest.raises(DataRequired) as err:
        await abroad(policy, "c", usd("1000.01"), payer=anon)
    assert err.value.code == "FX_DATA_REQUIRED" and err.value.extra["field"] == "payer.name"
    assert await inbound(policy, "d", 9_999_990) == ("travel_rule",)  # USD 9,999.99
    assert await inbound(policy, "e", 10_000_000) == ("travel_rule", "cdd_required")  # at USD 10,000
    assert await inbound(policy, "f", 10_000_010) == ("travel_rule", "cdd_required", "report")


async def test_domestic_and_foreign_to_foreign_have_no_policy(policy: FxPolicy, ledger: LimitLedger) -> None:
    d = await policy.reserve(
        reservation_id="d",
        payer=KIM,
        wallet=WALLET,
        merchant_country="KR",
        merchant_amount=Money(10**9, "KRW"),
        payer_amount=Money(10**9, "KRW"),
        at=MID_2025,
    )
    assert d.reservation is None and d.flags == ()
    d = await policy.reserve(
        reservation_id="e",
        payer=WANG,
        wallet=WALLET,
        merchant_country="SG",
        merchant_amount=usd("9000"),
        payer_amount=usd("9000"),
        at=MID_2025,
    )
    assert d.reservation is None


async def test_release_all_and_fractions(policy: FxPolicy, ledger: LimitLedger) -> None:
    d = await policy.reserve(
        reservation_id="r",
        payer=KIM,
        wallet=WALLET,
        merchant_country="US",
        merchant_amount=usd("4000"),
        payer_amount=usd("4000"),
        at=MID_2025,
    )
    assert d.reservation is not None and d.usd_equivalent == usd("4000")
    h = holder_of(KIM, WALLET)
    await policy.release(d.reservation, fraction=(1, 4))  # a refund of a quarter
    assert await ledger.limit_usage(h, "KR:annual:2025") == 300_000
    await policy.release(d.reservation)  # cancel of the rest
    assert await ledger.limit_usage(h, "KR:annual:2025") == 0
    await policy.release(d.reservation)  # idempotent
    assert await ledger.limit_usage(h, "KR:annual:2025") == 0


async def test_concurrent_payments_of_one_payer_never_pass_the_cap(policy: FxPolicy, ledger: LimitLedger) -> None:
    async def one(i: int) -> bool:
        try:
            await abroad(policy, f"c{i}", usd("5000"))
            return True
        except LimitExceeded:
            return False

    results = await asyncio.gather(*(one(i) for i in range(25)))
    assert sum(results) == 10
    assert await ledger.limit_usage(holder_of(KIM, WALLET), "KR:annual:2025") == 5_000_000


async def test_travel_rule_tiers_require_their_fields(policy: FxPolicy) -> None:
    bare = Payer(id="wang", residency="non-resident", country="CN", name="Wang Fang")
    assert await inbound(policy, "a", 10_000_000, payer=bare) == ("travel_rule", "cdd_required")  # USD 10,000
    with pytest.raises(DataRequired) as err:  # above USD 10,000: address, date of birth or national id too
        await inbound(policy, "b", 10_000_010, payer=bare)
    assert err.value.extra["field"] == "payer.address"
    assert "payer.date_of_birth or payer.national_id_hash" in err.value.detail
    with_nid = bare.model_copy(update={"national_id_hash": "c" * 64})
    d = await policy.reserve(
        reservation_id="c", payer=with_nid, wallet="alipay-cn", merchant_country="KR",
        merchant_amount=Money(10_000_010, "KRW"), payer_amount=Money(8_000_008, "CNY"), at=MID_2025,
    )
    assert d.reservation is not None
    assert d.reservation["travel_rule"] == ["name", "account", "address|date_of_birth|national_id_hash"]
    assert d.reservation["usd_equivalent"] == {"currency": "USD", "value": "1000001"}


async def test_chinese_rules_apply_to_cn_wallets_payers(policy: FxPolicy, ledger: LimitLedger) -> None:
    async def pay_seoul(rid: str, usd_amount: str, wallet_country: str | None = "CN") -> tuple[str, ...]:
        amount = usd(usd_amount)
        d = await policy.reserve(
            reservation_id=rid, payer=WANG, wallet="alipay-cn", wallet_country=wallet_country, merchant_country="KR",
            merchant_amount=amount, payer_amount=amount, at=MID_2025,
        )
        return tuple(d.reservation["amounts"]) if d.reservation else ()

    # an Alipay+ payer in Seoul: Korea's non-resident day cap and China's annual quota, both counted
    assert await pay_seoul("a", "40000") == ("KR:daily:2025-06-01", "CN:annual:2025")
    with pytest.raises(LimitExceeded) as err:  # CN per-payment limit USD 50,000 (assumed value)
        await pay_seoul("b", "50000.01")
    assert err.value.extra["jurisdiction"] == "CN" and err.value.extra["limit"] == "resident_per_payment"
    nxt = datetime(2025, 6, 2, 3, 0, tzinfo=UTC)  # next day in Seoul: the day cap is fresh, the year is not
    with pytest.raises(LimitExceeded) as err:
        await policy.reserve(
            reservation_id="c", payer=WANG, wallet="alipay-cn", wallet_country="CN", merchant_country="KR",
            merchant_amount=usd("10000.01"), payer_amount=usd("10000.01"), at=nxt,
        )
    assert err.value.extra["jurisdiction"] == "CN" and err.value.extra["window"] == "2025"
    assert await pay_seoul("d", "1000", wallet_country=None) == ("KR:daily:2025-06-01",)  # not a CN wallet


def test_every_value_in_force_has_a_source_and_assumed_ones_are_marked(policy: FxPolicy) -> None:
    for j in policy.jurisdictions:
        rules = j.rules_at(date(2026, 6, 1))
        for name in ("resident_per_payment_usd", "resident_annual_usd"):
            source, _confirmed = rules.source(name)
            assert source != "no source recorded", (j.country, name)
        lines = "\n".join(rules.describe())
        assert "source:" in lines
    kr = policy.rules_at(date(2026, 6, 1))
    assert kr.source("resident_per_payment_usd")[1] is True and kr.source("nonresident_daily_usd")[1] is False
    assert "[ASSUMED]" in "\n".join(kr.describe())
    before = policy.rules_at(date(2023, 12, 31))
    assert not before.in_force and before.describe() == [
        "KR: no rule set in force yet; the first takes effect on 2024-01-01"
    ]
