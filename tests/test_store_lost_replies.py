"""A store reply that is lost is an unknown, never "nothing was written" (issue 15).

A fault-injecting proxy sits between the gateway's RedisStore and a real redis-server and holds,
drops or resets the reply to one named script. For every write of a payment's request path and
of its reversals, after the fault and the caller's retries with the same request id there is
exactly one payment, one debit, one credit, and the payer's FX counters and the quote agree.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from support.redis_proxy import RedisFaultProxy

from fx.policy import FxPolicy, holder_of
from fx.quotes import QuoteService
from fx.rates import StaticRates
from gateway.config import load_settings
from gateway.payments.fxbridge import FxBridge
from gateway.store.redis import RedisStore
from gateway.testing.payments import PAYER_START, SEOUL_STATIC, Harness, build_harness
from schemas.api import PaymentRequest, RefundRequest
from schemas.errors import StoreUnavailable
from schemas.money import MoneyModel
from schemas.payment import Payer, PaymentStatus

pytestmark = pytest.mark.redis
RATES = StaticRates.from_strings({"USD/KRW": "1000", "USD/CNY": "8"})
PAYER = Payer(id="cn-payer", residency="non-resident", country="CN")


def request(rid: str = "req-1", quote_id: str | None = None) -> PaymentRequest:
    return PaymentRequest(payment_request_id=rid, qr=SEOUL_STATIC, amount=MoneyModel.of("KRW", 15000),
                          payer=PAYER, payer_currency="CNY", quote_id=quote_id)


@pytest_asyncio.fixture
async def rig(redis_url: str) -> AsyncIterator[tuple[RedisFaultProxy, Harness]]:
    """A harness on RedisStore through the proxy: 0.3 s socket timeout, so a reply held 1 s is lost
    to its first attempt and the store's repeat (on a fresh connection) answers."""
    proxy = await RedisFaultProxy(int(redis_url.rsplit(":", 1)[1].split("/")[0])).start()
    prefix = f"lost{id(proxy)}:"
    store = await RedisStore.connect(proxy.url, pool_size=16, timeout_s=0.3, prefix=prefix)
    settings = load_settings()
    pricing = FxBridge(QuoteService(RATES, store, settings.fx), FxPolicy(settings.fx, store, RATES))
    h = build_harness(store, pricing=pricing, lease_s=1.0)  # type: ignore[arg-type]
    try:
        yield proxy, h
    finally:
        proxy.faults.clear()
        await store.aclose()
        await proxy.stop()


async def one_payment(h: Harness) -> Any:
    """Exactly one payment exists and it succeeded; one debit, one credit."""
    ids = await h.store.payments_of_day(h.clock().strftime("%Y-%m-%d"))
    assert len(ids) == 1, ids
    rec = await h.get(ids[0])
    assert rec.status == PaymentStatus.SUCCEEDED, rec.history
    assert h.wallets["alipay-cn"].calls["pay"] >= 1
    assert h.wallets["alipay-cn"].balances["cn-payer"] == PAYER_START["cn-payer"] - rec.payer_amount.minor
    assert h.acquirers["kakaopay-kr"].merchant_balance == 15000
    return rec


async def counted(h: Harness) -> int:
    """The payer's counted USD cents today (the non-resident daily counter)."""
    holder = holder_of(PAYER, "alipay-cn")
    total = 0
    for counter in ("KR:daily:2026-03-02",):
        total += await h.store.limit_usage(holder, counter)
    return total


@pytest.mark.parametrize("script", ["BEGIN_PAYMENT", "RESERVE_LIMITS", "UPDATE_PAYMENT"])
@pytest.mark.parametrize("action", ["hold", "drop"])
async def test_a_lost_reply_on_the_request_path_is_found_out(
    rig: tuple[RedisFaultProxy, Harness], script: str, action: str
) -> None:
    proxy, h = rig
    proxy.fault(script, action, seconds=1.0)
    sub = await h.orch.submit("alipay-cn", request())
    assert proxy.faults[0].fired == 1  # the fault really hit
    assert sub.created and sub.record.status == PaymentStatus.SUCCEEDED
    rec = await one_payment(h)
    assert rec.payment_id == sub.record.payment_id
    again = await h.orch.submit("alipay-cn", request())  # the caller's retry: the same payment
    assert (again.record.payment_id, again.created) == (rec.payment_id, False)
    assert h.wallets["alipay-cn"].calls["pay"] == 1 and h.acquirers["kakaopay-kr"].calls["credit"] == 1
    assert await counted(h) == 1500  # 15,000 KRW = USD 15.00 (cents), counted once


@pytest.mark.parametrize("action", ["hold", "drop"])
async def test_a_lost_reply_to_the_quote_redemption_keeps_the_quote_for_this_payment(
    rig: tuple[RedisFaultProxy, Harness], action: str
) -> None:
    proxy, h = rig
    q = await h.pricing.quote(merchant_amount=MoneyModel.of("KRW", 15000), payer_currency="CNY",
                              partner_id="alipay-cn", qr_fingerprint=h.resolver.resolve(SEOUL_STATIC, "x").fingerprint)
    proxy.fault("CONSUME_QUOTE", action, seconds=1.0)
    sub = await h.orch.submit("alipay-cn", request(quote_id=q.quote_id))
    assert proxy.faults[0].fired == 1
    rec = await one_payment(h)
    assert sub.record.payment_id == rec.payment_id and rec.payer_amount == q.payer_amount
    # the quote is used, by this payment: another request naming it is refused
    with pytest.raises(Exception, match="already used"):
        await h.orch.submit("alipay-cn", request("req-2", quote_id=q.quote_id))


async def test_a_store_that_stays_silent_answers_503_and_the_retry_resumes_the_same_payment(
    rig: tuple[RedisFaultProxy, Harness],
) -> None:
    """The begin call's reply is lost on every repeat within the budget: 503 (unknown), nothing
    undone, the claim kept; the caller's retry with the same id gets that payment, never a second."""
    proxy, h = rig
    h.store._repeat_budget_s = 0.5  # type: ignore[attr-defined]
    proxy.fault("BEGIN_PAYMENT", "hold", seconds=1.0, times=3)
    with pytest.raises(StoreUnavailable):
        await h.orch.submit("alipay-cn", request())
    assert h.wallets["alipay-cn"].calls["pay"] == 0  # nothing moved, nothing undone
    proxy.faults.clear()
    h.orch.claim_wait_s = 0.05
    first = await h.orch.submit("alipay-cn", request())  # the begin had been applied: its payment answers
    assert first.created is False and first.record.status == PaymentStatus.PROCESSING
    h.clock.advance(5)  # its lease (1 s in this harness) lapses: recovery drives it
    await asyncio.sleep(1.1)  # ... on Redis's clock too
    await h.recovery.sweep()
    rec = await one_payment(h)
    assert rec.payment_id == first.record.payment_id
    assert h.wallets["alipay-cn"].calls["pay"] == 1 and await counted(h) == 1500


async def test_a_lost_reply_to_a_refund_write_refunds_once(rig: tuple[RedisFaultProxy, Harness]) -> None:
    proxy, h = rig
    sub = await h.orch.submit("alipay-cn", request())
    for script in ("CLAIM", "UPDATE_PAYMENT", "RELEASE_LIMITS"):
        proxy.fault(script, "hold", seconds=1.0)
    refund = RefundRequest(refund_request_id="rf-1", amount=MoneyModel.of("KRW", 5000))
    await h.rev.refund("alipay-cn", sub.record.payment_id, refund)
    assert sum(f.fired for f in proxy.faults) >= 2
    again, created = await h.rev.refund("alipay-cn", sub.record.payment_id, refund)
    assert not created and len(again.refunds) == 1
    assert h.wallets["alipay-cn"].calls["refund"] == 1
    assert again.refunds[0].status == "SUCCEEDED"
    assert await counted(h) == 1500 - 500  # a third released


async def test_a_nonce_whose_reply_was_lost_is_not_taken_for_a_replay(rig: tuple[RedisFaultProxy, Harness]) -> None:
    proxy, h = rig
    proxy.fault("REMEMBER_NONCE", "drop")
    assert await h.store.remember_nonce("k1", "n-1", 300) is True  # the repeat finds its own token
    assert await h.store.remember_nonce("k1", "n-1", 300) is False  # a real replay
