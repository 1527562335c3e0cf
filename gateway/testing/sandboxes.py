"""Test helpers around the sandbox partners: request builders for the adapter port, and
signed partner answers for tests that mock the partner (aioresponses), so a mocked partner
still speaks each family's signature scheme."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.base import CreditRequest, DebitRequest
from gateway.signing import Signer, sign_response
from schemas.money import MoneyModel
from schemas.payment import Merchant, MerchantAccount, Payer

SEOUL = Merchant(
    name="HANGANG BBQ",
    city="SEOUL",
    country="KR",
    account=MerchantAccount(identifier="com.kakaopay", fields={"01": "KP-M-HANGANG-0001"}),
)
SHANGHAI = Merchant(
    name="SHANGHAI NOODLE HOUSE",
    city="SHANGHAI",
    country="CN",
    account=MerchantAccount(identifier="com.alipay", fields={"01": "ALICN-NOODLE-0001"}),
)


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """A request as the mocked partner saw it."""

    method: str
    path: str
    headers: Mapping[str, str]
    content: bytes


@dataclass(frozen=True, slots=True)
class Answer:
    """What the mocked partner answers."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @classmethod
    def json(cls, status: int, doc: Any, headers: Mapping[str, str] | None = None) -> Answer:
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        return cls(status, {"Content-Type": "application/json", **(headers or {})}, body)


def uid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def debit_request(
    *,
    payer: str,
    amount: MoneyModel,
    merchant_amount: MoneyModel | None = None,
    merchant: Merchant = SEOUL,
    quote: Mapping[str, Any] | None = None,
    payment_id: str | None = None,
    debit_id: str | None = None,
) -> DebitRequest:
    pid = payment_id or uid("pay")
    return DebitRequest(
        debit_id=debit_id or f"{pid}-d1",
        payment_id=pid,
        payer=Payer(id=payer, residency="non-resident", country="CN"),
        amount=amount,
        merchant_amount=merchant_amount or amount,
        merchant=merchant,
        quote=quote,
    )


def credit_request(
    *,
    amount: MoneyModel,
    merchant: Merchant = SEOUL,
    payment_id: str | None = None,
    credit_id: str | None = None,
) -> CreditRequest:
    pid = payment_id or uid("pay")
    return CreditRequest(credit_id=credit_id or f"{pid}-c1", payment_id=pid, merchant=merchant, amount=amount)


def qrgw_answer(signer: Signer, request: SeenRequest, status: int, doc: Any) -> Answer:
    """A partner answer signed with the qrgw profile, bound to ``request``'s signature."""
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    headers: dict[str, str] = {"Content-Type": "application/json"}
    sign_response(
        signer,
        status=status,
        headers=headers,
        body=body,
        req_method=request.method,
        req_path=request.path,
        req_signature=request.headers["Signature"],
    )
    return Answer(status, headers, body)


def alipay_answer(
    signer: Signer | None,
    request: SeenRequest,
    doc: Any,
    *,
    client_id: str,
    key_version: str = "1",
    status: int = 200,
) -> Answer:
    """An Alipay+ answer signed RSA256 with ``Response-Time`` (unsigned when ``signer`` is None)."""
    from gateway.signing import alipay_sign

    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    headers = {"Content-Type": "application/json"}
    if signer is not None:
        rt = datetime.now(UTC).isoformat(timespec="seconds")
        headers |= {
            "Client-Id": client_id,
            "Response-Time": rt,
            "Signature": alipay_sign(
                signer,
                method=request.method,
                uri=request.path,
                client_id=client_id,
                request_time=rt,
                body=body,
                key_version=key_version,
            ),
        }
    return Answer(status, headers, body)
