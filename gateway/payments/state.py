"""The payment state machine: stages, the retry policy and pure decisions.

Nothing here does I/O. ``decide(stage, outcome, visits, policy)`` says what follows a step's
outcome; the orchestrator persists that decision (store CAS) before the next side effect.

Payment stages (``PaymentRecord.stage``; the public ``status`` stays PROCESSING until a
final stage)::

    debit ──S──> credit ──S──────────────────────────────> succeeded (SUCCEEDED)
      │F          │F
      v           v
    failed      debit_reverse ──S──> failed (FAILED, payer's debit cancelled)
      ^           ^    └─F──> debit_refund ──S──> failed   (refused: debit_check)
      │           │
    debit_inquiry (U: retried, then inquired at growing intervals)
      │ budget spent / never received
      v
    debit_cancel ──S──> failed          credit_inquiry ── budget spent ──> credit_reverse ──S──> debit_reverse

Unknown outcomes of cancels, reversals and refunds (idempotent, keyed calls) are retried
later with capped backoff until the partner answers; the payment stays PROCESSING.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from adapters.base import Outcome
from schemas.payment import Failure, PaymentStatus

# --- stages -----------------------------------------------------------------------------------------
DEBIT = "debit"
DEBIT_INQUIRY = "debit_inquiry"
DEBIT_CANCEL = "debit_cancel"
CREDIT = "credit"
CREDIT_INQUIRY = "credit_inquiry"
CREDIT_REVERSE = "credit_reverse"
DEBIT_REVERSE = "debit_reverse"
DEBIT_REFUND = "debit_refund"
DEBIT_CHECK = "debit_check"  # after refused compensations: is the payer still charged?
SUCCEEDED = "succeeded"
FAILED = "failed"

ACTIVE_STAGES = frozenset(
    {
        DEBIT,
        DEBIT_INQUIRY,
        DEBIT_CANCEL,
        CREDIT,
        CREDIT_INQUIRY,
        CREDIT_REVERSE,
        DEBIT_REVERSE,
        DEBIT_REFUND,
        DEBIT_CHECK,
    }
)
# Stages whose call is a keyed, idempotent request: safe to retry inline with the same id.
RETRYABLE = ACTIVE_STAGES - {DEBIT_INQUIRY, CREDIT_INQUIRY, DEBIT_CHECK}

# Failure codes the gateway itself assigns (partners' codes pass through otherwise).
DEBIT_UNCONFIRMED = "DEBIT_UNCONFIRMED"
CREDIT_UNCONFIRMED = "CREDIT_UNCONFIRMED"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before handing a payment to the recovery task, and how it backs off."""

    call_attempts: int = 3  # inline tries of one keyed call (the first + retries) on unknown
    backoff_base_s: float = 0.2
    backoff_cap_s: float = 2.0
    inquiry_intervals_s: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
    credit_sends: int = 3  # credits re-sent when the acquirer never received one
    retry_cap_s: float = 60.0  # scheduled retries of cancels/reversals/refunds back off to this
    lease_s: float = 30.0  # a driver's hold on a payment (recovery waits past it)
    jitter: bool = True

    def backoff(self, attempt: int) -> float:
        """Delay before inline retry ``attempt`` (1-based): exponential, capped, full jitter."""
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * (2 ** max(0, attempt - 1)))
        return random.uniform(ceiling / 2, ceiling) if self.jitter else ceiling

    def inquiry_delay(self, inquiries_done: int) -> float:
        i = min(inquiries_done, len(self.inquiry_intervals_s) - 1)
        return self.inquiry_intervals_s[i]

    def retry_delay(self, tries_done: int) -> float:
        return min(self.retry_cap_s, self.backoff_base_s * float(2 ** min(tries_done, 30)))


@dataclass(frozen=True)
class Decision:
    """What to persist after a step: the next stage, when to run it, and why."""

    stage: str
    reason: str
    status: PaymentStatus = PaymentStatus.PROCESSING
    delay_s: float = 0.0  # 0: run now (inline); >0: hand to the recovery task
    failure: Failure | None = None  # set when the payment is (or is heading to be) FAILED
    flags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def final(self) -> bool:
        return self.status != PaymentStatus.PROCESSING


def _fail(o: Outcome, what: str) -> Failure:
    return Failure(code=o.code or "PARTNER_DECLINED", message=f"{what}: {o.message or o.code}")


def decide(stage: str, o: Outcome, visits: Mapping[str, int], policy: RetryPolicy) -> Decision:
    """The next stage after ``stage``'s call answered ``o``.

    ``visits[stage]`` counts how many times each stage's call was made (this one included);
    flags ``cancel_refused`` / ``reverse_refused`` mark loops that need another look.
    """
    n = visits.get(stage, 0)
    if stage in (DEBIT, DEBIT_INQUIRY):
        if o.kind == "succeeded":
            return Decision(CREDIT, "payer debit confirmed")
        if o.kind == "failed" and not (stage == DEBIT_INQUIRY and o.not_found):
            return Decision(FAILED, "payer debit declined", PaymentStatus.FAILED, failure=_fail(o, "debit"))
        if o.kind == "failed":  # the wallet never received the debit: cancel it so a late copy is refused
            return Decision(DEBIT_CANCEL, "debit never received by the wallet; cancelling it")
        if stage == DEBIT:
            return Decision(
                DEBIT_INQUIRY,
                f"debit outcome unknown ({o.message}); inquiring",
                delay_s=policy.inquiry_delay(0),
            )
        if visits.get("cancel_refused", 0) or n < len(policy.inquiry_intervals_s):
            return Decision(DEBIT_INQUIRY, f"debit still unknown ({o.message})", delay_s=policy.inquiry_delay(n))
        return Decision(DEBIT_CANCEL, "debit unknown after every inquiry; cancelling it")
    if stage == DEBIT_CANCEL:
        if o.kind == "succeeded":
            return Decision(
                FAILED,
                "unconfirmed debit cancelled at the wallet",
                PaymentStatus.FAILED,
                failure=Failure(
                    code=DEBIT_UNCONFIRMED, message="the wallet never confirmed the debit; it was cancelled"
                ),
            )
        if o.kind == "failed":  # refused: the debit may have gone through after all; look again
            return Decision(
                DEBIT_INQUIRY,
                f"wallet refused the cancel ({o.code}); inquiring again",
                delay_s=policy.inquiry_delay(0),
                flags=("cancel_refused",),
            )
        return Decision(DEBIT_CANCEL, f"cancel outcome unknown ({o.message}); retrying", delay_s=policy.retry_delay(n))
    if stage in (CREDIT, CREDIT_INQUIRY):
        if o.kind == "succeeded":
            return Decision(SUCCEEDED, "merchant credit confirmed", PaymentStatus.SUCCEEDED)
        if o.kind == "failed" and stage == CREDIT_INQUIRY and o.not_found:
            if visits.get(CREDIT, 0) < policy.credit_sends:
                return Decision(CREDIT, "credit never received by the acquirer; sending it again")
            return Decision(
                DEBIT_REVERSE,
                "acquirer never received the credit; reversing the payer debit",
                failure=Failure(code=CREDIT_UNCONFIRMED, message="the acquirer never received the credit"),
            )
        if o.kind == "failed":
            return Decision(
                DEBIT_REVERSE,
                "merchant credit declined; reversing the payer debit",
                failure=_fail(o, "merchant credit"),
            )
        if stage == CREDIT:
            return Decision(
                CREDIT_INQUIRY,
                f"credit outcome unknown ({o.message}); inquiring",
                delay_s=policy.inquiry_delay(0),
            )
        if visits.get("reverse_refused", 0) or n < len(policy.inquiry_intervals_s):
            return Decision(CREDIT_INQUIRY, f"credit still unknown ({o.message})", delay_s=policy.inquiry_delay(n))
        return Decision(CREDIT_REVERSE, "credit unknown after every inquiry; reversing it")
    if stage == CREDIT_REVERSE:
        if o.kind == "succeeded" or (o.kind == "failed" and o.not_found):
            return Decision(
                DEBIT_REVERSE,
                "unconfirmed credit reversed; reversing the payer debit",
                failure=Failure(
                    code=CREDIT_UNCONFIRMED,
                    message="the acquirer never confirmed the credit; both legs reversed",
                ),
            )
        if o.kind == "failed":
            return Decision(
                CREDIT_INQUIRY,
                f"acquirer refused the reversal ({o.code}); inquiring again",
                delay_s=policy.inquiry_delay(0),
                flags=("reverse_refused",),
            )
        return Decision(
            CREDIT_REVERSE, f"reversal outcome unknown ({o.message}); retrying", delay_s=policy.retry_delay(n)
        )
    if stage in (DEBIT_REVERSE, DEBIT_REFUND):
        if o.kind == "succeeded":
            return Decision(FAILED, "payer debit reversed (compensation)", PaymentStatus.FAILED)
        if o.kind == "failed" and stage == DEBIT_REVERSE:
            return Decision(DEBIT_REFUND, f"wallet refused the cancel ({o.code}); refunding the debit instead")
        if o.kind == "failed":  # refund refused too: look at the debit itself
            return Decision(DEBIT_CHECK, f"wallet refused the refund ({o.code}); checking the debit")
        return Decision(stage, f"compensation outcome unknown ({o.message}); retrying", delay_s=policy.retry_delay(n))
    if stage == DEBIT_CHECK:
        if o.kind == "failed":  # cancelled (or never taken): the payer is not charged
            return Decision(FAILED, f"payer debit is not standing ({o.code}); nothing to repay", PaymentStatus.FAILED)
        if o.kind == "succeeded":  # still charged and not repayable: keep trying, flag for review
            return Decision(
                DEBIT_REFUND,
                "payer still charged; retrying the refund, needs review",
                delay_s=policy.retry_cap_s,
                flags=("needs_review",),
            )
        return Decision(DEBIT_CHECK, f"debit status unknown ({o.message}); retrying", delay_s=policy.retry_delay(n))
    raise ValueError(f"no decision for stage {stage!r}")


# --- cancels and refunds ----------------------------------------------------------------------------
WALLET_CANCEL = "wallet_cancel"
WALLET_REFUND = "wallet_refund"
ACQUIRER_REVERSE = "acquirer_reverse"
DONE = "done"


@dataclass(frozen=True)
class SubDecision:
    """Next step of a cancel or a refund (``status`` is the cancel's / refund's own)."""

    stage: str
    status: str  # PROCESSING | SUCCEEDED | FAILED
    reason: str
    delay_s: float = 0.0
    failure: Failure | None = None
    flags: tuple[str, ...] = ()


def decide_reversal(kind: str, stage: str, o: Outcome, tries: int, policy: RetryPolicy) -> SubDecision:
    """Cancels and refunds: the payer is made whole first (wallet), then the merchant reversed.

    A wallet refusal ends it with nothing moved; an acquirer refusal after the payer was repaid
    is recorded and flagged (the payer's side is final), never undone.
    """
    first = WALLET_CANCEL if kind == "cancel" else WALLET_REFUND
    if stage == first:
        if o.kind == "succeeded":
            return SubDecision(ACQUIRER_REVERSE, "PROCESSING", f"payer {kind} confirmed by the wallet")
        if o.kind == "failed":
            return SubDecision(DONE, "FAILED", f"wallet refused the {kind}", failure=_fail(o, kind))
        return SubDecision(
            first,
            "PROCESSING",
            f"wallet {kind} unknown ({o.message}); retrying",
            delay_s=policy.retry_delay(tries),
        )
    if stage == ACQUIRER_REVERSE:
        if o.kind == "succeeded":
            return SubDecision(DONE, "SUCCEEDED", "merchant credit reversed by the acquirer")
        if o.kind == "failed":
            return SubDecision(
                DONE,
                "SUCCEEDED",
                f"acquirer refused the reversal ({o.code}); payer repaid, merchant side left for settlement review",
                flags=("acquirer_reversal_refused",),
            )
        return SubDecision(
            ACQUIRER_REVERSE,
            "PROCESSING",
            f"reversal unknown ({o.message}); retrying",
            delay_s=policy.retry_delay(tries),
        )
    raise ValueError(f"no decision for {kind} stage {stage!r}")
