"""``qrgw conformance``: play the gateway against a partner's own ``qrgw`` family server
(PROTOCOL.md §8) and judge each behaviour the gateway relies on. The checks are in
``gateway.partnerkit.checks``; this module holds what they share and the report.

Every check uses fresh ids (a per-run prefix), so runs never collide with each other or with
earlier runs against the same partner.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from gateway.config import Settings
from gateway.keys import registry_from_settings
from gateway.partnerjwks import partner_tls
from gateway.partnerkit.wire import Exchange, Mutate, exchange
from gateway.signing import KeyRegistry
from schemas.errors import ConfigError


@dataclass(frozen=True)
class Result:
    name: str
    passed: bool | None  # None: could not be observed on this partner (says why)
    detail: str

    @property
    def mark(self) -> str:
        return {True: "PASS", False: "FAIL", None: "N/A"}[self.passed]


class CheckFailed(Exception):
    """A check's expectation was not met; the message says what was seen."""


@dataclass
class Partner:
    """The partner under test, and the gateway identity the runner plays."""

    url: str
    partner_id: str
    currency: str
    registry: KeyRegistry  # the gateway's signers + the partner's public keys
    payer: str = "conformance-payer"
    merchant_identifier: str = "conformance.merchant"
    webhook_url: str = ""
    run: str = field(default_factory=lambda: "cf" + secrets.token_hex(4))
    client: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=10.0))
    exchanges: list[Exchange] = field(default_factory=list)
    _n: int = 0

    def new_id(self, kind: str) -> str:
        self._n += 1
        return f"{self.run}-{kind}-{self._n}"

    def money(self, value: int | str, currency: str | None = None) -> dict[str, str]:
        return {"currency": currency or self.currency, "value": str(value)}

    async def call(
        self,
        method: str,
        path: str,
        doc: dict[str, Any] | None = None,
        *,
        url: str | None = None,
        mutate: Mutate | None = None,
        created: int | None = None,
        track: bool = True,
    ) -> Exchange:
        """A signed call as the gateway makes it; the answer's signature is judged."""
        body = json.dumps(doc, separators=(",", ":")).encode() if doc is not None else None
        ex = await exchange(self.client, self.registry.signer, self.registry, method, url or self.url + path,
                            body, expect_partner=self.partner_id, mutate=mutate, created=created)
        if track:
            self.exchanges.append(ex)
        return ex

    def debit_doc(self, debit_id: str, value: int | str = 1000, currency: str | None = None) -> dict[str, Any]:
        return {
            "debit_id": debit_id,
            "payment_id": f"{debit_id}-pay",
            "payer": {"id": self.payer},
            "amount": self.money(value, currency),
            "merchant_amount": self.money(value, currency),
            "quote": None,
            "merchant": {"name": "Conformance Shop", "city": "Seoul", "country": "KR"},
        }

    def credit_doc(self, credit_id: str, value: int | str = 1000, currency: str | None = None) -> dict[str, Any]:
        return {
            "credit_id": credit_id,
            "payment_id": f"{credit_id}-pay",
            "merchant": {"account": {"identifier": self.merchant_identifier, "fields": {}},
                         "name": "Conformance Shop", "city": "Seoul", "country": "KR"},
            "amount": self.money(value, currency),
        }


Check = Callable[[Partner], Awaitable[str]]


def partner_from_settings(settings: Settings, partner_id: str, url: str, **kw: Any) -> Partner:
    """The runner's identity from a gateway config: its signing key and the partner's keys."""
    p = settings.partner(partner_id)
    if p is None:
        raise ConfigError(f"partner {partner_id!r} is not in the config (partners[].id)")
    if p.family != "qrgw":
        raise ConfigError(f"partner {partner_id!r} is of family {p.family!r}; conformance covers 'qrgw'")
    registry = registry_from_settings(settings)
    if not registry.signers:
        raise ConfigError("gateway.keys: the runner signs as the gateway and needs its key")
    base = url.rstrip("/")
    # The partner under test may not be the one the config delivers to: default to its own URL.
    hook = kw.pop("webhook_url", None) or f"{base}/webhooks"
    # TLS as for partner calls (its CA bundle, client certificate); plain http is allowed: this is
    # a test tool pointed at the engineer's own server.
    client = httpx.AsyncClient(timeout=10.0, verify=partner_tls(p, sandbox=True))
    return Partner(url=base, partner_id=partner_id, currency=p.currency, registry=registry,
                   webhook_url=hook, client=client, **kw)


async def run_checks(partner: Partner, checks: list[tuple[str, Check]] | None = None) -> list[Result]:
    """Run every check (each independent; one failing never stops the others)."""
    from gateway.partnerkit.checks import CHECKS

    out: list[Result] = []
    try:
        for name, check in checks or CHECKS:
            try:
                out.append(Result(name, True, await check(partner)))
            except CheckFailed as exc:
                out.append(Result(name, False, str(exc)))
            except NotObservable as exc:
                out.append(Result(name, None, str(exc)))
            except httpx.HTTPError as exc:
                out.append(Result(name, False, f"transport error: {type(exc).__name__}: {exc}"))
    finally:
        await partner.client.aclose()
    return out


class NotObservable(Exception):
    """The partner offers no way to observe this behaviour from outside."""


def table(results: list[Result]) -> str:
    width = max(len(r.name) for r in results)
    lines = [f"{'check':<{width}}  result  detail", f"{'-' * width}  ------  ------"]
    lines += [f"{r.name:<{width}}  {r.mark:<6}  {r.detail}" for r in results]
    counts = {mark: sum(1 for r in results if r.passed is mark) for mark in (True, None, False)}
    lines.append(f"{len(results)} checks: {counts[True]} passed, {counts[None]} n/a, {counts[False]} failed")
    return "\n".join(lines)
