"""Settlement windows, frozen batches and reconciliation exceptions (PROTOCOL.md §9.1).

These are stored documents (``Store`` settlement section) as well as answers: a batch is what
``GET /v1/settlements/windows/{window_id}`` gives its partner. Amounts are integer minor units
as strings, signed where a sign means something (positions). Layout: docs/settlement.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

WINDOW_ID = r"^\d{4}-\d{2}-\d{2}$"  # one business day per window (docs/protocol-decisions.md)
BATCH_VERSION = 1  # the layout of a frozen batch; a batch itself never changes once frozen

ExceptionKind = Literal["missing_at_partner", "missing_at_gateway", "amount_differs", "status_differs", "duplicate"]
LegType = Literal["debit", "credit", "refund", "reversal"]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BatchRef(_Doc):
    partner_id: str
    batch_id: str
    version: int
    content_hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    rows: int


class Window(_Doc):
    """A closed window: what it covered (the outbox cursors it read up to) and its batches."""

    window_id: str = Field(pattern=WINDOW_ID)
    seq: int = Field(ge=1, description="1 for the first window a deployment closed, +1 per close")
    previous: str | None
    closed_at: str
    closed_by: str
    cut_off: str | None = Field(description="The cut-off that made it due, or None when an operator closed it")
    cursors: dict[str, str] = Field(description="Per outbox shard, the last entry the window took")
    items: int
    batches: list[BatchRef]


class Position(_Doc):
    currency: str
    wallet_gross: str
    wallet_reversals: str
    acquirer_gross: str
    acquirer_reversals: str
    wallet_fees: str
    acquirer_fees: str
    net: str = Field(description="> 0: the partner pays the gateway; < 0: the gateway pays the partner")


class Batch(_Doc):
    """One partner's frozen share of a window; ``content_hash`` covers every other field."""

    batch_id: str
    window_id: str = Field(pattern=WINDOW_ID)
    partner_id: str
    version: int
    closed_at: str
    zone: str
    columns: list[str]
    rows: list[list[str]] = Field(description="One per money movement with this partner, in ``columns`` order")
    positions: list[Position]
    fx_margin: list[dict[str, object]] | None = None
    content_hash: str


class ReconException(_Doc):
    """One difference between a partner's file and the gateway's batch."""

    exception_id: str
    window_id: str
    partner_id: str
    kind: ExceptionKind
    type: str
    gateway_ref: str
    partner_ref: str
    currency: str
    gateway_amount: str | None
    partner_amount: str | None
    gateway_status: str | None
    partner_status: str | None
    file_sha256: str
    detected_at: str
    resolved_at: str | None = None
    note: str | None = None
