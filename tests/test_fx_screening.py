"""Screening before the debit: the sandbox list's clear / review / hit, and what each does to a
payment run by the orchestrator with the real FX bridge (a hit: SCREENING_HIT, nothing moved,
nothing counted; a review: held at stage ``review``, flagged ``needs_review``, no debit)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fx_kit import RATES

from fx.policy import FxPolicy
from fx.quotes import QuoteService
from fx.screening import ListScreener, Party, normalise
from gateway.config import load_settings
from gateway.payments.fxbridge import FxBridge
from gateway.payments.ports import HOLD_FLAG, REVIEW_FLAG, REVIEW_STAGE
from gateway.payments.review import decide_review
from gateway.store.memory import MemoryStore
from gateway.testing.payments import PAYER_START, SEOUL_STATIC, Harness, build_harness
from schemas.api import PaymentRequest, PaymentView
from schemas.errors import ScreeningHit
from schemas.payment import PaymentStatus

LIST = Path(__file__).resolve().parent.parent / "config" / "screening_sandbox.toml"


@pytest.fixture
def screener() -> ListScreener:
    return ListScreener.from_file(LIST)


@pytest.mark.parametrize(
    ("name", "country", "outcome"),
    [
        ("Wang Fang", "CN", "clear"),
        ("SANDBOX  sanctioned-person", "KR", "hit"),  # case, spaces and punctuation do not hide a name
        ("Sandböx Sanctioned Persön", "KR", "hit"),  # nor do accents
        ("Mr Sandbox Sanctioned Person Jr", "KR", "review"),  # every word of the entry: a partial match
        ("Blocked Trading Co", "CN", "hit"),
        ("Blocked Trading Co", "SG", "clear"),  # the entry is for CN parties only
        ("Politically Exposed", "KR", "review"),
        (None, "KP", "review"),  # no name: screened by country
        ("Anyone", "KP", "review"),
    ],
)
async def test_sandbox_list_outcomes(screener: ListScreener, name: str | None, country: str, outcome: str) -> None:
    v = await screener.screen([Party("payer", name, country), Party("merchant", "HANGANG BBQ", "KR")])
    assert v.outcome == outcome, v.reason
    assert normalise("  Ça-va, Ok ") == "ca va ok"


async def test_the_worst_verdict_of_payer_and_merchant_wins(screener: ListScreener) -> None:
    parties = [Party("payer", "Politically Exposed", "KR"), Party("merchant", "Blocked Trading Co", "CN")]
    v = await screener.screen(parties)
    assert v.outcome == "hit" and "merchant" in v.reason


def harness(screener: ListScreener) -> Harness:
    store = MemoryStore()
    settings = load_settings()
    bridge = FxBridge(
        QuoteService(RATES, store, settings.fx), FxPolicy(settings.fx, store, RATES), screener=screener,
        wallet_countries={"alipay-cn": "CN", "kakaopay-kr": "KR"},
    )
    return build_harness(store, pricing=bridge)  # type: ignore[arg-type]


def pay(name: str, rid: str = "p-1") -> PaymentRequest:
    return PaymentRequest.model_validate({
        "payment_request_id": rid, "qr": SEOUL_STATIC, "amount": {"currency": "KRW", "value": "15000"},
        "payer": {"id": "cn-payer", "residency": "non-resident", "country": "CN", "name": name},
        "payer_currency": "CNY",
    })


async def test_a_hit_fails_the_payment_before_any_money_moves(screener: ListScreener) -> None:
    h = harness(screener)
    with pytest.raises(ScreeningHit) as err:
        await h.orch.submit("alipay-cn", pay("Sandbox Sanctioned Person"))
    assert err.value.status == 403 and err.value.code == "SCREENING_HIT"
    assert "Sandbox" not in err.value.detail  # the partner is not told which entry matched
    assert h.wallets["alipay-cn"].charged("cn-payer", PAYER_START["cn-payer"]) == 0
    assert await h.store.payments_in_progress() == []
    ok = await h.orch.submit("alipay-cn", pay("Wang Fang", "p-2"))  # a clear payer goes through
    assert ok.record.status == PaymentStatus.SUCCEEDED and HOLD_FLAG not in ok.record.flags


async def test_a_review_holds_the_payment_for_an_operator(screener: ListScreener) -> None:
    h = harness(screener)
    sub = await h.orch.submit("alipay-cn", pay("Politically Exposed"))
    rec = sub.record
    assert rec.status == PaymentStatus.PROCESSING and rec.stage == REVIEW_STAGE and HOLD_FLAG in rec.flags
    assert h.wallets["alipay-cn"].charged("cn-payer", PAYER_START["cn-payer"]) == 0
    h.clock.advance(3600)
    await h.recovery.sweep()  # recovery never drives a held payment
    again = await h.get(rec.payment_id)
    assert again.stage == REVIEW_STAGE and again.status == PaymentStatus.PROCESSING
    assert h.wallets["alipay-cn"].charged("cn-payer", PAYER_START["cn-payer"]) == 0
    assert REVIEW_FLAG in again.flags and PaymentView.from_record(again).flags == []  # never shown to partners


@pytest.mark.parametrize("approve", [True, False])
async def test_an_operator_approves_or_rejects_a_held_payment(screener: ListScreener, approve: bool) -> None:
    h = harness(screener)
    rec = (await h.orch.submit("alipay-cn", pay("Politically Exposed"))).record
    assert rec.reservation is not None
    holder, counter = rec.reservation["holder"], next(iter(rec.reservation["amounts"]))
    decided = await decide_review(h.store, h.pricing, rec.payment_id, approve=approve, operator="op-1", clock=h.clock)
    assert decided is not None and REVIEW_FLAG not in decided.flags
    await h.recovery.sweep()
    final = await h.get(rec.payment_id)
    charged = h.wallets["alipay-cn"].charged("cn-payer", PAYER_START["cn-payer"])
    if approve:
        assert final.status == PaymentStatus.SUCCEEDED and charged == final.payer_amount.minor
        assert await h.store.limit_usage(holder, counter) > 0
    else:
        assert final.status == PaymentStatus.FAILED and final.failure is not None
        assert final.failure.code == "SCREENING_HIT" and charged == 0
        assert await h.store.limit_usage(holder, counter) == 0  # its counters given back
    again = await decide_review(h.store, h.pricing, rec.payment_id, approve=not approve, operator="op-2")
    assert again is not None and again.status == final.status  # decided once
