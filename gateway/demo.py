"""``qrgw demo``: the gateway and the three sandbox partners in one process, over loopback HTTP.

Starts the sandboxes (``SandboxEnvironment``: keys generated at run time into a temp folder) and
the gateway (``create_app`` on the embedded MemoryStore, a free loopback port), then plays the
partners of PROTOCOL.md §1 (``gateway.demo_journeys``): every call is signed with the calling
partner's key and every gateway answer's signature is verified. Journeys: a Chinese tourist in
Seoul (CNY→KRW), a Korean in Shanghai paying from prepaid KRW (KRW→CNY, FX policy), a domestic
Korean payment, then a partial refund and a cancel. Every outcome is checked (statuses, amounts
equal to the quotes, balances at the sandboxes moved exactly, the settlement day balances to
zero, fees included); it ends by closing the day's settlement window and reconciling each
sandbox's own settlement file against its frozen batch (no difference expected); ``run_demo``
returns a summary whose ``ok`` says whether all held.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from fx.money import Money
from gateway import loop
from gateway.app import create_app
from gateway.appkeys import SETTINGS, STORE
from gateway.demo_journeys import DemoFailed, Flow, PartnerClient, Report, fmt_money, signed
from gateway.demo_settle import close_and_reconcile
from gateway.logging import configure_logging
from gateway.sandbox_env import SandboxEnvironment
from gateway.serving import GatewayRunner
from gateway.settlement import check_day, day_balance, load_day
from gateway.settlement.fees import FeeSchedule

__all__ = ["main", "run_demo"]


def _snapshot(env: SandboxEnvironment) -> dict[str, dict[str, dict[str, int]]]:
    return {
        pid: {"payers": dict(sbx.ledger.balances), "merchants": dict(sbx.ledger.merchants)}
        for pid, sbx in env.sandboxes.items()
    }


def _moved(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in sorted(set(before) | set(after))
            if after.get(k, 0) != before.get(k, 0)}


async def _balances(env: SandboxEnvironment, rep: Report, before: Mapping[str, Any], flow: Flow) -> dict[str, Any]:
    """Each partner's books at its sandbox, and the exact check of what moved."""
    after = _snapshot(env)
    out: dict[str, Any] = {}
    rep.say("== Balances at the sandbox partners ==")
    for pid, sbx in env.sandboxes.items():
        cur = sbx.ledger.currency
        moved_p = _moved(before[pid]["payers"], after[pid]["payers"])
        moved_m = _moved(before[pid]["merchants"], after[pid]["merchants"])
        payers = ", ".join(f"{k} {fmt_money(Money(after[pid]['payers'][k] - d, cur))} -> "
                           f"{fmt_money(Money(after[pid]['payers'][k], cur))} ({signed(Money(d, cur))})"
                           for k, d in moved_p.items()) or "no payer moved"
        merchants = ", ".join(f"{k} {fmt_money(Money(v, cur))}" for k, v in after[pid]["merchants"].items())
        rep.say(f"  {pid:<14} payers: {payers}")
        rep.say(f"  {'':<14} merchants: {merchants or 'none credited'}")
        want_p, want_m = flow.expected_moves.get(pid, ({}, 0))
        rep.check(moved_p == want_p, f"{pid}: payer balances moved exactly {want_p} (moved {moved_p})")
        rep.check(sum(moved_m.values()) == want_m,
                  f"{pid}: merchants credited net {want_m} {cur} (moved {sum(moved_m.values())})")
        out[pid] = {
            "currency": cur,
            "payers": {k: str(v) for k, v in after[pid]["payers"].items()},
            "payers_moved": {k: str(v) for k, v in moved_p.items()},
            "merchants": {k: str(v) for k, v in after[pid]["merchants"].items()},
        }
    bad = env.violations()
    rep.check(not bad, "no payer debited without the merchant credited (or the reverse): " + ("; ".join(bad) or "none"))
    return out


async def _settlement(app: web.Application, rep: Report, days: set[str]) -> dict[str, Any]:
    store = app[STORE]
    out: dict[str, Any] = {}
    rep.say("== Settlement of the business day (qrgw settle --check) ==")
    for day in sorted(days):
        loaded = await load_day(store, day, FeeSchedule.from_settings(app[SETTINGS].settlement.fees))
        offenses = check_day(loaded)
        items = [i for i in loaded.items if i.settles]
        bal = day_balance(items)
        for cur, b in sorted(bal.items()):
            m = {k: fmt_money(Money(getattr(b, k), cur)) for k in ("owed_by_wallets", "owed_to_acquirers", "margin",
                                                                     "fees", "fx_sold", "fx_bought")}
            rep.say(f"  {day} {cur}: wallets owe {m['owed_by_wallets']}, acquirers are owed {m['owed_to_acquirers']}, "
                    f"FX margin {m['margin']}, fees {m['fees']}, FX sold {m['fx_sold']}, bought {m['fx_bought']}: "
                    f"difference {b.difference:+d}")
        for o in offenses:
            rep.say(f"  offense {o.code} {o.payment_id}: {o.detail}")
        rep.say(f"  {day}: {len(loaded.records)} payment(s), {len(items)} settled item(s), "
                f"{len(offenses)} offense(s)")
        rep.check(not offenses, f"settlement of {day} balances with 0 offenses (found {len(offenses)})")
        out[day] = {
            "payments": len(loaded.records),
            "items": len(items),
            "offenses": [o.to_json() for o in offenses],
            "differences": {c: b.difference for c, b in bal.items()},
            "margin": {c: str(b.margin) for c, b in bal.items()},
        }
    return out


async def run_demo(
    workdir: Path | None = None,
    emit: Callable[[str], None] | None = print,
    prepare: Callable[[SandboxEnvironment], None] | None = None,
) -> dict[str, Any]:
    """Run everything; return the summary (``summary["ok"]``). ``emit`` gets each printed line;
    ``prepare`` may set the sandboxes up first (tests inject faults to see the demo fail)."""
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="qrgw-demo-") as tmp:
            return await run_demo(Path(tmp), emit, prepare)
    rep = Report(emit)
    async with SandboxEnvironment(workdir, store_url="memory://") as env:
        assert env.settings is not None
        if prepare is not None:
            prepare(env)
        app = create_app(env.settings)
        runner = GatewayRunner(app, env.settings.server)
        await runner.setup()
        try:
            await web.TCPSite(runner, env.host, env.gateway_port).start()
            async with httpx.AsyncClient(base_url=env.gateway_url, timeout=10.0) as http:
                clients = {
                    pid: PartnerClient(pid, env.partner_keys[pid], env.partner_registry(pid), http)
                    for pid in env.sandboxes
                }
                rep.say(f"qrgw demo: gateway {env.gateway_url} (embedded memory store), keys generated in {workdir}")
                gw_keys = ", ".join(f"{k.keyid} ({k.alg})" for k in env.gateway_keys)
                rep.say(f"  gateway keys: {gw_keys}")
                for pid, sbx in env.sandboxes.items():
                    k = env.partner_key_files[pid]
                    rep.say(f"  sandbox {pid:<14} {sbx.family:<11} {sbx.url}  key {k.keyid} ({k.alg})")
                rep.say()
                before = _snapshot(env)
                flow = Flow(env, clients, rep, app)
                error: str | None = None
                try:
                    await flow.run()
                except DemoFailed as exc:
                    error = str(exc)
                    rep.check(False, error)
                    rep.say()
                balances = await _balances(env, rep, before, flow)
                rep.say()
                days = await flow.business_days()
                settlement = await _settlement(app, rep, days)
                rep.say()
                window = await close_and_reconcile(app, env, rep, max(days))
        finally:
            await runner.cleanup()
    ok = not rep.failures
    rep.say()
    passed = sum(1 for c in rep.checks if c["ok"])
    if ok:
        rep.say(f"qrgw demo: OK, every journey ended as expected ({passed} checks passed)")
    else:
        rep.say(f"qrgw demo: FAILED, {len(rep.failures)} of {len(rep.checks)} checks failed")
    return {
        "ok": ok,
        "gateway_url": env.gateway_url,
        "journeys": list(flow.journeys.values()),
        "steps": rep.steps,
        "balances": balances,
        "settlement": settlement,
        "window": window,
        "checks": rep.checks,
        "failures": rep.failures,
        "error": error,
    }


def main(*, as_json: bool = False, verbose: bool = False) -> int:
    """Entry point of the CLI: 0 when every check held, 1 otherwise. Gateway logs go to stderr
    (warnings only unless ``verbose``) so stdout stays the demo's own account."""
    configure_logging("INFO" if verbose else "WARNING", "auto", sys.stderr)
    summary = loop.run(run_demo(emit=None if as_json else print))
    if as_json:
        print(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    for failure in summary["failures"]:  # the reason for exit 1, whatever the output format
        print(f"qrgw demo: FAILED: {failure}", file=sys.stderr)
    return 0 if summary["ok"] else 1
