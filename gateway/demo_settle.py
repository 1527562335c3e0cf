"""The demo's last act (PROTOCOL.md §9.1): close the day's settlement window into frozen batches
with fees, then fetch each sandbox partner's own settlement file and reconcile it against its
batch; the demo expects no difference at all."""

from __future__ import annotations

from typing import Any

import httpx
from aiohttp import web

from fx.money import Money
from gateway.appkeys import SETTINGS, STORE
from gateway.demo_journeys import Report, fmt_money
from gateway.sandbox_env import SandboxEnvironment
from gateway.settlement.recon import import_file
from gateway.settlement.windows import CloseConfig, close_window


async def close_and_reconcile(app: web.Application, env: SandboxEnvironment, rep: Report, day: str) -> dict[str, Any]:
    store = app[STORE]
    rep.say(f"== Settlement window {day}: close (qrgw settle close) and reconcile (qrgw recon import) ==")
    window, closed = await close_window(store, day, CloseConfig.from_settings(app[SETTINGS]), owner="demo")
    rep.check(closed, f"window {day} closed now (seq {window['seq']}, {window['items']} final item(s))")
    out: dict[str, Any] = {"window": dict(window), "partners": {}}
    for ref in window["batches"]:
        pid = str(ref["partner_id"])
        batch = await store.get_batch(day, pid)
        assert batch is not None
        sbx = env.sandbox(pid)
        nets = ", ".join(
            f"{fmt_money(Money(abs(int(p['net'])), p['currency']))} "
            f"{'owed to the gateway' if int(p['net']) > 0 else 'owed by the gateway'} "
            f"(fees {fmt_money(Money(int(p['wallet_fees']) + int(p['acquirer_fees']), p['currency']))})"
            for p in batch["positions"]) or "nothing to settle"
        rep.say(f"  {pid:<14} batch {ref['content_hash'][:19]}... {ref['rows']} movement(s): {nets}")
        async with httpx.AsyncClient(base_url=str(sbx.url), timeout=10.0) as http:
            r = await http.get("/sandbox/settlement-file", params={"day": day})
        result = await import_file(store, pid, day, sbx.family, sbx.ledger.currency, r.content)
        for e in result.exceptions:
            rep.say(f"    exception {e['kind']} {e['type']} {e['gateway_ref']}: gateway {e['gateway_amount']} "
                    f"{e['gateway_status']}, partner {e['partner_amount']} {e['partner_status']}")
        rep.say(f"  {'':<14} its own {sbx.family} file: {result.rows} row(s) reconciled, "
                f"{len(result.exceptions)} difference(s)")
        rep.check(not result.exceptions, f"{pid}: its {sbx.family} file ({result.rows} row(s)) matches its batch "
                  f"({len(result.exceptions)} exception(s))")
        out["partners"][pid] = {"rows": result.rows, "exceptions": result.exceptions,
                                "content_hash": ref["content_hash"], "positions": batch["positions"]}
    return out
