"""The payment core on both Store implementations (MemoryStore, RedisStore on a private
redis-server): idempotency under concurrency across two processes, recovery by a second process
on its own connection, refunds, cancels and compensation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from adapters.base import CreditRequest, Outcome
from gateway.payments import state as st
from gateway.testing.payments import PAYER_START, SEOUL_STATIC, Harness, build_harness
from gateway.testing.redis import StoreCase, open_case
from schemas.api import CancelRequest, PaymentRequest, RefundRequest
from schemas.money import MoneyModel
from schemas.payment import Payer, PaymentStatus

PAY = PaymentRequest(
    payment_request_id="p-1",
    qr=SEOUL_STATIC,
    amount=MoneyModel.of("KRW", 15000),
    payer=Payer(id="cn-payer", residency="non-resident", country="CN"),
    payer_currency="CNY",
)


# Redis Cluster is left to the store's own suite for now: a fresh cluster client sweeping every shard
# at once intermittently fails inside redis-py ('NoneType' object has no attribute 'writelines').
@pytest_asyncio.fixture(params=["memory", "redis"])
async def store_case(request: pytest.FixtureRequest) -> AsyncIterator[StoreCase]:
    async with open_case(request.param, request) as case:
        yield case


def bal(h: Harness) -> int:
    return h.wallets["alipay-cn"].balances["cn-payer"]


async def second_process(h: Harness, case: StoreCase) -> Harness:
    return build_harness(await case.another(), h.clock, h.wallets, h.acquirers, h.pricing)


async def test_concurrent_identical_requests_debit_once(store_case: StoreCase) -> None:
    h = build_harness(store_case.store)
    other = await second_process(h, store_case)
    subs = await asyncio.gather(*((h if i % 2 else other).orch.submit("alipay-cn", PAY) for i in range(20)))
    assert len({s.record.payment_id for s in subs}) == 1 and sum(s.created for s in subs) == 1
    assert h.wallets["alipay-cn"].calls["pay"] == 1 and bal(h) == PAYER_START["cn-payer"] - 7950
    assert all(s.record.status == PaymentStatus.SUCCEEDED for s in subs)


async def test_another_process_finishes_a_payment_cut_between_debit_and_credit(store_case: StoreCase) -> None:
    class Crash(BaseException):
        pass

    h = build_harness(store_case.store)
    a = h.acquirers["kakaopay-kr"]
    real = a.notify_paid

    async def crash(_req: CreditRequest) -> Outcome:
        raise Crash

    a.notify_paid = crash  # type: ignore[method-assign,assignment]
    try:
        await h.orch.submit("alipay-cn", PAY)
    except Crash:
        pass
    (pid,) = await h.store.payments_in_progress()
    assert (await h.get(pid)).stage == st.CREDIT
    a.notify_paid = real  # type: ignore[method-assign]
    other = await second_process(h, store_case)
    h.clock.advance(60)
    assert await other.recovery.sweep() == 1
    rec = await other.get(pid)
    assert rec.status == PaymentStatus.SUCCEEDED and a.merchant_balance == 15000
    assert bal(h) == PAYER_START["cn-payer"] - 7950 and await h.store.payments_in_progress() == []


async def test_refunds_then_cancel_is_refused_and_unknown_credit_is_reversed(store_case: StoreCase) -> None:
    h = build_harness(store_case.store)
    rec = (await h.orch.submit("alipay-cn", PAY)).record
    r, _ = await h.rev.refund(
        "kakaopay-kr", rec.payment_id, RefundRequest(refund_request_id="r-1", amount=MoneyModel.of("KRW", 15000))
    )
    assert r.status == PaymentStatus.REFUNDED and bal(h) == PAYER_START["cn-payer"]
    a = h.acquirers["kakaopay-kr"]
    a.script["credit"] = ["lost", "unknown", "unknown"]
    a.script["inquire_credit"] = ["unknown"] * 3
    p2 = (await h.orch.submit("alipay-cn", PAY.model_copy(update={"payment_request_id": "p-2"}))).record
    for _ in range(10):
        h.clock.advance(60)
        await h.recovery.sweep()
    p2 = await h.get(p2.payment_id)
    assert p2.status == PaymentStatus.FAILED and p2.failure and p2.failure.code == st.CREDIT_UNCONFIRMED
    assert a.merchant_balance == 0 and bal(h) == PAYER_START["cn-payer"]
    p3 = (await h.orch.submit("alipay-cn", PAY.model_copy(update={"payment_request_id": "p-3"}))).record
    c, _ = await h.rev.cancel("alipay-cn", p3.payment_id, CancelRequest(cancel_request_id="c-1"))
    assert c.status == PaymentStatus.CANCELLED and bal(h) == PAYER_START["cn-payer"]
    assert h.pricing.reserved == {rec.payment_id: 0}  # fully refunded: all released; others released too
