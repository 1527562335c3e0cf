"""``qrgw admin …``: the operators' commands, over the admin API (never the store directly), so
the CLI, the console and the API check the same roles and write the same audit log.

The API's address comes from ``--url`` or ``QRGW_ADMIN_URL`` (default http://127.0.0.1:8081);
the token from ``QRGW_ADMIN_TOKEN`` or ``--token-file`` (never a command-line argument: it would
show in the process list and shell history). ``qrgw admin token`` makes a new token offline.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from schemas.errors import ConfigError, QrgwError

DEFAULT_URL = "http://127.0.0.1:8081"
_ROWS = ("payment_id", "created_at", "status", "stage", "wallet", "acquirer", "merchant_amount", "payer")


def register(sub: Any) -> None:
    from gateway.cli import COMMANDS

    p = sub.add_parser("admin", help=COMMANDS["admin"],
                       description="Operator commands over the admin API ([admin] listener). "
                       "Token: QRGW_ADMIN_TOKEN or --token-file; address: --url or QRGW_ADMIN_URL.")
    p.add_argument("--url", default=os.environ.get("QRGW_ADMIN_URL", DEFAULT_URL), help="admin listener URL")
    p.add_argument("--token-file", type=Path, help="file holding the operator token")
    p.add_argument("--json", action="store_true", help="print the API's JSON answer")
    a = p.add_subparsers(dest="admin_command", metavar="ACTION", required=True)
    t = a.add_parser("token", help="make an operator token and print the config line for it")
    t.add_argument("--role", choices=("viewer", "operator", "admin"), required=True)
    t.add_argument("--name", default=os.environ.get("USER", "operator"), help="operator name (audit log)")
    t.set_defaults(func=token)
    s = a.add_parser("search", help="find payments, newest first")
    for name in ("partner", "status", "from", "to", "request-id", "payer", "cursor"):
        s.add_argument(f"--{name}")
    s.add_argument("--limit", type=int, default=50)
    s.set_defaults(func=search)
    sh = a.add_parser("show", help="a payment and its timeline")
    sh.add_argument("payment_id")
    sh.set_defaults(func=show)
    a.add_parser("dead-letters", help="list dead-lettered webhook events").set_defaults(func=dead_letters)
    r = a.add_parser("replay", help="re-queue a dead letter with the same event_id")
    r.add_argument("event_id")
    r.set_defaults(func=replay)
    for verb in ("pause", "resume"):
        v = a.add_parser(verb, help=f"{verb} a partner in every gateway process sharing the store")
        v.add_argument("partner")
        v.add_argument("--reason", default="")
        v.set_defaults(func=pause if verb == "pause" else resume)
    a.add_parser("partners", help="partners: paused, circuit, recent calls").set_defaults(func=partners)
    a.add_parser("review", help="payments held for review").set_defaults(func=review)
    rs = a.add_parser("resolve", help="decide a payment held for review (role admin)")
    rs.add_argument("payment_id")
    rs.add_argument("resolution", choices=("approve", "reject"))
    rs.add_argument("--note", required=True, help="why (recorded in the audit log)")
    rs.set_defaults(func=resolve)
    au = a.add_parser("audit", help="the audit log, newest first")
    au.add_argument("--limit", type=int, default=50)
    au.add_argument("--cursor")
    au.set_defaults(func=audit)


def token(args: argparse.Namespace) -> int:
    from gateway.admin.auth import new_token, sha256_hex

    tok = new_token()
    print(f"token: {tok}")
    print("# keep the token secret (it is shown once); add these lines to the gateway's config:")
    print("[[admin.operators]]")
    print(f'name = "{args.name}"')
    print(f'role = "{args.role}"')
    print(f'token_sha256 = "{sha256_hex(tok)}"')
    return 0


def _token(args: argparse.Namespace) -> str:
    if args.token_file is not None:
        try:
            return str(args.token_file.read_text()).strip()
        except OSError as exc:
            raise ConfigError(f"--token-file: {exc.strerror or exc}") from None
    tok = os.environ.get("QRGW_ADMIN_TOKEN", "").strip()
    if not tok:
        raise ConfigError("set QRGW_ADMIN_TOKEN or pass --token-file (make one with: qrgw admin token --role viewer)")
    return tok


def call(args: argparse.Namespace, method: str, path: str, *, params: dict[str, Any] | None = None,
         body: dict[str, Any] | None = None) -> Any:
    """One admin API call; a problem answer becomes a QrgwError (one line on stderr, exit 2)."""
    import httpx

    try:
        with httpx.Client(base_url=args.url, timeout=30, headers={"Authorization": f"Bearer {_token(args)}"}) as c:
            r = c.request(method, path, params={k: v for k, v in (params or {}).items() if v is not None},
                          json=body)
    except httpx.HTTPError as exc:
        raise ConfigError(f"admin API at {args.url}: {exc}") from None
    doc = r.json() if r.content else {}
    if r.status_code >= 400:
        err = QrgwError(str(doc.get("detail", r.text)))
        err.code = str(doc.get("code", f"HTTP_{r.status_code}"))
        raise err
    return doc


def _out(args: argparse.Namespace, doc: Any, rows: list[list[str]] | None = None) -> int:
    if args.json or rows is None:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))] if rows else []
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def _amount(m: dict[str, Any]) -> str:
    return f'{m["value"]} {m["currency"]}'


def _payment_rows(items: list[dict[str, Any]]) -> list[list[str]]:
    rows = [list(_ROWS)]
    for p in items:
        rows.append([str(p[k]) if k != "merchant_amount" else _amount(p[k]) for k in _ROWS])
    return rows


def search(args: argparse.Namespace) -> int:
    q = {"partner": args.partner, "status": args.status, "from": getattr(args, "from"), "to": args.to,
         "request_id": args.request_id, "payer": args.payer, "cursor": args.cursor, "limit": args.limit}
    doc = call(args, "GET", "/admin/v1/payments", params=q)
    code = _out(args, doc, _payment_rows(doc["items"]))
    if doc["next_cursor"] and not args.json:
        print(f"# more: --cursor {doc['next_cursor']}", file=sys.stderr)
    return code


def show(args: argparse.Namespace) -> int:
    doc = call(args, "GET", f"/admin/v1/payments/{args.payment_id}")
    if args.json:
        return _out(args, doc)
    p = doc["payment"]
    print(f'{p["payment_id"]}  {p["status"]}  {p["route"]["wallet"]} -> {p["route"]["acquirer"]}  '
          f'{_amount(p["merchant_amount"])}  request {p["payment_request_id"]}')
    rows = [["at", "step", "outcome", "detail"]]
    for t in doc["timeline"]:
        step = t["kind"] if t["kind"] != "partner_call" else f'{t["partner"]} {t["op"]}'
        outcome = str(t.get("status") or t.get("outcome") or ("DEAD" if t.get("dead_letter") else ""))
        rows.append([str(t["at"]), step, outcome, str(t.get("detail") or t.get("event_id") or "")])
    return _out(args, doc, rows)


def dead_letters(args: argparse.Namespace) -> int:
    doc = call(args, "GET", "/admin/v1/dead-letters")
    rows = [["event_id", "type", "payment_id", "reason", "attempts"]] + [
        [str(d[k]) for k in ("event_id", "type", "payment_id", "reason", "attempts")] for d in doc["items"]]
    return _out(args, doc, rows)


def replay(args: argparse.Namespace) -> int:
    return _out(args, call(args, "POST", f"/admin/v1/dead-letters/{args.event_id}/replay"))


def pause(args: argparse.Namespace) -> int:
    return _out(args, call(args, "POST", f"/admin/v1/partners/{args.partner}/pause", body={"reason": args.reason}))


def resume(args: argparse.Namespace) -> int:
    return _out(args, call(args, "POST", f"/admin/v1/partners/{args.partner}/resume", body={"reason": args.reason}))


def partners(args: argparse.Namespace) -> int:
    doc = call(args, "GET", "/admin/v1/partners")
    keys = ("id", "paused", "circuit", "calls", "error_rate", "pause_reason")
    return _out(args, doc, [list(keys)] + [[str(p[k]) for k in keys] for p in doc["items"]])


def review(args: argparse.Namespace) -> int:
    doc = call(args, "GET", "/admin/v1/review")
    return _out(args, doc, _payment_rows(doc["items"]))


def resolve(args: argparse.Namespace) -> int:
    body = {"resolution": args.resolution, "note": args.note}
    return _out(args, call(args, "POST", f"/admin/v1/payments/{args.payment_id}/resolve", body=body))


def audit(args: argparse.Namespace) -> int:
    doc = call(args, "GET", "/admin/v1/audit", params={"limit": args.limit, "cursor": args.cursor})
    keys = ("at", "operator", "action", "target", "note")
    code = _out(args, doc, [list(keys)] + [[str(e[k]) for k in keys] for e in doc["items"]])
    if doc["next_cursor"] and not args.json:
        print(f"# more: --cursor {doc['next_cursor']}", file=sys.stderr)
    return code
