"""Fakes of the payment core's ports for unit tests: partners with real ledgers and scripted
faults, a fixed-rate pricing service and a table-driven QR resolver.

Scripts: ``wallet.script["pay"] = ["lost", "unknown", "ok"]`` — each call of that operation
takes the next entry; an empty script means "ok". Entries:
``ok`` (act, answer succeeded), ``lost`` (act, but the answer is lost: unknown),
``unknown`` (do nothing, unknown), ``fail:CODE`` (decline, nothing done), ``raise``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from adapters.base import AcquirerAdapter, CreditRequest, DebitRequest, Outcome, WalletAdapter
from gateway.payments.orchestrator import Orchestrator
from gateway.payments.ports import Partners, PolicyResult, QuoteInfo, ResolvedQR
from gateway.payments.recovery import Recovery
from gateway.payments.service import ReversalService
from gateway.payments.state import RetryPolicy
from gateway.payments.steps import new_id, qr_fingerprint
from gateway.store.base import Store
from schemas.errors import LimitExceeded, NoRoute, QRError, QuoteExpired, QuoteInvalid
from schemas.money import MoneyModel
from schemas.payment import Merchant, MerchantAccount, Payer, PaymentRecord, Route


class _Scripted:
    def __init__(self) -> None:
        self.script: dict[str, list[str]] = {}
        self.calls: Counter[str] = Counter()

    def _next(self, op: str) -> str:
        self.calls[op] += 1
        queue = self.script.get(op)
        return queue.pop(0) if queue else "ok"

    @staticmethod
    def _seen(mode: str, done_before: bool) -> str:
        """A repeat of a keyed call already acted on returns the first answer, never a decline."""
        return "ok" if done_before and mode.startswith("fail:") else mode

    @staticmethod
    def _answer(mode: str, real: Outcome) -> Outcome:
        if mode == "ok":
            return real
        if mode == "lost":
            return Outcome.unknown("answer lost (timeout)")
        if mode == "raise":
            raise ConnectionError("connection dropped")
        if mode.startswith("fail:"):
            return Outcome.failed(mode[5:], "declined by the sandbox")
        return Outcome.unknown("timeout")


class FakeWallet(_Scripted, WalletAdapter):
    def __init__(self, partner_id: str, balances: Mapping[str, int] | None = None) -> None:
        super().__init__()
        self.partner_id = partner_id
        self.balances: dict[str, int] = dict(balances or {})
        self.debits: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, int] = {}

    async def pay(self, req: DebitRequest) -> Outcome:
        mode = self._seen(self._next("pay"), req.debit_id in self.debits)
        if mode not in ("ok", "lost"):
            return self._answer(mode, Outcome.unknown("?"))
        d = self.debits.get(req.debit_id)
        if d is None:
            bal = self.balances.get(req.payer.id, 0)
            if bal < req.amount.minor:
                return self._answer(mode, Outcome.failed("INSUFFICIENT_FUNDS", "balance too low"))
            self.balances[req.payer.id] = bal - req.amount.minor
            d = self.debits[req.debit_id] = {
                "status": "SUCCEEDED",
                "payer": req.payer.id,
                "amount": req.amount.minor,
            }
        if d["status"] == "CANCELLED":
            return self._answer(mode, Outcome.failed("DEBIT_CANCELLED"))
        return self._answer(mode, Outcome.succeeded(req.debit_id))

    async def inquire(self, debit_id: str) -> Outcome:
        mode = self._seen(self._next("inquire"), True)  # an inquiry tells the truth or times out
        d = self.debits.get(debit_id)
        if d is None:
            real = Outcome.failed("DEBIT_NOT_FOUND", not_found=True)
        elif d["status"] == "SUCCEEDED":
            real = Outcome.succeeded(debit_id)
        else:
            real = Outcome.failed("DEBIT_CANCELLED")
        return self._answer(mode, real) if mode != "lost" else Outcome.unknown("timeout")

    async def cancel(self, debit_id: str, amount: MoneyModel) -> Outcome:
        mode = self._seen(self._next("cancel"), self.debits.get(debit_id, {}).get("status") == "CANCELLED")
        if mode not in ("ok", "lost"):
            return self._answer(mode, Outcome.unknown("?"))
        d = self.debits.get(debit_id)
        if d is None:  # never received: record the cancel so a late copy is refused
            self.debits[debit_id] = {"status": "CANCELLED", "payer": None, "amount": 0}
        elif d["status"] == "SUCCEEDED":
            self.balances[d["payer"]] += d["amount"]
            d["status"] = "CANCELLED"
        return self._answer(mode, Outcome.succeeded(debit_id))

    async def refund(self, refund_id: str, debit_id: str, amount: MoneyModel) -> Outcome:
        mode = self._seen(self._next("refund"), refund_id in self.refunds)
        if mode not in ("ok", "lost"):
            return self._answer(mode, Outcome.unknown("?"))
        d = self.debits.get(debit_id)
        if d is None or d["status"] != "SUCCEEDED":
            return self._answer(mode, Outcome.failed("DEBIT_NOT_REFUNDABLE"))
        if refund_id not in self.refunds:
            self.refunds[refund_id] = amount.minor
            self.balances[d["payer"]] += amount.minor
        return self._answer(mode, Outcome.succeeded(refund_id))

    def charged(self, payer: str, start: int) -> int:
        return start - self.balances.get(payer, 0)


class FakeAcquirer(_Scripted, AcquirerAdapter):
    def __init__(self, partner_id: str) -> None:
        super().__init__()
        self.partner_id = partner_id
        self.credits: dict[str, int] = {}
        self.reversals: dict[str, int] = {}
        self.merchant_balance = 0

    async def notify_paid(self, req: CreditRequest) -> Outcome:
        mode = self._seen(self._next("credit"), req.credit_id in self.credits)
        if mode not in ("ok", "lost"):
            return self._answer(mode, Outcome.unknown("?"))
        if req.credit_id not in self.credits:
            self.credits[req.credit_id] = req.amount.minor
            self.merchant_balance += req.amount.minor
        return self._answer(mode, Outcome.succeeded(req.credit_id))

    async def inquire_credit(self, credit_id: str) -> Outcome:
        mode = self._seen(self._next("inquire_credit"), True)  # an inquiry tells the truth or times out
        real = (
            Outcome.succeeded(credit_id)
            if credit_id in self.credits
            else Outcome.failed("CREDIT_NOT_FOUND", not_found=True)
        )
        return self._answer(mode, real) if mode != "lost" else Outcome.unknown("timeout")

    async def reverse(self, credit_id: str, reversal_id: str, amount: MoneyModel) -> Outcome:
        mode = self._seen(self._next("reverse"), reversal_id in self.reversals)
        if mode not in ("ok", "lost"):
            return self._answer(mode, Outcome.unknown("?"))
        if credit_id not in self.credits:
            return self._answer(mode, Outcome.failed("CREDIT_NOT_FOUND", not_found=True))
        if reversal_id not in self.reversals:
            self.reversals[reversal_id] = amount.minor
            self.merchant_balance -= amount.minor
        return self._answer(mode, Outcome.succeeded(reversal_id))


# --- QR resolution ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FakeQR:
    acquirer: str
    currency: str
    country: str
    city: str
    amount_minor: int | None = None


@dataclass
class FakeResolver:
    """``qr`` strings are keys of ``codes``; ``countries`` gives each partner's home country."""

    codes: dict[str, FakeQR]
    countries: dict[str, str]

    def resolve(self, qr: str, caller: str) -> ResolvedQR:
        if qr.startswith("NOROUTE"):
            raise NoRoute("no template of this QR code is routed")
        code = self.codes.get(qr)
        if code is None:
            raise QRError("not an EMVCo payload", code="QR_MALFORMED", offset=0)
        kind = "domestic" if self.countries.get(caller) == code.country else "cross-border"
        merchant = Merchant(
            name="HANGANG BBQ" if code.country == "KR" else "SHOP",
            city=code.city,
            country=code.country,
            account=MerchantAccount(identifier=f"id.{code.acquirer}", fields={"01": "M0001"}),
        )
        return ResolvedQR(
            merchant=merchant,
            currency=code.currency,
            amount_minor=code.amount_minor,
            dynamic=code.amount_minor is not None,
            route=Route(wallet=caller, acquirer=code.acquirer, kind=kind, identifier=f"id.{code.acquirer}"),
            fingerprint=qr_fingerprint(qr),
        )


# --- pricing ----------------------------------------------------------------------------------------
EXPONENT = {"KRW": 0, "CNY": 2, "SGD": 2, "USD": 2}


@dataclass
class FakePricing:
    """Fixed rates (payer units per merchant unit, major), per-payer cap in merchant minor units."""

    rates: dict[tuple[str, str], Decimal]
    cap_per_payer: int = 10**12
    ttl_s: int = 60
    quotes: dict[str, dict[str, Any]] = field(default_factory=dict)
    reserved: dict[str, int] = field(default_factory=dict)  # reservation_id -> amount held
    released: list[tuple[str, tuple[int, int] | None]] = field(default_factory=list)
    release_ids: set[str] = field(default_factory=set)

    def _convert(self, m: MoneyModel, to: str) -> tuple[MoneyModel, Decimal]:
        rate = self.rates[(m.currency, to)]
        major = Decimal(m.minor).scaleb(-EXPONENT[m.currency]) * rate
        minor = int(major.scaleb(EXPONENT[to]).quantize(Decimal(1), ROUND_HALF_UP))
        return MoneyModel.of(to, minor), rate

    async def quote(
        self,
        *,
        merchant_amount: MoneyModel,
        payer_currency: str,
        partner_id: str,
        qr_fingerprint: str,
        persist: bool = True,
    ) -> QuoteInfo:
        payer, rate = self._convert(merchant_amount, payer_currency)
        expires = datetime.now(UTC) + timedelta(seconds=self.ttl_s)
        quote_id = new_id("qt")
        wire = {
            "quote_id": quote_id,
            "rate": str(rate),
            "merchant_amount": merchant_amount.model_dump(),
            "payer_amount": payer.model_dump(),
            "expires_at": expires.isoformat(),
        }
        q = QuoteInfo(quote_id, merchant_amount, payer, rate, expires, wire)
        if not persist:
            return q
        self.quotes[quote_id] = {
            "q": q,
            "wire": wire,
            "partner": partner_id,
            "fp": qr_fingerprint,
            "used": None,
        }
        return q

    async def redeem(
        self,
        quote_id: str,
        *,
        partner_id: str,
        qr_fingerprint: str,
        merchant_amount: MoneyModel,
        consumer: str,
    ) -> QuoteInfo:
        info = await self.peek(quote_id, partner_id=partner_id, qr_fingerprint=qr_fingerprint,
                               merchant_amount=merchant_amount)
        await self.consume(quote_id, partner_id=partner_id, qr_fingerprint=qr_fingerprint,
                           merchant_amount=merchant_amount, consumer=consumer)
        return info

    def _checked(self, quote_id: str, partner_id: str, qr_fingerprint: str, merchant_amount: MoneyModel) -> Any:
        e = self.quotes.get(quote_id)
        if e is None:
            raise QuoteExpired("quote unknown or expired")
        q: QuoteInfo = e["q"]
        if e["partner"] != partner_id or e["fp"] != qr_fingerprint or q.merchant_amount != merchant_amount:
            raise QuoteInvalid("quote bound to another partner, QR or amount")
        return e

    async def peek(
        self, quote_id: str, *, partner_id: str, qr_fingerprint: str, merchant_amount: MoneyModel
    ) -> QuoteInfo:
        e = self._checked(quote_id, partner_id, qr_fingerprint, merchant_amount)
        q: QuoteInfo = e["q"]
        return QuoteInfo(q.quote_id, q.merchant_amount, q.payer_amount, q.rate, q.expires_at, e["wire"])

    async def consume(
        self, quote_id: str, *, partner_id: str, qr_fingerprint: str, merchant_amount: MoneyModel, consumer: str
    ) -> None:
        e = self._checked(quote_id, partner_id, qr_fingerprint, merchant_amount)
        if e["used"] not in (None, consumer):
            raise QuoteInvalid("quote already used")
        e["used"] = consumer

    async def unredeem(self, quote_id: str, consumer: str) -> None:
        e = self.quotes.get(quote_id)
        if e is not None and e["used"] == consumer:
            e["used"] = None

    async def reserve(
        self,
        *,
        reservation_id: str,
        payer: Payer,
        merchant_country: str,
        merchant_amount: MoneyModel,
        payer_amount: MoneyModel,
        at: datetime,
        wallet: str = "",
        merchant_name: str = "",
    ) -> PolicyResult:
        held = sum(self.reserved.values())
        if reservation_id not in self.reserved and held + merchant_amount.minor > self.cap_per_payer:
            raise LimitExceeded("annual cap", limit="annual_cap")
        self.reserved[reservation_id] = merchant_amount.minor
        return PolicyResult(flags=(), reservation={"reservation_id": reservation_id, "holder": payer.id})

    async def release(
        self,
        reservation: Mapping[str, Any],
        *,
        fraction: tuple[int, int] | None = None,
        release_id: str | None = None,
    ) -> None:
        rid = str(reservation["reservation_id"])
        if release_id is not None:
            if release_id in self.release_ids:
                return
            self.release_ids.add(release_id)
        self.released.append((rid, fraction))
        if rid in self.reserved:
            if fraction is None:
                del self.reserved[rid]
            else:
                self.reserved[rid] -= self.reserved[rid] * fraction[0] // fraction[1]

    def refund_payer_amount(
        self,
        *,
        quote: Mapping[str, Any],
        refund: MoneyModel,
        refunded_before: MoneyModel,
        refunded_payer_before: MoneyModel,
        paid_payer: MoneyModel,
        paid_merchant: MoneyModel,
    ) -> MoneyModel:
        if refunded_before.minor + refund.minor == paid_merchant.minor:
            return MoneyModel.of(paid_payer.currency, paid_payer.minor - refunded_payer_before.minor)
        value = Decimal(paid_payer.minor) * refund.minor / paid_merchant.minor
        return MoneyModel.of(paid_payer.currency, int(value.quantize(Decimal(1), ROUND_HALF_UP)))


# --- a whole payment core over fakes ------------------------------------------------------------------
class ManualClock:
    """A clock tests move by hand (recovery looks at ``next_attempt_at`` against it)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 12:00 in Seoul

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


FAST_POLICY_ARGS: dict[str, Any] = {
    "call_attempts": 3,
    "backoff_base_s": 0.001,
    "backoff_cap_s": 0.004,
    "inquiry_intervals_s": (1.0, 2.0, 4.0),
    "retry_cap_s": 8.0,
    "lease_s": 30.0,
}
SEOUL_STATIC = "SEOUL-STATIC"
SEOUL_DYNAMIC = "SEOUL-DYNAMIC-15000"
SHANGHAI_STATIC = "SHANGHAI-STATIC"
PAYER_START = {"cn-payer": 1_000_000, "kr-payer": 10_000_000}


@dataclass
class Harness:
    store: Store
    clock: ManualClock
    wallets: dict[str, FakeWallet]
    acquirers: dict[str, FakeAcquirer]
    pricing: FakePricing
    resolver: FakeResolver
    orch: Orchestrator
    rev: ReversalService
    recovery: Recovery

    async def get(self, payment_id: str) -> PaymentRecord:
        rec = await self.store.get_payment(payment_id)
        assert rec is not None, payment_id
        return rec

    def restart(self) -> Harness:
        """A new gateway process on the same store and partners (new owner id)."""
        return build_harness(self.store, self.clock, self.wallets, self.acquirers, self.pricing)


def build_harness(
    store: Store,
    clock: ManualClock | None = None,
    wallets: dict[str, FakeWallet] | None = None,
    acquirers: dict[str, FakeAcquirer] | None = None,
    pricing: FakePricing | None = None,
    *,
    lease_s: float | None = None,
) -> Harness:
    clock = clock or ManualClock()
    wallets = wallets or {
        "alipay-cn": FakeWallet("alipay-cn", {"cn-payer": PAYER_START["cn-payer"]}),
        "kakaopay-kr": FakeWallet("kakaopay-kr", {"kr-payer": PAYER_START["kr-payer"]}),
    }
    acquirers = acquirers or {p: FakeAcquirer(p) for p in ("kakaopay-kr", "alipay-cn")}
    pricing = pricing or FakePricing(
        rates={("KRW", "CNY"): Decimal("0.0053"), ("CNY", "KRW"): Decimal("188.5")}, cap_per_payer=2_000_000
    )
    resolver = FakeResolver(
        codes={
            SEOUL_STATIC: FakeQR("kakaopay-kr", "KRW", "KR", "SEOUL"),
            SEOUL_DYNAMIC: FakeQR("kakaopay-kr", "KRW", "KR", "SEOUL", 15000),
            SHANGHAI_STATIC: FakeQR("alipay-cn", "CNY", "CN", "SHANGHAI"),
        },
        countries={"alipay-cn": "CN", "kakaopay-kr": "KR"},
    )
    partners = Partners(wallets=dict(wallets), acquirers=dict(acquirers))
    policy = RetryPolicy(**{**FAST_POLICY_ARGS, **({"lease_s": lease_s} if lease_s else {})})
    orch = Orchestrator(store, partners, resolver, pricing, policy=policy, clock=clock, claim_wait_s=5.0)
    rev = ReversalService(store, partners, pricing, policy=policy, clock=clock, owner=orch.owner)
    recovery = Recovery(orch, rev, interval_s=0.01, clock=clock)
    orch.on_due = recovery.wake
    return Harness(store, clock, wallets, acquirers, pricing, resolver, orch, rev, recovery)
