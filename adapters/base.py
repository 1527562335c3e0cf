"""The adapter port: what the orchestrator asks of a partner, whatever its wire format.

An adapter translates; it never retries, never decides state, never raises for a
partner's answer. Every call returns an ``Outcome``:

- ``succeeded``: the partner confirms the operation;
- ``failed(code, message)``: the partner confirms it did *not* happen;
- ``unknown(reason)``: timeout, connection error, 5xx, ``U``, an unverifiable answer —
  the orchestrator must retry with the same id, inquire, then cancel. Never a failure.

Every id passed in (``debit_id``, ``credit_id``, ``refund_id``, ``reversal_id``) is the
idempotency key of that call at the partner: a repeat returns the first answer.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from schemas.money import MoneyModel
from schemas.payment import Merchant, Payer

OutcomeKind = Literal["succeeded", "failed", "unknown"]


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    code: str | None = None
    message: str | None = None
    partner_ref: str | None = None  # the partner's own id (tid, paymentId ...)
    not_found: bool = False  # failed because the partner never received the original call
    detail: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def succeeded(cls, partner_ref: str | None = None, **detail: Any) -> Outcome:
        return cls("succeeded", partner_ref=partner_ref, detail=detail)

    @classmethod
    def failed(cls, code: str, message: str = "", *, not_found: bool = False, **detail: Any) -> Outcome:
        return cls("failed", code=code, message=message or code, not_found=not_found, detail=detail)

    @classmethod
    def unknown(cls, reason: str, **detail: Any) -> Outcome:
        return cls("unknown", code="UNKNOWN", message=reason, detail=detail)

    @property
    def is_final(self) -> bool:
        return self.kind != "unknown"


@dataclass(frozen=True, slots=True)
class DebitRequest:
    debit_id: str
    payment_id: str
    payer: Payer
    amount: MoneyModel  # payer currency
    merchant_amount: MoneyModel
    merchant: Merchant
    quote: Mapping[str, Any] | None = None  # rate, mid_rate, spread_bps, quote_id, created_at, expires_at


@dataclass(frozen=True, slots=True)
class CreditRequest:
    credit_id: str
    payment_id: str
    merchant: Merchant
    amount: MoneyModel  # merchant currency


class WalletAdapter(abc.ABC):
    """A partner in the ``wallet`` role: holds payer accounts."""

    partner_id: str

    @abc.abstractmethod
    async def pay(self, req: DebitRequest) -> Outcome:
        """Debit the payer."""

    @abc.abstractmethod
    async def inquire(self, debit_id: str) -> Outcome:
        """Status of a debit; ``failed(not_found=True)`` when the partner never received it."""

    @abc.abstractmethod
    async def cancel(self, debit_id: str, amount: MoneyModel) -> Outcome:
        """Reverse a whole debit (also one never received: the partner records the cancel so a
        late copy of the debit is refused)."""

    @abc.abstractmethod
    async def refund(self, refund_id: str, debit_id: str, amount: MoneyModel) -> Outcome:
        """Return ``amount`` (payer currency) of a succeeded debit to the payer."""


class AcquirerAdapter(abc.ABC):
    """A partner in the ``acquirer`` role: holds merchant accounts."""

    partner_id: str

    @abc.abstractmethod
    async def notify_paid(self, req: CreditRequest) -> Outcome:
        """Tell the acquirer the merchant is paid (credit the merchant)."""

    @abc.abstractmethod
    async def inquire_credit(self, credit_id: str) -> Outcome: ...

    @abc.abstractmethod
    async def reverse(self, credit_id: str, reversal_id: str, amount: MoneyModel) -> Outcome:
        """Take back ``amount`` (merchant currency) of a credit, for a cancel or a refund."""
