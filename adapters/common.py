"""Helpers shared by the adapters: JSON in/out, and the one place where partner errors become
``Outcome.unknown`` (and every outcome is counted)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from adapters.base import Outcome
from adapters.endpoint import PartnerEndpoint
from adapters.http import HttpResponse, OutboundHttp
from schemas import jsonsafe
from schemas.errors import InvalidJSON, PartnerProtocolError, PartnerUnavailable

M = TypeVar("M", bound=BaseModel)


def dumps(doc: Any) -> bytes:
    """Compact UTF-8 JSON; Decimals and datetimes as strings (never floats)."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def read_json(resp: HttpResponse, partner: str, op: str) -> dict[str, Any]:
    try:
        doc = jsonsafe.loads(resp.content)  # bounded: a hostile partner cannot make us recurse
    except InvalidJSON as exc:
        raise PartnerProtocolError(
            f"{op}: answer is not JSON (HTTP {resp.status_code})", partner=partner
        ) from exc
    if not isinstance(doc, dict):
        raise PartnerProtocolError(f"{op}: answer is not a JSON object", partner=partner)
    return doc


def parse_as(model: type[M], doc: dict[str, Any], partner: str, op: str) -> M:
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(body)"
        raise PartnerProtocolError(f"{op}: answer field {where}: {err['msg']}", partner=partner) from exc


async def guarded(
    http: OutboundHttp, ep: PartnerEndpoint, op: str, fn: Callable[[], Awaitable[Outcome]]
) -> Outcome:
    """Run one adapter call; a partner that cannot be reached or trusted yields ``unknown``."""
    try:
        outcome = await fn()
    except PartnerUnavailable as exc:
        outcome = Outcome.unknown(exc.detail, cause=str(exc.extra.get("reason", "unavailable")))
    except PartnerProtocolError as exc:
        outcome = Outcome.unknown(exc.detail, cause="protocol")
    http.record_outcome(ep.id, op, outcome.kind, outcome.code)
    return outcome


class AccountLike(Protocol):
    """A merchant account template as any model carries it (the payment record's or a wire body's)."""

    @property
    def identifier(self) -> str: ...

    @property
    def fields(self) -> Mapping[str, str]: ...


def merchant_ref(account: AccountLike | None, fallback: str) -> str:
    """The merchant's id at its acquirer: a named ``merchant_id`` field, else the QR template's
    sub-tag 01 (where the sample QRs carry it), else the template identifier."""
    if account is None:
        return fallback
    return account.fields.get("merchant_id") or account.fields.get("01") or account.identifier
