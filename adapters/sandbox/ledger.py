"""The sandbox partner's books: payer balances (wallet role) and merchant ledgers (acquirer role).

Family-neutral: each family's server translates its wire into these calls and the neutral
``Answer`` back into its wire. Every operation is idempotent on its id (a repeat returns the
first answer; the same id with different content answers ``INCONSISTENT``), and a cancel of a
debit never received is recorded so that a late copy of the debit is refused (``CLOSED``).

Invariant support: ``by_payment()`` sums, per gateway payment id, what was debited from payers,
returned to them, credited to merchants and taken back, so a soak can check "no payer debited
without the merchant credited or the debit reversed" across sandboxes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

Status = Literal["SUCCEEDED", "FAILED"]
# Neutral failure codes; families map them to their own vocabulary.
INSUFFICIENT = "INSUFFICIENT_BALANCE"
NO_PAYER = "PAYER_NOT_FOUND"
CLOSED = "ORDER_CLOSED"  # debit arriving after its cancel
NOT_FOUND = "NOT_FOUND"
EXCEEDS = "AMOUNT_EXCEEDS"
INCONSISTENT = "INCONSISTENT"
CURRENCY = "CURRENCY_MISMATCH"


@dataclass(frozen=True)
class Answer:
    status: Status
    ref: str | None = None  # the partner's own id for the operation
    code: str | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "SUCCEEDED"


@dataclass
class Debit:
    debit_id: str
    payment_id: str
    payer: str
    amount: int
    currency: str
    ref: str
    answer: Answer
    cancelled: bool = False
    refunded: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def taken(self) -> int:
        """What the payer is out of pocket now for this debit."""
        return 0 if (self.cancelled or not self.answer.ok) else self.amount - self.refunded


@dataclass
class Credit:
    credit_id: str
    payment_id: str
    merchant: str
    amount: int
    currency: str
    ref: str
    answer: Answer
    reversed: int = 0


@dataclass(frozen=True)
class Movement:
    """One money movement as the partner's books record it (its settlement file's row)."""

    day: str  # business day (YYYY-MM-DD in the scheme's zone) it happened on
    at: datetime
    partner_ref: str
    gateway_ref: str  # the id the gateway called it with (debit, credit, refund, reversal id)
    type: Literal["debit", "credit", "refund", "reversal"]
    currency: str
    amount: int
    status: Status
    of: str = ""  # a refund's / reversal's original operation (debit or credit id)


@dataclass
class PaymentSums:
    payment_id: str
    currency_payer: str | None = None
    currency_merchant: str | None = None
    debited: int = 0
    returned: int = 0  # refunded or cancelled back to the payer
    credited: int = 0
    credit_reversed: int = 0

    @property
    def payer_out(self) -> int:
        return self.debited - self.returned

    @property
    def merchant_in(self) -> int:
        return self.credited - self.credit_reversed


class Ledger:
    def __init__(
        self,
        partner_id: str,
        currency: str,
        *,
        balances: dict[str, int] | None = None,
        default_balance: int | None = 10**9,
        zone: str = "Asia/Seoul",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.partner_id = partner_id
        self.zone = ZoneInfo(zone)
        self.clock = clock
        self.journal: list[Movement] = []  # first sight of each operation, in order
        self.currency = currency
        self.balances: dict[str, int] = dict(balances or {})
        self.default_balance = default_balance
        self.merchants: dict[str, int] = {}
        self.debits: dict[str, Debit] = {}
        self.voided: set[str] = set()  # debit ids cancelled before (or without) being received
        self.refunds: dict[str, tuple[str, int, Answer]] = {}
        self.credits: dict[str, Credit] = {}
        self.reversals: dict[str, tuple[str, int, Answer]] = {}
        self._seq = itertools.count(1)

    def _ref(self, kind: str) -> str:
        return f"{self.partner_id}-{kind}-{next(self._seq):08d}"

    def _record(self, typ: Any, gateway_ref: str, ans: Answer, currency: str, amount: int, of: str = "") -> None:
        at = self.clock()
        self.journal.append(Movement(at.astimezone(self.zone).date().isoformat(), at, ans.ref or "", gateway_ref,
                                     typ, currency, amount, ans.status, of))

    def movements(self, day: str) -> list[Movement]:
        return [m for m in self.journal if m.day == day]

    def balance(self, payer: str) -> int | None:
        if payer not in self.balances and self.default_balance is not None:
            self.balances[payer] = self.default_balance
        return self.balances.get(payer)

    # --- wallet role ------------------------------------------------------------------------------
    def debit(
        self, debit_id: str, payment_id: str, payer: str, amount: int, currency: str, **meta: Any
    ) -> Answer:
        seen = self.debits.get(debit_id)
        if seen is not None:
            if (seen.payer, seen.amount, seen.currency) != (payer, amount, currency):
                return Answer("FAILED", seen.ref, INCONSISTENT, "same debit id, different content")
            return seen.answer
        ref = self._ref("debit")
        if debit_id in self.voided:
            ans = Answer("FAILED", ref, CLOSED, "debit was cancelled before it arrived")
        elif currency != self.currency:
            ans = Answer("FAILED", ref, CURRENCY, f"wallet holds {self.currency}")
        else:
            bal = self.balance(payer)
            if bal is None:
                ans = Answer("FAILED", ref, NO_PAYER, "no such payer")
            elif bal < amount:
                ans = Answer("FAILED", ref, INSUFFICIENT, "balance too low")
            else:
                self.balances[payer] = bal - amount
                ans = Answer("SUCCEEDED", ref)
        self.debits[debit_id] = Debit(debit_id, payment_id, payer, amount, currency, ref, ans, meta=meta)
        self._record("debit", debit_id, ans, currency, amount)
        return ans

    def inquire_debit(self, debit_id: str) -> Debit | None:
        return self.debits.get(debit_id)

    def cancel_debit(self, debit_id: str) -> Answer:
        """Whole-debit cancel; idempotent; a cancel of an unseen debit voids it for good."""
        d = self.debits.get(debit_id)
        if d is None:
            self.voided.add(debit_id)
            return Answer("SUCCEEDED", None, message="no such debit; recorded so a late copy is refused")
        if d.cancelled or not d.answer.ok:
            d.cancelled = True
            return Answer("SUCCEEDED", d.ref)
        if d.refunded:
            return Answer("FAILED", d.ref, EXCEEDS, "debit already partly refunded; refund the rest")
        self.balances[d.payer] = self.balances.get(d.payer, 0) + d.amount
        d.cancelled = True
        ans = Answer("SUCCEEDED", d.ref)
        self._record("reversal", debit_id, ans, d.currency, d.amount, debit_id)  # the debit given back whole
        return ans

    def refund(self, refund_id: str, debit_id: str, amount: int, currency: str) -> Answer:
        seen = self.refunds.get(refund_id)
        if seen is not None:
            if (seen[0], seen[1]) != (debit_id, amount):
                return Answer("FAILED", seen[2].ref, INCONSISTENT, "same refund id, different content")
            return seen[2]
        d = self.debits.get(debit_id)
        ref = self._ref("refund")
        if d is None or not d.answer.ok:
            ans = Answer("FAILED", ref, NOT_FOUND, "no succeeded debit with this id")
        elif d.cancelled:
            ans = Answer("FAILED", ref, CLOSED, "debit was cancelled")
        elif currency != d.currency:
            ans = Answer("FAILED", ref, CURRENCY, f"debit is in {d.currency}")
        elif amount > d.amount - d.refunded or amount <= 0:
            ans = Answer("FAILED", ref, EXCEEDS, "refund exceeds what remains of the debit")
        else:
            d.refunded += amount
            self.balances[d.payer] = self.balances.get(d.payer, 0) + amount
            ans = Answer("SUCCEEDED", ref)
        self.refunds[refund_id] = (debit_id, amount, ans)
        self._record("refund", refund_id, ans, currency, amount, debit_id)
        return ans

    # --- acquirer role ----------------------------------------------------------------------------
    def credit(self, credit_id: str, payment_id: str, merchant: str, amount: int, currency: str) -> Answer:
        seen = self.credits.get(credit_id)
        if seen is not None:
            if (seen.merchant, seen.amount, seen.currency) != (merchant, amount, currency):
                return Answer("FAILED", seen.ref, INCONSISTENT, "same credit id, different content")
            return seen.answer
        ref = self._ref("credit")
        if currency != self.currency:
            ans = Answer("FAILED", ref, CURRENCY, f"acquirer settles in {self.currency}")
        else:
            self.merchants[merchant] = self.merchants.get(merchant, 0) + amount
            ans = Answer("SUCCEEDED", ref)
        self.credits[credit_id] = Credit(credit_id, payment_id, merchant, amount, currency, ref, ans)
        self._record("credit", credit_id, ans, currency, amount)
        return ans

    def inquire_credit(self, credit_id: str) -> Credit | None:
        return self.credits.get(credit_id)

    def reverse(self, credit_id: str, reversal_id: str, amount: int, currency: str) -> Answer:
        seen = self.reversals.get(reversal_id)
        if seen is not None:
            if (seen[0], seen[1]) != (credit_id, amount):
                return Answer("FAILED", seen[2].ref, INCONSISTENT, "same reversal id, different content")
            return seen[2]
        c = self.credits.get(credit_id)
        ref = self._ref("reversal")
        if c is None or not c.answer.ok:
            ans = Answer("FAILED", ref, NOT_FOUND, "no succeeded credit with this id")
        elif currency != c.currency:
            ans = Answer("FAILED", ref, CURRENCY, f"credit is in {c.currency}")
        elif amount > c.amount - c.reversed or amount <= 0:
            ans = Answer("FAILED", ref, EXCEEDS, "reversal exceeds what remains of the credit")
        else:
            c.reversed += amount
            self.merchants[c.merchant] = self.merchants.get(c.merchant, 0) - amount
            ans = Answer("SUCCEEDED", ref)
        self.reversals[reversal_id] = (credit_id, amount, ans)
        self._record("reversal", reversal_id, ans, currency, amount, credit_id)
        return ans

    # --- inspection -------------------------------------------------------------------------------
    def by_payment(self) -> dict[str, PaymentSums]:
        out: dict[str, PaymentSums] = {}
        for d in self.debits.values():
            s = out.setdefault(d.payment_id, PaymentSums(d.payment_id))
            s.currency_payer = d.currency
            if d.answer.ok:
                s.debited += d.amount
                s.returned += d.amount if d.cancelled else d.refunded
        for c in self.credits.values():
            s = out.setdefault(c.payment_id, PaymentSums(c.payment_id))
            s.currency_merchant = c.currency
            if c.answer.ok:
                s.credited += c.amount
                s.credit_reversed += c.reversed
        return out

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready view for ``GET /sandbox/ledger``."""
        return {
            "partner_id": self.partner_id,
            "currency": self.currency,
            "balances": {k: str(v) for k, v in sorted(self.balances.items())},
            "merchants": {k: str(v) for k, v in sorted(self.merchants.items())},
            "voided_debits": sorted(self.voided),
            "payments": {
                pid: {k: (str(v) if isinstance(v, int) else v) for k, v in asdict(s).items()}
                for pid, s in sorted(self.by_payment().items())
            },
        }


def merge_sums(*ledgers: Ledger) -> dict[str, PaymentSums]:
    """One view per payment across sandboxes (wallet leg from one, acquirer leg from another)."""
    out: dict[str, PaymentSums] = {}
    for led in ledgers:
        for pid, s in led.by_payment().items():
            m = out.setdefault(pid, PaymentSums(pid))
            if s.currency_payer:
                m.currency_payer = s.currency_payer
                m.debited += s.debited
                m.returned += s.returned
            if s.currency_merchant:
                m.currency_merchant = s.currency_merchant
                m.credited += s.credited
                m.credit_reversed += s.credit_reversed
    return out


def violations(sums: dict[str, PaymentSums]) -> list[str]:
    """Payments where a payer is out of pocket but the merchant holds nothing (or vice versa)."""
    bad = []
    for pid, s in sorted(sums.items()):
        if s.payer_out > 0 and s.merchant_in <= 0:
            bad.append(f"{pid}: payer debited {s.payer_out} {s.currency_payer} without merchant credit")
        if s.merchant_in > 0 and s.payer_out <= 0:
            bad.append(f"{pid}: merchant credited {s.merchant_in} {s.currency_merchant} without payer debit")
    return bad
