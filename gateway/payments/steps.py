"""Shared machinery of the payment drivers: ids, fingerprints, partner calls with retries,
leases and the CAS write helper."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from tenacity import AsyncRetrying, retry_if_result, stop_after_attempt, wait_random_exponential

from adapters.base import Outcome
from gateway.payments.state import RetryPolicy
from gateway.store.base import StaleVersion, Store, payment_lease
from schemas.payment import PaymentRecord

log = structlog.get_logger("gateway.payments")
Clock = Callable[[], datetime]
# (partner_id, operation, outcome kind) -> None: the metrics hook
CallObserver = Callable[[str, str, str], None]


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def fingerprint(body: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a validated request (key order and spacing do not matter)."""
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canon.encode()).hexdigest()


def qr_fingerprint(qr: str) -> str:
    return hashlib.sha256(qr.strip().encode()).hexdigest()


def copy_record(rec: PaymentRecord) -> PaymentRecord:
    """An independent deep copy of ``rec`` (same as ``model_copy(deep=True)``): a dump and re-read
    in pydantic-core, ~5x cheaper than ``copy.deepcopy`` of the nested legs/history on every stage."""
    return PaymentRecord.model_validate(rec.model_dump())


lease_name = payment_lease  # the store owns the name: its scripts take and release the lease


class Caller:
    """Calls a partner: keyed calls retried inline on unknown outcomes (tenacity: exponential
    backoff with full jitter, capped, bounded attempts); an exception is an unknown, never a
    failure, since the partner may have acted."""

    def __init__(self, policy: RetryPolicy, observe: CallObserver | None = None) -> None:
        self.policy = policy
        self.observe = observe

    async def once(self, partner: str, op: str, call: Callable[[], Awaitable[Outcome]]) -> Outcome:
        try:
            out = await call()
        except Exception as exc:  # adapters should not raise; if one does, the outcome is unknown
            log.warning("partner_call_raised", partner=partner, op=op, error=repr(exc))
            out = Outcome.unknown(f"{type(exc).__name__}")
        if self.observe is not None:
            self.observe(partner, op, out.kind)
        return out

    async def keyed(self, partner: str, op: str, call: Callable[[], Awaitable[Outcome]]) -> Outcome:
        p = self.policy
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, p.call_attempts)),
            wait=wait_random_exponential(multiplier=p.backoff_base_s, max=p.backoff_cap_s),
            retry=retry_if_result(lambda o: o.kind == "unknown"),
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else Outcome.unknown("?"),
            reraise=False,
        )
        result: Outcome = await retrying(self.once, partner, op, call)
        return result


async def cas(
    store: Store,
    payment_id: str,
    change: Callable[[PaymentRecord], tuple[PaymentRecord, str, Sequence[Mapping[str, Any]], Sequence[str]] | None],
    *,
    attempts: int = 20,
) -> PaymentRecord | None:
    """Read, apply ``change`` (a pure function returning the new record, the history reason,
    events and extra days, or None for "nothing to do"), write with compare-and-set, and
    retry on a lost race. Returns the stored record (or the current one when nothing to do)."""
    for _ in range(attempts):
        rec = await store.get_payment(payment_id)
        if rec is None:
            return None
        planned = change(rec)
        if planned is None:
            return rec
        new, reason, events, days = planned
        try:
            return await store.update_payment(
                new, expected_version=rec.version, reason=reason, events=events, extra_days=days
            )
        except StaleVersion:
            continue
    raise StaleVersion(f"payment {payment_id}: too many concurrent changes")
