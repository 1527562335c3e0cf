"""Cancels and refunds over the real MemoryStore and fake partners; a property test of the
payment invariant under random partner faults."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from gateway.payments.service import visible_to
from gateway.store.memory import MemoryStore
from gateway.testing.payments import PAYER_START, SEOUL_STATIC, Harness, ManualClock, build_harness
from schemas.api import CancelRequest, PaymentRequest, RefundRequest
from schemas.errors import ConflictError, InvalidState, NotFound, RefundExceedsPayment
from schemas.money import MoneyModel
from schemas.payment import Payer, PaymentRecord, PaymentStatus

CN_PAYER = Payer(id="cn-payer", residency="non-resident", country="CN")
PAY = PaymentRequest(
    payment_request_id="p-1", qr=SEOUL_STATIC, amount=MoneyModel.of("KRW", 15000), payer=CN_PAYER, payer_currency="CNY"
)


@pytest.fixture
async def h() -> Harness:
    return build_harness(MemoryStore())


async def paid(h: Harness) -> PaymentRecord:
    rec = (await h.orch.submit("alipay-cn", PAY)).record
    assert rec.status == PaymentStatus.SUCCEEDED
    return rec


def bal(h: Harness) -> int:
    return h.wallets["alipay-cn"].balances["cn-payer"]


async def test_cancel_reverses_both_legs_and_releases_limits(h: Harness) -> None:
    rec = await paid(h)
    out, created = await h.rev.cancel("kakaopay-kr", rec.payment_id, CancelRequest(cancel_request_id="c-1"))
    assert created and out.status == PaymentStatus.CANCELLED and out.cancel and out.cancel.status == "SUCCEEDED"
    assert bal(h) == PAYER_START["cn-payer"] and h.acquirers["kakaopay-kr"].merchant_balance == 0
    assert h.pricing.reserved == {}
    again, created = await h.rev.cancel("kakaopay-kr", rec.payment_id, CancelRequest(cancel_request_id="c-1"))
    assert not created and again.version == out.version and h.wallets["alipay-cn"].calls["cancel"] == 1
    types = [e.event["type"] for e in await h.store.read_events("t", "c")]
    assert types == ["payment.succeeded", "payment.cancelled"]
    with pytest.raises(InvalidState):
        await h.rev.refund(
            "alipay-cn", rec.payment_id, RefundRequest(refund_request_id="r-1", amount=MoneyModel.of("KRW", 100))
        )


async def test_cancel_after_the_cutoff_is_refused(h: Harness) -> None:
    rec = await paid(h)
    h.clock.now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 00:00 on 3 March in Seoul
    with pytest.raises(InvalidState) as exc:
        await h.rev.cancel("alipay-cn", rec.payment_id, CancelRequest(cancel_request_id="c-1"))
    assert exc.value.code == "CANCEL_WINDOW_CLOSED"
    assert (await h.get(rec.payment_id)).status == PaymentStatus.SUCCEEDED


async def test_partial_refunds_never_exceed_the_payment(h: Harness) -> None:
    rec = await paid(h)
    pid = rec.payment_id
    r1, _ = await h.rev.refund(
        "alipay-cn", pid, RefundRequest(refund_request_id="r-1", amount=MoneyModel.of("KRW", 5001))
    )
    assert r1.status == PaymentStatus.PARTIALLY_REFUNDED and r1.refunds[0].payer_amount == MoneyModel.of("CNY", 2651)
    with pytest.raises(RefundExceedsPayment):
        await h.rev.refund("alipay-cn", pid, RefundRequest(refund_request_id="r-2", amount=MoneyModel.of("KRW", 10000)))
    with pytest.raises(ConflictError):  # same key, another amount
        await h.rev.refund("alipay-cn", pid, RefundRequest(refund_request_id="r-1", amount=MoneyModel.of("KRW", 10)))
    r2, _ = await h.rev.refund(
        "alipay-cn", pid, RefundRequest(refund_request_id="r-3", amount=MoneyModel.of("KRW", 9999))
    )
    assert r2.status == PaymentStatus.REFUNDED
    assert sum(r.payer_amount.minor for r in r2.refunds) == rec.payer_amount.minor  # exact, no drift
    assert bal(h) == PAYER_START["cn-payer"] and h.acquirers["kakaopay-kr"].merchant_balance == 0
    assert [f for _, f in h.pricing.released] == [(5001, 15000), (9999, 15000)]
    types = [e.event["type"] for e in await h.store.read_events("t", "c")]
    assert types.count("payment.refunded") == 2


async def test_unknown_refund_is_retried_by_recovery(h: Harness) -> None:
    rec = await paid(h)
    h.wallets["alipay-cn"].script["refund"] = ["unknown"] * 3
    out, _ = await h.rev.refund(
        "alipay-cn", rec.payment_id, RefundRequest(refund_request_id="r-1", amount=MoneyModel.of("KRW", 15000))
    )
    assert out.status == PaymentStatus.SUCCEEDED and out.refunds[0].status == "PROCESSING"
    assert await h.store.payments_in_progress() == [rec.payment_id]
    for _ in range(5):
        h.clock.advance(60)
        await h.recovery.sweep()
    out = await h.get(rec.payment_id)
    assert out.status == PaymentStatus.REFUNDED and bal(h) == PAYER_START["cn-payer"]


async def test_only_the_route_sees_a_payment(h: Harness) -> None:
    rec = await paid(h)
    assert visible_to(rec, "alipay-cn") is rec and visible_to(rec, "kakaopay-kr") is rec
    with pytest.raises(NotFound):
        visible_to(rec, "openwallet-sg")
    with pytest.raises(NotFound):
        await h.rev.cancel("openwallet-sg", rec.payment_id, CancelRequest(cancel_request_id="c-1"))


MODES = hs.sampled_from(["ok", "lost", "unknown", "raise", "fail:DECLINED"])
SCRIPT = hs.lists(MODES, max_size=4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pay=SCRIPT, inquire=SCRIPT, cancel=SCRIPT, credit=SCRIPT, inquire_credit=SCRIPT, reverse=SCRIPT, refund=SCRIPT)
def test_no_fault_leaves_a_payer_charged_for_an_unpaid_merchant(
    pay: list[str],
    inquire: list[str],
    cancel: list[str],
    credit: list[str],
    inquire_credit: list[str],
    reverse: list[str],
    refund: list[str],
) -> None:
    async def run() -> None:
        h = build_harness(MemoryStore(), ManualClock())
        w, a = h.wallets["alipay-cn"], h.acquirers["kakaopay-kr"]
        w.script.update(pay=pay, inquire=inquire, cancel=cancel, refund=refund)
        a.script.update(credit=credit, inquire_credit=inquire_credit, reverse=reverse)
        rec = (await h.orch.submit("alipay-cn", PAY)).record
        for _ in range(40):
            if not await h.store.payments_in_progress():
                break
            h.clock.advance(120)
            await h.recovery.sweep()
        rec = await h.get(rec.payment_id)
        charged = PAYER_START["cn-payer"] - bal(h)
        assert rec.status in (PaymentStatus.SUCCEEDED, PaymentStatus.FAILED), rec.stage
        if rec.status == PaymentStatus.SUCCEEDED:
            assert charged == rec.payer_amount.minor and a.merchant_balance == rec.merchant_amount.minor
        else:
            assert charged == 0 and a.merchant_balance == 0
            assert h.pricing.reserved == {}

    asyncio.run(run())


async def test_refund_arriving_while_the_payment_is_busy_is_left_due_now(h: Harness) -> None:
    rec = await paid(h)
    assert await h.store.acquire_lease(f"lease:payment:{rec.payment_id}", "another-process", 30_000)
    out, created = await h.rev.refund(
        "alipay-cn", rec.payment_id, RefundRequest(refund_request_id="r-1", amount=MoneyModel.of("KRW", 100))
    )
    assert created and out.refunds[0].status == "PROCESSING" and out.next_attempt_at == h.clock()
    await h.store.release_lease(f"lease:payment:{rec.payment_id}", "another-process")
    assert await h.recovery.sweep() == 1  # no wait for a lease window: it was due at once
    assert (await h.get(rec.payment_id)).status == PaymentStatus.PARTIALLY_REFUNDED
