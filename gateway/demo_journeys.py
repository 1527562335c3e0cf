"""The partner side of ``qrgw demo`` (``gateway.demo`` runs it): a client that signs each call
with the partner's key and verifies each gateway answer (PROTOCOL.md §2), the journeys of
PROTOCOL.md §1 with a partial refund and a cancel, and the checks of every outcome.

The expectations are computed here independently of the gateway where they can be: the route
from the configured routing table and the decoded templates, the payer amount from the quote's
rate and the pair's rounding, the refund at the original rate, the exact balance moves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
from aiohttp import web

from fx.money import Money
from fx.policy import FxPolicy
from fx.quotes import convert
from gateway.appkeys import STORE
from gateway.payments.container import PAYMENTS
from gateway.sandbox_env import SandboxEnvironment
from gateway.signing import KeyRegistry, Signer, sign_request, verify_response
from schemas.errors import QrgwError

__all__ = ["JOURNEYS", "DemoFailed", "Exchange", "Flow", "Journey", "PartnerClient", "Report", "fmt_money"]

GATEWAY_PARTNER = "qrgw"  # partner_id of the gateway's own keys in a partner's registry


class DemoFailed(Exception):
    """An outcome the demo did not expect; the message says which and why."""


def fmt_money(m: Mapping[str, Any] | Money) -> str:
    """``{"currency": "CNY", "value": "8650"}`` → ``86.50 CNY``; ``38000 KRW`` → ``38,000 KRW``."""
    money = m if isinstance(m, Money) else Money.from_wire(m)
    return f"{money.to_decimal():,.{money.exponent}f} {money.currency}"


@dataclass(frozen=True)
class Exchange:
    """One signed call and its verified answer."""

    method: str
    path: str
    status: int
    doc: dict[str, Any]
    request_keyid: str
    response_keyid: str

    @property
    def keys(self) -> str:
        return f"request signed {self.request_keyid}, response verified {self.response_keyid}"


class PartnerClient:
    """A partner calling the gateway per PROTOCOL.md §2: signs each request with its own key and
    verifies each answer against the gateway's published keys (bound to the request)."""

    def __init__(self, partner_id: str, signer: Signer, registry: KeyRegistry, http: httpx.AsyncClient) -> None:
        self.partner_id = partner_id
        self.signer = signer
        self.registry = registry
        self.http = http

    async def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Exchange:
        content = json.dumps(body).encode() if body is not None else None
        headers: dict[str, str] = {"Content-Type": "application/json"} if content is not None else {}
        url = f"{self.http.base_url}".rstrip("/") + path
        sign_request(self.signer, method=method, url=url, headers=headers, body=content)
        try:
            resp = await self.http.request(method, url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise DemoFailed(f"{self.partner_id} {method} {path}: no answer from the gateway: {exc!r}") from exc
        try:
            verified = verify_response(
                self.registry,
                status=resp.status_code,
                headers=resp.headers,
                body=resp.content,
                req_method=method,
                req_path=path.split("?", 1)[0],
                req_signature=headers["Signature"],
                expected_partner=GATEWAY_PARTNER,
            )
        except QrgwError as exc:
            raise DemoFailed(f"{method} {path}: gateway answer signature rejected: {exc.code}: {exc.detail}") from exc
        try:
            doc = resp.json()
        except ValueError as exc:
            raise DemoFailed(f"{method} {path}: answer {resp.status_code} is not JSON") from exc
        return Exchange(method, path, resp.status_code, doc, self.signer.keyid, verified.keyid)


@dataclass
class Report:
    """What the demo prints (``say``) and the machine-readable summary it builds."""

    emit: Callable[[str], None] | None
    steps: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)

    def say(self, text: str = "") -> None:
        if self.emit is not None:
            self.emit(text)

    def check(self, ok: bool, what: str) -> None:
        """Record an expectation; the demo goes on (so the summary is complete) but ends not ok."""
        self.checks.append({"check": what, "ok": ok})
        if not ok:
            self.say(f"  !! FAILED: {what}")

    @property
    def failures(self) -> list[str]:
        return [c["check"] for c in self.checks if not c["ok"]]


@dataclass(frozen=True)
class Journey:
    number: int
    title: str
    wallet: str
    merchant: str  # "seoul" | "shanghai" (sandbox_env sample QRs)
    amount: Money  # merchant currency
    payer: dict[str, str]
    payer_currency: str


JOURNEYS = (
    Journey(1, "Chinese tourist in Seoul: alipay-cn wallet pays the Seoul shared QR (CNY -> KRW)",
            "alipay-cn", "seoul", Money(38_000, "KRW"),
            {"id": "cn-tourist-1", "residency": "non-resident", "country": "CN"}, "CNY"),
    Journey(2, "Korean in Shanghai: kakaopay-kr wallet pays the Shanghai QR from prepaid KRW (KRW -> CNY)",
            "kakaopay-kr", "shanghai", Money(8_650, "CNY"),
            {"id": "kr-user-1", "residency": "resident", "country": "KR"}, "KRW"),
    Journey(3, "Domestic: kakaopay-kr wallet pays the Seoul shared QR (KRW, no conversion)",
            "kakaopay-kr", "seoul", Money(15_000, "KRW"),
            {"id": "kr-user-1", "residency": "resident", "country": "KR"}, "KRW"),
)
CAPS = {  # fx.policy.PolicyRules fields shown for a route's kind
    "resident_per_payment_usd": "per-payment cap USD {:,}",
    "prepaid_ceiling_krw": "prepaid ceiling KRW {:,} per payment",
    "resident_annual_usd": "annual cap USD {:,}",
    "nonresident_daily_usd": "daily cap USD {:,}",
}
REFUND = Money(12_000, "KRW")  # of journey 1: one dish sent back
FINAL_WAIT_S = 10.0


class Flow:
    """The journeys, the partial refund and the cancel, as the partners would run them."""

    def __init__(self, env: SandboxEnvironment, clients: Mapping[str, PartnerClient], rep: Report,
                 app: web.Application) -> None:
        assert env.settings is not None
        self.env, self.settings, self.clients, self.rep, self.app = env, env.settings, clients, rep, app
        self.countries = {p.id: p.country for p in self.settings.partners}
        self.routing = {r.identifier: r.partner for r in self.settings.routing}
        self.expected_moves: dict[str, tuple[dict[str, int], int]] = {}
        self.payments: list[str] = []
        self.journeys: dict[int, dict[str, Any]] = {}  # the --json summary, one per journey

    def _move(self, pid: str, *, payer: str | None = None, payer_delta: int = 0, merchant_delta: int = 0) -> None:
        payers, merchants = self.expected_moves.get(pid, ({}, 0))
        if payer is not None:
            payers[payer] = payers.get(payer, 0) + payer_delta
            payers = {k: v for k, v in payers.items() if v}
        self.expected_moves[pid] = (payers, merchants + merchant_delta)

    async def run(self) -> None:
        paid = [await self.journey(j) for j in JOURNEYS]
        await self.refund(JOURNEYS[0], paid[0])
        await self.cancel(JOURNEYS[2], paid[2])

    async def business_days(self) -> set[str]:
        """The business days the demo's payments, refunds and cancels fall on (usually one)."""
        days: set[str] = set()
        for pid in self.payments:
            rec = await self.app[STORE].get_payment(pid)
            if rec is not None:
                days |= {rec.business_day, *(r.business_day for r in rec.refunds)}
                days |= {rec.cancel.business_day} if rec.cancel is not None else set()
        return days

    def _step(self, journey: int, name: str, ex: Exchange, **data: Any) -> None:
        self.rep.steps.append({"journey": journey, "step": name, "call": f"{ex.method} {ex.path}",
                               "http_status": ex.status, "request_keyid": ex.request_keyid,
                               "response_keyid": ex.response_keyid, **data})

    async def decode(self, j: Journey, client: PartnerClient, qr: str) -> tuple[str, str, str]:
        """``POST /v1/qr/decode`` as the wallet app would; the route the routing table must give
        (first template in tag order whose identifier is configured) is checked against it."""
        ex = await client.call("POST", "/v1/qr/decode", {"qr": qr})
        if ex.status != 200:
            raise DemoFailed(f"journey {j.number}: POST /v1/qr/decode answered {ex.status}: {ex.doc.get('detail')}")
        code, route = ex.doc["qr"], ex.doc.get("route") or {}
        tpl = [(a["tag"], a["fields"].get("00", "?")) for a in code.get("merchant_accounts", []) if a.get("fields")]
        tpls = ", ".join(f"{t} {g} -> {self.routing.get(g, 'not routed')}" for t, g in tpl)
        amount = "dynamic" if code.get("point_of_initiation") == "dynamic" else "static (amount entered)"
        self.rep.say(f"  QR      POST /v1/qr/decode -> {ex.status} | {code['merchant_name']}, {code['merchant_city']} "
                     f"{code['country']} | MCC {code['mcc']} | {code['currency_alpha']} | {amount}")
        self.rep.say(f"          templates: {tpls}")
        routed = [self.routing[g] for _, g in tpl if g in self.routing]
        if not routed:
            raise DemoFailed(f"journey {j.number}: no template of the sample QR is in the routing table")
        kind = "domestic" if self.countries[j.wallet] == self.countries[routed[0]] else "cross-border"
        self.rep.say(f"  route   {route.get('wallet')} (wallet) -> {route.get('acquirer')} (acquirer), "
                     f"{route.get('kind')}, via template {route.get('identifier')} | {ex.keys}")
        self._step(j.number, "decode", ex, merchant=code["merchant_name"], city=code["merchant_city"],
                   templates=[g for _, g in tpl], route=route)
        self.rep.check(route.get("acquirer") == routed[0] and route.get("kind") == kind,
                       f"journey {j.number}: QR routed to {routed[0]} ({kind}) (got {route or ex.doc.get('reason')})")
        return routed[0], kind, str(code["merchant_name"])

    async def _final(self, client: PartnerClient, ex: Exchange) -> Exchange:
        """A 202 (a partner's answer still unknown) is inquired until final, as PROTOCOL.md §5 says."""
        deadline = asyncio.get_running_loop().time() + FINAL_WAIT_S
        while ex.status == 202 or ex.doc.get("status") == "PROCESSING":
            if asyncio.get_running_loop().time() > deadline:
                raise DemoFailed(f"payment {ex.doc.get('payment_id')} still PROCESSING after {FINAL_WAIT_S} s")
            await asyncio.sleep(0.1)
            ex = await client.call("GET", f"/v1/payments/{ex.doc['payment_id']}")
        return ex

    async def journey(self, j: Journey) -> dict[str, Any]:
        rep, client = self.rep, self.clients[j.wallet]
        rep.say(f"== Journey {j.number}: {j.title} ==")
        qr = self.env.sample_qr(j.merchant)  # type: ignore[arg-type]
        acquirer, kind, merchant = await self.decode(j, client, qr)
        body: dict[str, Any] = {"payment_request_id": f"demo-{j.number}-{j.wallet}", "qr": qr,
                                "amount": j.amount.to_dict(), "payer": j.payer, "payer_currency": j.payer_currency}
        quote: dict[str, Any] | None = None
        if kind == "cross-border":
            quote = await self.quote(j, client, qr)
            body["quote_id"] = quote["quote_id"]
        ex = await self._final(client, await client.call("POST", "/v1/payments", body))
        if ex.status not in (200, 201):
            raise DemoFailed(f"journey {j.number}: POST /v1/payments answered {ex.status}: "
                             f"{ex.doc.get('code')}: {ex.doc.get('detail')}")
        p = ex.doc
        fail = p.get("failure") or {}
        outcome = (f"pays {fmt_money(p['payer_amount'])}, merchant {p['merchant']['name']} gets "
                   f"{fmt_money(p['merchant_amount'])}" if p["status"] == "SUCCEEDED"
                   else f"nothing moved: {fail.get('code')}: {fail.get('message')}")
        rep.say(f"  pay     POST /v1/payments -> {ex.status} {p['status']} | payer {j.payer['id']} "
                f"({j.payer['residency']}, {j.payer['country']}) {outcome}")
        rep.say(f"          payment {p['payment_id']} | route {p['route']['wallet']} -> {p['route']['acquirer']} "
                f"{p['route']['kind']} | {ex.keys}")
        policy = await self.policy(j, p)
        self._step(j.number, "payment", ex, payment_id=p["payment_id"], status=p["status"], route=p["route"],
                   merchant_amount=p["merchant_amount"], payer_amount=p["payer_amount"], flags=p.get("flags", []),
                   policy=policy)
        self.payments.append(p["payment_id"])
        rep.check(p["status"] == "SUCCEEDED", f"journey {j.number}: status SUCCEEDED (got {p['status']})")
        rep.check(p["route"] == {"wallet": j.wallet, "acquirer": acquirer, "kind": kind},
                  f"journey {j.number}: route {j.wallet} -> {acquirer} {kind} (got {p['route']})")
        rep.check(p["merchant"]["name"] == merchant, f"journey {j.number}: merchant is the QR's {merchant}")
        rep.check(p["merchant_amount"] == j.amount.to_dict(),
                  f"journey {j.number}: merchant amount {fmt_money(j.amount)} (got {p['merchant_amount']})")
        if quote is None:
            rep.check(p.get("quote") is None and p["payer_amount"] == j.amount.to_dict(),
                      f"journey {j.number}: domestic, no quote, payer pays the merchant amount")
        else:
            rep.check(p["payer_amount"] == quote["payer_amount"] and (p.get("quote") or {}).get("quote_id")
                      == quote["quote_id"], f"journey {j.number}: payer amount equals the locked quote's")
        self.journeys[j.number] = {
            "journey": j.number, "title": j.title, "payment_id": p["payment_id"], "status": p["status"],
            "route": p["route"], "merchant": p["merchant"], "merchant_amount": p["merchant_amount"],
            "payer_amount": p["payer_amount"], "quote": quote, "policy": policy,
        }
        if p["status"] == "SUCCEEDED":
            self._move(j.wallet, payer=j.payer["id"], payer_delta=-int(p["payer_amount"]["value"]))
            self._move(acquirer, merchant_delta=int(p["merchant_amount"]["value"]))
        rep.say(f"  result  journey {j.number} {p['status']}")
        rep.say()
        return p

    async def policy(self, j: Journey, p: dict[str, Any]) -> dict[str, Any]:
        """What the gateway's FX policy (PROTOCOL.md §7) decided: the rules that applied, the USD
        equivalent counted against the payer's limits, the flags (read from the gateway's record)."""
        flags = list(p.get("flags") or [])
        shown_flags = f"flags {', '.join(flags) or 'none'}"
        rec = await self.app[STORE].get_payment(p["payment_id"])
        pol = getattr(self.app[PAYMENTS].pricing, "policy", None)
        if p["route"]["kind"] == "domestic" or rec is None or not isinstance(pol, FxPolicy):
            self.rep.say(f"  policy  {p['route']['kind']}: no conversion, no FX policy | {shown_flags}")
            return {"kind": None, "flags": flags}
        kind = pol.kind(rec.payer, rec.merchant.country)
        rules = pol.rules_at(pol.local_date(rec.created_at))
        limits = {"outbound": ("resident_per_payment_usd", "prepaid_ceiling_krw", "resident_annual_usd"),
                  "inbound": ("nonresident_daily_usd",)}.get(kind or "", ())
        shown = [CAPS[n].format(getattr(rules, n)) for n in limits if getattr(rules, n) is not None]
        counted = {k: int(v) for k, v in ((rec.reservation or {}).get("amounts") or {}).items()}
        what = {"outbound": "resident paying abroad", "inbound": "non-resident paying a Korean merchant"}
        self.rep.say(f"  policy  {kind or 'not covered'} ({what.get(kind or '', 'no limit applies')}), rules of "
                     f"{rules.effective_from}: {'; '.join(shown) or 'no caps'}")
        usage = ", ".join(f"{fmt_money(Money(v, 'USD'))} on {k}" for k, v in counted.items()) or "nothing"
        self.rep.say(f"          counted {usage} against the payer's limits | {shown_flags}")
        return {"kind": kind, "flags": flags, "counted_usd_cents": counted}

    async def quote(self, j: Journey, client: PartnerClient, qr: str) -> dict[str, Any]:
        rep = self.rep
        body = {"qr": qr, "amount": j.amount.to_dict(), "payer_currency": j.payer_currency}
        ex = await client.call("POST", "/v1/quotes", body)
        if ex.status != 201:
            raise DemoFailed(f"journey {j.number}: POST /v1/quotes answered {ex.status}: "
                             f"{ex.doc.get('code')}: {ex.doc.get('detail')}")
        q = ex.doc
        pay, rate, mid, bps = Money.from_wire(q["payer_amount"]), Decimal(q["rate"]), Decimal(q["mid_rate"]), int(
            q["spread_bps"])
        rep.say(f"  quote   POST /v1/quotes -> 201 | {fmt_money(q['merchant_amount'])} = {fmt_money(pay)} | "
                f"mid {q['mid_rate']} + spread {bps} bps = all-in {q['rate']} {j.payer_currency} per "
                f"{j.amount.currency}{inverse(q['rate'], j.amount.currency, j.payer_currency)}")
        ttl = datetime.fromisoformat(q["expires_at"]) - datetime.fromisoformat(q["created_at"])
        rep.say(f"          quote {q['quote_id']} locked until {q['expires_at']} ({ttl.total_seconds():.0f} s) | "
                f"{ex.keys}")
        self._step(j.number, "quote", ex, quote_id=q["quote_id"], merchant_amount=q["merchant_amount"],
                   payer_amount=q["payer_amount"], mid_rate=q["mid_rate"], spread_bps=bps, rate=q["rate"],
                   expires_at=q["expires_at"])
        _, rounding = self.settings.fx.pair(j.amount.currency, j.payer_currency)
        want = convert(j.amount, rate, j.payer_currency, rounding)
        rep.check(q["merchant_amount"] == j.amount.to_dict() and pay == want,
                  f"journey {j.number}: quote payer amount = merchant amount x rate, rounded {rounding} "
                  f"({fmt_money(want)})")
        rep.check(abs(rate / mid - (1 + Decimal(bps) / 10_000)) < Decimal("1e-6"),
                  f"journey {j.number}: all-in rate = mid x (1 + {bps} bps)")
        return q

    async def refund(self, j: Journey, p: dict[str, Any]) -> None:
        rep, client = self.rep, self.clients[j.wallet]
        rep.say(f"== Partial refund of journey {j.number}: {fmt_money(REFUND)} of {fmt_money(p['merchant_amount'])} "
                f"back, at the original rate ==")
        body = {"refund_request_id": f"demo-refund-{j.number}", "amount": REFUND.to_dict()}
        ex = await client.call("POST", f"/v1/payments/{p['payment_id']}/refunds", body)
        ex = await self._final(client, ex) if ex.status == 202 else ex
        if ex.status not in (200, 201):
            raise DemoFailed(f"refund: answered {ex.status}: {ex.doc.get('code')}: {ex.doc.get('detail')}")
        r = ex.doc["refunds"][-1] if ex.doc.get("refunds") else {}
        rep.say(f"  refund  POST /v1/payments/{{id}}/refunds -> {ex.status} {ex.doc['status']} | refund "
                f"{r.get('status')}: merchant returns {fmt_money(r['amount'])}, payer gets "
                f"{fmt_money(r['payer_amount'])} back (rate {p['quote']['rate']})")
        rep.say(f"          {ex.keys}")
        self._step(j.number, "refund", ex, payment_id=p["payment_id"], status=ex.doc["status"],
                   refund_status=r.get("status"), amount=r.get("amount"), payer_amount=r.get("payer_amount"))
        _, rounding = self.settings.fx.pair(REFUND.currency, j.payer_currency)
        want = convert(REFUND, Decimal(p["quote"]["rate"]), j.payer_currency, rounding)
        rep.check(ex.doc["status"] == "PARTIALLY_REFUNDED" and r.get("status") == "SUCCEEDED",
                  f"refund: payment PARTIALLY_REFUNDED, refund SUCCEEDED (got {ex.doc['status']}/{r.get('status')})")
        rep.check(r.get("payer_amount") == want.to_dict(), f"refund: payer gets {fmt_money(want)} at the quote's rate")
        if r.get("status") == "SUCCEEDED":
            self._move(j.wallet, payer=j.payer["id"], payer_delta=int(r["payer_amount"]["value"]))
            self._move(p["route"]["acquirer"], merchant_delta=-REFUND.minor)
        self.journeys[j.number] |= {"status_after": ex.doc["status"], "refund": r}
        rep.say()

    async def cancel(self, j: Journey, p: dict[str, Any]) -> None:
        rep, client = self.rep, self.clients[j.wallet]
        rep.say(f"== Cancel of journey {j.number}: full reversal of {fmt_money(p['payer_amount'])} ==")
        ex = await client.call("POST", f"/v1/payments/{p['payment_id']}/cancel",
                               {"cancel_request_id": f"demo-cancel-{j.number}"})
        ex = await self._final(client, ex) if ex.status == 202 else ex
        if ex.status != 200:
            raise DemoFailed(f"cancel: answered {ex.status}: {ex.doc.get('code')}: {ex.doc.get('detail')}")
        c = ex.doc.get("cancel") or {}
        rep.say(f"  cancel  POST /v1/payments/{{id}}/cancel -> {ex.status} {ex.doc['status']} | cancel "
                f"{c.get('status')}: payer gets {fmt_money(p['payer_amount'])} back, merchant returns "
                f"{fmt_money(p['merchant_amount'])}")
        rep.say(f"          {ex.keys}")
        self._step(j.number, "cancel", ex, payment_id=p["payment_id"], status=ex.doc["status"],
                   cancel_status=c.get("status"))
        rep.check(ex.doc["status"] == "CANCELLED" and c.get("status") == "SUCCEEDED",
                  f"cancel: payment CANCELLED (got {ex.doc['status']})")
        self.journeys[j.number] |= {"status_after": ex.doc["status"], "cancel": c}
        if ex.doc["status"] == "CANCELLED":
            self._move(j.wallet, payer=j.payer["id"], payer_delta=int(p["payer_amount"]["value"]))
            self._move(p["route"]["acquirer"], merchant_delta=-int(p["merchant_amount"]["value"]))
        rep.say()


def signed(m: Money) -> str:
    return ("+" if m.minor >= 0 else "-") + fmt_money(Money(abs(m.minor), m.currency))


def inverse(rate: str, merchant: str, payer: str) -> str:
    """For reading a small rate only (the quote's ``rate`` is the contract): `` = 191.32 KRW per CNY``."""
    r = Decimal(rate)
    return f" = {(Decimal(1) / r):,.2f} {merchant} per {payer}" if 0 < r < 1 else ""

