"""Payment orchestration over the real MemoryStore and fake partners (scripted faults)."""

from __future__ import annotations

import asyncio

import pytest

from adapters.base import CreditRequest, Outcome
from gateway.payments import state as st
from gateway.payments.steps import fingerprint
from gateway.store.memory import MemoryStore
from gateway.testing.payments import (
    PAYER_START,
    SEOUL_DYNAMIC,
    SEOUL_STATIC,
    Harness,
    build_harness,
)
from schemas.api import PaymentRequest
from schemas.errors import (
    ConflictError,
    FXError,
    LimitExceeded,
    NoRoute,
    QRError,
    QuoteInvalid,
    ValidationFailed,
)
from schemas.money import MoneyModel
from schemas.payment import Payer, PaymentStatus

CN_PAYER = Payer(id="cn-payer", residency="non-resident", country="CN")
KR_PAYER = Payer(id="kr-payer", residency="resident", country="KR")


@pytest.fixture
async def h() -> Harness:
    return build_harness(MemoryStore())


def req(
    rid: str = "req-1",
    qr: str = SEOUL_STATIC,
    amount: int | None = 15000,
    currency: str = "KRW",
    payer: Payer = CN_PAYER,
    payer_currency: str = "CNY",
    quote_id: str | None = None,
) -> PaymentRequest:
    return PaymentRequest(
        payment_request_id=rid,
        qr=qr,
        amount=MoneyModel.of(currency, amount) if amount is not None else None,
        quote_id=quote_id,
        payer=payer,
        payer_currency=payer_currency,
    )


def cn_balance(h: Harness) -> int:
    return h.wallets["alipay-cn"].balances["cn-payer"]


async def settle(h: Harness, rounds: int = 30) -> None:
    """Let recovery run as a restarted process would: time passes between sweeps."""
    for _ in range(rounds):
        h.clock.advance(60)
        await h.recovery.sweep()
        if not await h.store.payments_in_progress():
            return


async def test_cross_border_payment_succeeds_with_both_legs(h: Harness) -> None:
    sub = await h.orch.submit("alipay-cn", req())
    rec = sub.record
    assert sub.created and rec.status == PaymentStatus.SUCCEEDED and rec.stage == st.SUCCEEDED
    assert rec.route.kind == "cross-border" and rec.route.acquirer == "kakaopay-kr"
    assert rec.payer_amount == MoneyModel.of("CNY", 7950)  # 15000 KRW x 0.0053 = 79.50 CNY
    assert cn_balance(h) == PAYER_START["cn-payer"] - 7950
    assert h.acquirers["kakaopay-kr"].merchant_balance == 15000
    assert rec.quote is not None and rec.quote["rate"] == "0.0053"
    stages = [e.stage for e in rec.history]
    assert stages[-2:] == [st.CREDIT, st.SUCCEEDED]
    events = await h.store.read_events("t", "c")
    assert [e.event["type"] for e in events] == ["payment.succeeded"]
    assert h.pricing.reserved == {rec.payment_id: 15000}


async def test_domestic_dynamic_qr_takes_the_amount_from_the_code(h: Harness) -> None:
    r = req(qr=SEOUL_DYNAMIC, amount=None, payer=KR_PAYER, payer_currency="KRW")
    rec = (await h.orch.submit("kakaopay-kr", r)).record
    assert rec.status == PaymentStatus.SUCCEEDED and rec.route.kind == "domestic"
    assert rec.payer_amount == rec.merchant_amount == MoneyModel.of("KRW", 15000)
    assert rec.quote is None and h.pricing.reserved == {}


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (req(amount=None), ValidationFailed),  # static QR needs an amount
        (req(qr=SEOUL_DYNAMIC, amount=14000), ValidationFailed),  # differs from tag 54
        (req(amount=100, currency="USD"), ValidationFailed),  # not the merchant currency
        (req(qr="000201garbage"), QRError),
        (req(qr="NOROUTE-1"), NoRoute),
        (req(quote_id="qt_unknown"), FXError),  # unknown quote: QUOTE_EXPIRED
        (req(amount=5_000_000), LimitExceeded),  # over the fake per-payer cap
    ],
)
async def test_rejections_change_nothing(h: Harness, request_: PaymentRequest, error: type[Exception]) -> None:
    with pytest.raises(error):
        await h.orch.submit("alipay-cn", request_)
    assert sum(w.calls.total() for w in h.wallets.values()) == 0
    assert h.pricing.reserved == {} and all(q["used"] is None for q in h.pricing.quotes.values())
    assert await h.store.payments_in_progress() == []
    assert await h.store.payments_of_day("2026-03-02") == []
    # the claim was abandoned: the same id with a good body now works
    assert (await h.orch.submit("alipay-cn", req(rid=request_.payment_request_id))).created


async def test_foreign_quote_is_refused_and_stays_usable_by_its_owner(h: Harness) -> None:
    q = await h.pricing.quote(
        merchant_amount=MoneyModel.of("KRW", 15000),
        payer_currency="CNY",
        partner_id="alipay-cn",
        qr_fingerprint=h.resolver.resolve(SEOUL_STATIC, "x").fingerprint,
    )
    with pytest.raises(QuoteInvalid):
        await h.orch.submit("alipay-cn", req(amount=16000, quote_id=q.quote_id))  # other amount
    rec = (await h.orch.submit("alipay-cn", req(rid="req-2", quote_id=q.quote_id))).record
    assert rec.status == PaymentStatus.SUCCEEDED and rec.quote is not None and rec.quote["quote_id"] == q.quote_id
    with pytest.raises(QuoteInvalid):  # used at most once
        await h.orch.submit("alipay-cn", req(rid="req-3", quote_id=q.quote_id))


async def test_concurrent_identical_requests_debit_once(h: Harness) -> None:
    subs = await asyncio.gather(*(h.orch.submit("alipay-cn", req()) for _ in range(20)))
    assert len({s.record.payment_id for s in subs}) == 1
    assert sum(s.created for s in subs) == 1
    assert all(s.record.status == PaymentStatus.SUCCEEDED for s in subs)
    assert h.wallets["alipay-cn"].calls["pay"] == 1
    assert cn_balance(h) == PAYER_START["cn-payer"] - 7950
    with pytest.raises(ConflictError) as exc:
        await h.orch.submit("alipay-cn", req(amount=16000))
    assert exc.value.code == "IDEMPOTENCY_CONFLICT"
    # another partner's identical id is its own payment
    other = await h.orch.submit("kakaopay-kr", req(qr=SEOUL_DYNAMIC, amount=None, payer=KR_PAYER, payer_currency="KRW"))
    assert other.created and other.record.payment_id != subs[0].record.payment_id


async def test_declined_debit_fails_cleanly(h: Harness) -> None:
    h.wallets["alipay-cn"].script["pay"] = ["fail:INSUFFICIENT_FUNDS"]
    rec = (await h.orch.submit("alipay-cn", req())).record
    assert rec.status == PaymentStatus.FAILED and rec.failure is not None
    assert rec.failure.code == "INSUFFICIENT_FUNDS"
    assert h.acquirers["kakaopay-kr"].calls.total() == 0 and cn_balance(h) == PAYER_START["cn-payer"]
    assert h.pricing.reserved == {}  # limits released
    assert [e.event["type"] for e in await h.store.read_events("t", "c")] == ["payment.failed"]


async def test_credit_failure_reverses_the_debit_and_records_it(h: Harness) -> None:
    h.acquirers["kakaopay-kr"].script["credit"] = ["fail:MERCHANT_CLOSED"]
    rec = (await h.orch.submit("alipay-cn", req())).record
    assert rec.status == PaymentStatus.FAILED and rec.failure and rec.failure.code == "MERCHANT_CLOSED"
    assert cn_balance(h) == PAYER_START["cn-payer"]  # charged, then reversed
    assert h.wallets["alipay-cn"].calls["cancel"] == 1
    stages = [e.stage for e in rec.history]
    assert st.DEBIT_REVERSE in stages and stages[-1] == st.FAILED
    assert any("compensation" in e.reason for e in rec.history)
    assert h.pricing.reserved == {}


async def test_unknown_debit_is_retried_inline_with_the_same_id(h: Harness) -> None:
    h.wallets["alipay-cn"].script["pay"] = ["unknown", "lost"]  # second try acts but its answer is lost
    rec = (await h.orch.submit("alipay-cn", req())).record
    assert rec.status == PaymentStatus.SUCCEEDED
    assert h.wallets["alipay-cn"].calls["pay"] == 3 and len(h.wallets["alipay-cn"].debits) == 1
    assert cn_balance(h) == PAYER_START["cn-payer"] - 7950


async def test_unknown_then_inquiry_finds_the_debit(h: Harness) -> None:
    h.wallets["alipay-cn"].script["pay"] = ["lost", "lost", "lost"]
    rec = (await h.orch.submit("alipay-cn", req())).record
    assert rec.status == PaymentStatus.PROCESSING and rec.stage == st.DEBIT_INQUIRY
    assert rec.next_attempt_at is not None and rec.next_attempt_at > h.clock()
    assert await h.recovery.sweep() == 0  # not due yet
    await settle(h)
    rec = await h.get(rec.payment_id)
    assert rec.status == PaymentStatus.SUCCEEDED
    assert cn_balance(h) == PAYER_START["cn-payer"] - 7950  # charged once


async def test_unknown_inquiries_end_in_a_cancel_that_repays(h: Harness) -> None:
    w = h.wallets["alipay-cn"]
    w.script["pay"] = ["lost", "unknown", "unknown"]
    w.script["inquire"] = ["unknown"] * 3
    rec = (await h.orch.submit("alipay-cn", req())).record
    assert rec.status == PaymentStatus.PROCESSING
    await settle(h)
    rec = await h.get(rec.payment_id)
    assert rec.status == PaymentStatus.FAILED and rec.failure and rec.failure.code == st.DEBIT_UNCONFIRMED
    assert w.calls["inquire"] == 3 and w.calls["cancel"] >= 1
    assert cn_balance(h) == PAYER_START["cn-payer"] and h.acquirers["kakaopay-kr"].calls.total() == 0


async def test_debit_never_received_is_cancelled_so_a_late_copy_is_refused(h: Harness) -> None:
    w = h.wallets["alipay-cn"]
    w.script["pay"] = ["unknown"] * 3
    rec = (await h.orch.submit("alipay-cn", req())).record
    await settle(h)
    rec = await h.get(rec.payment_id)
    assert rec.status == PaymentStatus.FAILED and w.debits[rec.legs["debit"]["id"]]["status"] == "CANCELLED"


async def test_unknown_credit_is_reversed_on_both_legs(h: Harness) -> None:
    a = h.acquirers["kakaopay-kr"]
    a.script["credit"] = ["lost", "unknown", "unknown"]
    a.script["inquire_credit"] = ["unknown"] * 3
    rec = (await h.orch.submit("alipay-cn", req())).record
    assert rec.stage == st.CREDIT_INQUIRY
    await settle(h)
    rec = await h.get(rec.payment_id)
    assert rec.status == PaymentStatus.FAILED and rec.failure and rec.failure.code == st.CREDIT_UNCONFIRMED
    assert a.merchant_balance == 0 and cn_balance(h) == PAYER_START["cn-payer"]


async def test_restarted_process_finishes_a_payment_cut_between_debit_and_credit(h: Harness) -> None:
    class Crash(BaseException):
        pass

    a = h.acquirers["kakaopay-kr"]
    real = a.notify_paid

    async def crash(_req: CreditRequest) -> Outcome:
        raise Crash

    a.notify_paid = crash  # type: ignore[method-assign,assignment]
    with pytest.raises(Crash):
        await h.orch.submit("alipay-cn", req())
    (pid,) = await h.store.payments_in_progress()
    rec = await h.get(pid)
    assert rec.status == PaymentStatus.PROCESSING and rec.stage == st.CREDIT  # debit done, credit intended
    a.notify_paid = real  # type: ignore[method-assign]
    h2 = h.restart()
    await settle(h2)
    rec = await h.get(pid)
    assert rec.status == PaymentStatus.SUCCEEDED and a.merchant_balance == 15000
    assert cn_balance(h) == PAYER_START["cn-payer"] - 7950
    assert await h.store.payments_in_progress() == []


async def test_spent_inline_budget_hands_the_payment_to_recovery_at_once(h: Harness) -> None:
    h.orch.inline_budget_s = 0.0
    rec = (await h.orch.submit("alipay-cn", req())).record
    assert rec.status == PaymentStatus.PROCESSING and rec.stage == st.DEBIT
    assert rec.next_attempt_at == h.clock() and h.wallets["alipay-cn"].calls.total() == 0
    assert await h.recovery.sweep() == 1  # due now: no waiting for the lease to lapse
    rec = await h.get(rec.payment_id)
    assert rec.status == PaymentStatus.SUCCEEDED and rec.legs["visits"][st.DEBIT] == 1
    assert cn_balance(h) == PAYER_START["cn-payer"] - 7950


async def test_two_processes_sweeping_together_drive_each_payment_once(h: Harness) -> None:
    h.wallets["alipay-cn"].script["pay"] = ["lost"] * 3
    rec = (await h.orch.submit("alipay-cn", req())).record
    assert rec.stage == st.DEBIT_INQUIRY
    other = h.restart()
    h.clock.advance(60)
    await asyncio.gather(h.recovery.sweep(), other.recovery.sweep())
    assert h.wallets["alipay-cn"].calls["inquire"] == 1  # one process held the lease
    rec = await h.get(rec.payment_id)
    assert rec.status == PaymentStatus.SUCCEEDED and h.acquirers["kakaopay-kr"].calls["credit"] == 1


async def test_a_payment_whose_creator_died_is_driven_by_recovery_and_answered_to_repeats() -> None:
    """Claim, lease and record are written by one atomic call, so a crash cannot orphan a claim; a
    payment whose creating process died is finished by recovery once its lease lapses."""
    now = [0.0]
    store = MemoryStore(clock=lambda: now[0])
    h = build_harness(store)
    h.orch.claim_wait_s = 0.05
    r = req("req-orphan")
    fp = fingerprint(r.model_dump(mode="json"))
    # A process planned the payment and began it (claim + lease + record), then died.
    dead = build_harness(store, h.clock, h.wallets, h.acquirers, h.pricing)
    plan = await dead.orch._plan("alipay-cn", r)
    rec = dead.orch._record("alipay-cn", r, plan)
    begun = await store.begin_payment("alipay-cn", r.payment_request_id, fp, rec, owner="dead-process",
                                      lease_ms=30_000)
    assert begun.created

    waiting = await h.orch.submit("alipay-cn", r)  # the creator may be alive: the repeat waits, then answers 202
    assert (waiting.record.payment_id, waiting.record.status) == (rec.payment_id, PaymentStatus.PROCESSING)
    assert h.wallets["alipay-cn"].calls["pay"] == 0

    now[0] += 31  # the dead process's lease lapses
    await settle(h)
    done = await h.get(rec.payment_id)
    assert done.status == PaymentStatus.SUCCEEDED
    again = await h.orch.submit("alipay-cn", r)
    assert (again.record.payment_id, again.created) == (rec.payment_id, False)
    assert cn_balance(h) == PAYER_START["cn-payer"] - int(done.payer_amount.value)  # charged once
