"""The operators' web console at ``/console/``: server-rendered pages over the admin API's own
functions (so the console and the API cannot disagree), plain tables, status colours, amounts
right-aligned; forms post back here and a little JavaScript (``console/app.js``) adds
confirmations and refreshes the overview. No build step, no asset from the internet.

Login exchanges an operator token for a session cookie (HttpOnly, SameSite=Strict; the store keeps
only the session id's hash). Actions check the same roles as the API and land in the audit log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from fx.currency import exponent
from gateway.admin import actions, api, audit, queries
from gateway.admin.auth import RANK, SESSION_COOKIE, Role, close_session, match_token, open_session
from gateway.payments.container import PAYMENTS
from gateway.payments.days import business_day
from gateway.settlement.day import day_report, load_day, parse_day
from gateway.settlement.report import POSITION_FIELDS
from schemas.errors import OperatorForbidden, OperatorUnauthorized, QrgwError

STATIC = Path(__file__).resolve().parent / "console"
Page = Callable[[web.Request], Awaitable[str | web.StreamResponse]]
NAV = [("", "Overview"), ("payments", "Payments"), ("review", "Review"), ("partners", "Partners"),
       ("dead-letters", "Dead letters"), ("settlement", "Settlement"), ("audit", "Audit")]


def h(v: Any) -> str:
    return escape("" if v is None else str(v))


def money(m: dict[str, Any] | None) -> str:
    """Wire money (or a position: ``minor`` may be negative) in major units, grouped, exact."""
    if not m:
        return ""
    cur, minor = str(m["currency"]), int(m.get("value", m.get("minor", 0)))
    e = exponent(cur)
    return f"{Decimal(minor).scaleb(-e):,.{e}f} {h(cur)}"


def badge(status: Any) -> str:
    s = h(status)
    return f'<span class="st st-{s.lower()}">{s}</span>'


def table(head: list[str], rows: list[list[str]], num: set[int] = frozenset(), empty: str = "nothing") -> str:  # type: ignore[assignment]
    """An HTML table; columns in ``num`` are right-aligned numbers. Cells are HTML already."""
    ths = "".join(f'<th{" class=num" if i in num else ""}>{h(c)}</th>' for i, c in enumerate(head))
    if not rows:
        none = f"<tr><td colspan={len(head)} class=muted>{h(empty)}</td></tr>"
        return f"<table><thead><tr>{ths}</tr></thead><tbody>{none}</tbody></table>"
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in num else ""}>{c}</td>' for i, c in enumerate(r))
                   + "</tr>" for r in rows)
    return f"<table><thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table>"


def button(action: str, label: str, *, confirm: str = "", fields: dict[str, str] | None = None,
           cls: str = "") -> str:
    extra = "".join(f'<input type=hidden name="{h(k)}" value="{h(v)}">' for k, v in (fields or {}).items())
    ask = f' data-confirm="{h(confirm)}"' if confirm else ""
    return (f'<form method=post action="{h(action)}" class=inline{ask}>{extra}'
            f'<button class="{h(cls)}">{h(label)}</button></form>')


def layout(request: web.Request, title: str, content: str) -> web.Response:
    op = request.get(api.OPERATOR_KEY)
    here = request.path.removeprefix("/console/").split("/")[0]
    nav = "".join(f'<a href="/console/{p}"{" class=on" if p == here else ""}>{h(t)}</a>' for p, t in NAV)
    who = (f'<span class=who>{h(op.name)} · {h(op.role)}</span>'
           + button("/console/logout", "Log out", cls="link")) if op else ""
    html = f"""<!doctype html><html lang=en><head><meta charset=utf-8><title>{h(title)} · qrgw console</title>
<meta name=viewport content="width=device-width, initial-scale=1">
<link rel=stylesheet href="/console/static/console.css">
<script src="/console/static/app.js" defer></script></head><body>
<header><b>qrgw</b> operator console<nav>{nav if op else ''}</nav>{who}</header>
<main><h1>{h(title)}</h1>{content}</main></body></html>"""
    return web.Response(text=html, content_type="text/html", headers={
        "Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
        "Content-Security-Policy": "default-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'"})


def page(role: Role, title: str) -> Callable[[Page], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """A console page: the login page when the session is missing, the problem in the page otherwise."""
    def wrap(fn: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                if request.method == "POST":
                    _same_origin(request)
                await api.operator(request, role)
                out = await fn(request)
            except OperatorUnauthorized:
                raise web.HTTPSeeOther("/console/login?" + urlencode({"next": request.path_qs})) from None
            except QrgwError as exc:
                resp = layout(request, title, f'<p class=error><b>{h(exc.code)}</b> {h(exc.detail)}</p>')
                resp.set_status(exc.status)
                return resp
            return layout(request, title, out) if isinstance(out, str) else out

        return handler

    return wrap


def _same_origin(request: web.Request) -> None:
    """Forms post only from the console itself (the cookie is SameSite=Strict as well)."""
    origin = request.headers.get("Origin")
    if origin and origin != f"{request.scheme}://{request.host}":
        raise OperatorForbidden("cross-site form post refused")


def back(request: web.Request, to: str) -> web.StreamResponse:
    raise web.HTTPSeeOther(to)


# -- pages --------------------------------------------------------------------------------------------
async def login_form(request: web.Request) -> web.Response:
    nxt = request.query.get("next", "/console/")
    err = '<p class=error>That token matches no operator.</p>' if request.query.get("failed") else ""
    return layout(request, "Log in", f"""{err}<form method=post action="/console/login" class=login>
<input type=hidden name=next value="{h(nxt)}"><label>Operator token <input type=password name=token id=token
autocomplete=off required autofocus></label><button id=login>Log in</button></form>
<p class=muted>Create one with <code>qrgw admin token --role viewer --name you</code>
and add its line to the config.</p>""")


async def login(request: web.Request) -> web.StreamResponse:
    _same_origin(request)
    form = await request.post()
    settings = api.settings_of(request)
    nxt = str(form.get("next") or "/console/")
    nxt = nxt if nxt.startswith("/console/") else "/console/"
    op = match_token(str(form.get("token", "")), settings.admin.operators)
    if op is None:
        raise web.HTTPSeeOther("/console/login?" + urlencode({"failed": 1, "next": nxt}))
    sid = await open_session(api.store_of(request), op, settings.admin.session_ttl_s)
    resp = web.HTTPSeeOther(nxt)
    resp.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="Strict", path="/",
                    max_age=settings.admin.session_ttl_s, secure=request.secure)
    raise resp


async def logout(request: web.Request) -> web.StreamResponse:
    _same_origin(request)
    if sid := request.cookies.get(SESSION_COOKIE):
        await close_session(api.store_of(request), sid)
    resp = web.HTTPSeeOther("/console/login")
    resp.del_cookie(SESSION_COOKIE, path="/")
    raise resp


def _pay_link(pid: Any) -> str:
    return f'<a href="/console/payments/{h(pid)}">{h(pid)}</a>'


def payment_rows(items: list[dict[str, Any]]) -> list[list[str]]:
    return [[_pay_link(p["payment_id"]),
             h(p["created_at"][:19].replace("T", " ")), badge(p["status"]) + (" <span class=flag>review</span>"
                                                                              if p["review"] else ""),
             h(p["stage"]), h(p["wallet"]), h(p["acquirer"]), h(p["merchant"]), money(p["merchant_amount"]),
             money(p["payer_amount"]), h(p["payer"]), h(p["failure"])] for p in items]


PAY_HEAD = ["Payment", "Created (UTC)", "Status", "Stage", "Wallet", "Acquirer", "Merchant", "Merchant amount",
            "Payer amount", "Payer", "Failure"]


@page("viewer", "Overview")
async def overview(request: web.Request) -> str:
    settings = api.settings_of(request)
    o = await queries.overview(api.store_of(request), [p.id for p in settings.partners])
    rate = "—" if o["success_rate"] is None else f'{o["success_rate"] * 100:.1f} %'
    oldest = "—" if o["oldest_in_flight_s"] is None else f'{o["oldest_in_flight_s"]:.0f} s'
    tiles = [("Payments / min", o["payments_per_min"]), ("Success rate", rate), ("In flight", o["in_flight"]),
             ("Oldest in flight", oldest), ("Webhook backlog", o["webhook_backlog"]),
             ("Dead letters", o["dead_letters"])]
    cards = "".join(f'<div class=tile><span>{h(k)}</span><b>{h(v)}</b></div>' for k, v in tiles)
    parts = (await api.partners_view(request))["items"]
    rows = [[h(p["id"]), _health(p), h(p["circuit"]), str(p["calls"]), str(p["errors"]), _pct(p["error_rate"])]
            for p in parts]
    return (f'<p class=muted>Last {o["window_min"]} minutes · refreshed {datetime.now(UTC):%H:%M:%S} UTC</p>'
            f'<div class=tiles data-refresh=15>{cards}</div><h2>Partner health</h2>'
            + table(["Partner", "State", "Circuit", "Calls", "Unknown outcomes", "Error rate"], rows, {3, 4, 5}))


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f} %"


def _health(p: dict[str, Any]) -> str:
    if p["paused"]:
        return '<span class="st st-paused">PAUSED</span>'
    return badge("OPEN" if p["circuit"] == "open" else "OK" if p["circuit"] == "closed" else "HALF-OPEN")


@page("viewer", "Payments")
async def payments(request: web.Request) -> str:
    q = request.query
    found = await api.search_payments(request)
    opts = "".join(f'<option{" selected" if q.get("status") == s else ""}>{s}</option>'
                   for s in ["", "PROCESSING", "SUCCEEDED", "FAILED", "CANCELLED", "PARTIALLY_REFUNDED", "REFUNDED"])
    form = f"""<form method=get class=filters id=search>
<label>Partner <input name=partner value="{h(q.get('partner'))}"></label>
<label>Status <select name=status>{opts}</select></label>
<label>From <input name=from value="{h(q.get('from'))}" placeholder="2026-12-01"></label>
<label>To <input name=to value="{h(q.get('to'))}" placeholder="2026-12-02T10:00"></label>
<label>Request id <input name=request_id value="{h(q.get('request_id'))}"></label>
<label>Payer <input name=payer value="{h(q.get('payer'))}"></label><button>Search</button></form>"""
    more = ""
    if found["next_cursor"]:
        args = {k: v for k, v in q.items() if k != "cursor"} | {"cursor": found["next_cursor"]}
        more = f'<p><a class=more href="/console/payments?{h(urlencode(args))}">Older →</a></p>'
    return form + table(PAY_HEAD, payment_rows(found["items"]), {7, 8}, "no payment matches") + more


@page("viewer", "Payment")
async def payment(request: web.Request) -> str:
    d = await api.payment_detail(request, request.match_info["payment_id"])
    p = d["payment"]
    facts = [("Status", badge(p["status"])), ("Stage", h(p["stage"])), ("Request id", h(p["payment_request_id"])),
             ("Route", h(f'{p["route"]["wallet"]} → {p["route"]["acquirer"]} ({p["route"]["kind"]})')),
             ("Merchant", h(f'{p["merchant"]["name"]}, {p["merchant"]["city"]} {p["merchant"]["country"]}')),
             ("Merchant amount", money(p["merchant_amount"])), ("Payer amount", money(p["payer_amount"])),
             ("Payer", h(p["payer"]["id"])), ("Business day", h(p["business_day"])),
             ("Failure", h(f'{p["failure"]["code"]}: {p["failure"]["message"]}') if p["failure"] else "—")]
    dl = "".join(f"<dt>{h(k)}</dt><dd>{v}</dd>" for k, v in facts)
    rows = []
    for i in d["timeline"]:
        what = i["kind"].replace("_", " ")
        if i["kind"] == "partner_call":
            what = f'{h(i["partner"])} {h(i["op"])}'
        elif i["kind"] == "webhook":
            what = f'webhook {h(i["event_type"])}'
        status = i.get("status") or i.get("outcome") or ("DEAD" if i.get("dead_letter") else "")
        detail = h(i.get("detail")) + (f' <code>{h(i["code"])}</code>' if i.get("code") else "")
        if i["kind"] == "webhook":
            detail += f' · {h(i["event_id"])} · attempts {h(i["attempts"])}'
            if i.get("last_error"):
                detail += f' · {h(i["last_error"])}'
        rows.append([h(str(i["at"])[:23].replace("T", " ")), h(what), badge(status) if status else "",
                     h(i.get("stage", "")), detail, h(i.get("latency_ms", ""))])
    resolve = ""
    if p["stage"] == "review" and RANK[request[api.OPERATOR_KEY].role] >= RANK["admin"]:
        base = f'/console/payments/{h(p["payment_id"])}/resolve'
        resolve = (f'<h2>Review</h2><form method=post action="{base}" class=filters '
                   'data-confirm="Record this decision?"><select name=resolution><option>approve</option>'
                   '<option>reject</option></select><input name=note placeholder="why (goes to the audit log)" '
                   'required><button>Resolve</button></form>')
    return (f'<p><code>{h(p["payment_id"])}</code></p><dl class=facts>{dl}</dl>{resolve}<h2>Timeline</h2>'
            + table(["At (UTC)", "Step", "Outcome", "Stage", "Detail", "Latency ms"], rows, {5}))


@page("admin", "Payment")
async def resolve(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    pid = request.match_info["payment_id"]
    await actions.resolve(api.store_of(request), api.gw(request)[PAYMENTS].pricing, request[api.OPERATOR_KEY],
                          pid, str(form.get("resolution", "")), str(form.get("note", ""))[:500])
    return back(request, f"/console/payments/{pid}")


@page("viewer", "Review")
async def review(request: web.Request) -> str:
    items = (await api.review_queue(request))["items"]
    return table(PAY_HEAD, payment_rows(items), {7, 8}, "no payment is held for review")


@page("viewer", "Partners")
async def partners(request: web.Request) -> str:
    items = (await api.partners_view(request))["items"]
    can = RANK[request[api.OPERATOR_KEY].role] >= RANK["operator"]
    rows = []
    for p in items:
        act = ""
        if can:
            verb = "resume" if p["paused"] else "pause"
            act = button(f'/console/partners/{p["id"]}/{verb}', verb.capitalize(), cls=verb,
                         confirm=f'{verb.capitalize()} {p["id"]} for every gateway process?',
                         fields={"reason": ""} if verb == "resume" else None)
            if verb == "pause":
                act = act.replace("<button", '<input name=reason placeholder="reason"><button')
        rows.append([h(p["id"]), h(", ".join(p["roles"])), h(p["family"]), _health(p), h(p["pause_reason"]),
                     h(p["circuit"]), str(p["calls"]), _pct(p["error_rate"]), act])
    return table(["Partner", "Roles", "Family", "State", "Reason", "Circuit", "Calls (15 min)", "Error rate", ""],
                 rows, {6, 7})


@page("operator", "Partners")
async def pause_resume(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    verb = request.match_info["verb"]
    if verb not in ("pause", "resume"):
        raise web.HTTPNotFound()
    await actions.set_paused(api.store_of(request), api.table_of(request).status,
                             [p.id for p in api.settings_of(request).partners], request[api.OPERATOR_KEY],
                             request.match_info["partner_id"], verb == "pause", str(form.get("reason", ""))[:500])
    return back(request, "/console/partners")


@page("viewer", "Dead letters")
async def dead(request: web.Request) -> str:
    items = (await api.list_dead_letters(request))["items"]
    can = RANK[request[api.OPERATOR_KEY].role] >= RANK["operator"]
    rows = [[h(d["event_id"]), h(d["type"]), _pay_link(d["payment_id"]),
             h(", ".join(d["recipients"] or [])), h(d["reason"]), str(d["attempts"]), h(d["last_error"]),
             button(f'/console/dead-letters/{d["event_id"]}/replay', "Replay", confirm="Send it again?") if can else ""]
            for d in items]
    return table(["Event", "Type", "Payment", "Recipients", "Reason", "Attempts", "Last error", ""], rows, {5},
                 "no dead letter")


@page("operator", "Dead letters")
async def replay(request: web.Request) -> web.StreamResponse:
    await actions.replay(api.store_of(request), request[api.OPERATOR_KEY], request.match_info["event_id"])
    return back(request, "/console/dead-letters")


@page("viewer", "Settlement")
async def settlement(request: web.Request) -> str:
    settings = api.settings_of(request)
    zone = settings.business_day.zone
    day = parse_day(request.query.get("day") or business_day(datetime.now(UTC), zone))
    report = day_report(await load_day(api.store_of(request), day), zone, [p.id for p in settings.partners])
    rows = [[h(p["partner_id"]), h(pos["currency"]), *(money({"minor": pos[f], "currency": pos["currency"]})
                                                      for f in POSITION_FIELDS)]
            for p in report["partners"] for pos in p["positions"]]
    ok = badge("BALANCED" if report["balanced"] else "UNBALANCED")
    return (f'<form method=get class=filters><label>Business day <input name=day value="{h(day)}"></label>'
            f'<button>Show</button></form><p>{h(zone)} · {len(report["items"])} items · {ok}</p>'
            + table(["Partner", "Currency", *(f.replace("_", " ") for f in POSITION_FIELDS)], rows,
                    set(range(2, 2 + len(POSITION_FIELDS))), "no settled item that day"))


@page("viewer", "Audit log")
async def audit_log(request: web.Request) -> str:
    items, nxt = await audit.page(api.store_of(request), 100, request.query.get("cursor"))
    rows = [[h(e["at"][:19].replace("T", " ")), h(e["operator"]), h(e["role"]), h(e["action"]), h(e["target"]),
             f'<code>{h(e["before"])}</code>', f'<code>{h(e["after"])}</code>', h(e["note"])] for e in items]
    more = f'<p><a class=more href="/console/audit?cursor={h(nxt)}">Older →</a></p>' if nxt else ""
    return table(["At (UTC)", "Operator", "Role", "Action", "Target", "Before", "After", "Note"], rows,
                 empty="no operator action yet") + more


async def to_console(request: web.Request) -> web.StreamResponse:
    return back(request, "/console/")


def install(admin: web.Application) -> None:
    r = admin.router
    r.add_get("/console", to_console)
    r.add_get("/console/", overview)
    r.add_get("/console/login", login_form)
    r.add_post("/console/login", login)
    r.add_post("/console/logout", logout)
    r.add_get("/console/payments", payments)
    r.add_get("/console/payments/{payment_id}", payment)
    r.add_post("/console/payments/{payment_id}/resolve", resolve)
    r.add_get("/console/review", review)
    r.add_get("/console/partners", partners)
    r.add_post("/console/partners/{partner_id}/{verb}", pause_resume)
    r.add_get("/console/dead-letters", dead)
    r.add_post("/console/dead-letters/{event_id}/replay", replay)
    r.add_get("/console/settlement", settlement)
    r.add_get("/console/audit", audit_log)
    r.add_static("/console/static", STATIC)
