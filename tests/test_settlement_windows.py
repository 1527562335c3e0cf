"""Settlement windows end to end over real HTTP: payments through the gateway and the sandbox
partners, a close into frozen batches with fees, the partner's batch by API, the
settlement.closed event, and each sandbox's own file reconciled against its batch."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from aiohttp import web
from test_settlement_api import SEOUL, SHANGHAI, Gw, gw, pay

from gateway.appkeys import STORE
from gateway.obs.admin import create_admin_app
from gateway.payments.container import METRICS
from gateway.settlement.batch import content_hash
from gateway.settlement.csvio import read_tables
from gateway.settlement.recon import ImportResult, import_file
from gateway.settlement.windows import CloseConfig, close_window

__all__ = ["gw"]  # the fixture, shared with test_settlement_api


def today() -> str:
    return datetime.now(UTC).astimezone(ZoneInfo("Asia/Seoul")).date().isoformat()


async def make_day(g: Gw, tag: str) -> list[dict[str, object]]:
    kakao, sg = g.clients["kakaopay-kr"], g.clients["openwallet-sg"]
    made = []
    for rid, client, body in [
        (f"{tag}-dom-1", kakao, pay(f"{tag}-dom-1", SEOUL, {"currency": "KRW", "value": "15000"}, "u1", "KR", "KRW")),
        (f"{tag}-dom-2", kakao, pay(f"{tag}-dom-2", SEOUL, {"currency": "KRW", "value": "7000"}, "u1", "KR", "KRW")),
        (f"{tag}-dom-3", kakao, pay(f"{tag}-dom-3", SEOUL, {"currency": "KRW", "value": "3300"}, "u2", "KR", "KRW")),
        (f"{tag}-xb-1", kakao, pay(f"{tag}-xb-1", SHANGHAI, {"currency": "CNY", "value": "12345"}, "u1", "KR", "KRW")),
        (f"{tag}-xb-2", kakao, pay(f"{tag}-xb-2", SHANGHAI, {"currency": "CNY", "value": "5000"}, "u1", "KR", "KRW")),
        (f"{tag}-sg-1", sg, pay(f"{tag}-sg-1", SEOUL, {"currency": "KRW", "value": "23456"}, "s1", "SG", "SGD")),
    ]:
        r = await client.post("/v1/payments", json=body)
        assert r.status_code == 201 and r.json()["status"] == "SUCCEEDED", (rid, r.text)
        made.append(r.json())
    xb1, xb2 = made[3], made[4]
    r = await kakao.post(f"/v1/payments/{xb1['payment_id']}/refunds",
                         json={"refund_request_id": f"{tag}-rf", "amount": {"currency": "CNY", "value": "2345"}})
    assert r.status_code == 201, r.text
    r = await kakao.post(f"/v1/payments/{xb2['payment_id']}/cancel", json={"cancel_request_id": f"{tag}-cx"})
    assert r.status_code == 200, r.text
    return made


@asynccontextmanager
async def admin_client(g: Gw) -> AsyncIterator[httpx.AsyncClient]:
    runner = web.AppRunner(create_admin_app(g.app))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            yield c
    finally:
        await runner.cleanup()


def config(g: Gw) -> CloseConfig:
    assert g.env.settings is not None
    return CloseConfig.from_settings(g.env.settings)


async def reconcile_sandbox(g: Gw, partner: str, window: str) -> ImportResult:
    sbx = g.env.sandbox(partner)
    assert sbx.url is not None
    async with httpx.AsyncClient(base_url=sbx.url) as c:
        r = await c.get("/sandbox/settlement-file", params={"day": today()})
    assert r.status_code == 200
    currency = sbx.ledger.currency
    result = await import_file(g.app[STORE], partner, window, sbx.family, currency, r.content)
    assert result.rows > 0
    return result


async def test_close_freezes_batches_that_partners_fetch_and_reconcile(gw: Gw) -> None:
    made = await make_day(gw, "a")
    store, day, cfg = gw.app[STORE], today(), config(gw)
    window, closed = await close_window(store, day, cfg, owner="test")
    assert closed and window["items"] == 8  # six payments, one refund, one cancel
    assert {b["partner_id"] for b in window["batches"]} == {"kakaopay-kr", "alipay-cn", "openwallet-sg"}
    again, closed_again = await close_window(store, day, cfg, owner="other")
    assert not closed_again and again == window  # idempotent: the same frozen window

    # The caller's batch, exactly as frozen: its hash covers everything else in it.
    kakao = gw.clients["kakaopay-kr"]
    r = await kakao.get(f"/v1/settlements/windows/{day}")
    assert r.status_code == 200, r.text
    batch = r.json()
    assert batch["partner_id"] == "kakaopay-kr" and batch["content_hash"] == content_hash(batch)
    assert batch == dict(await store.get_batch(day, "kakaopay-kr") or {})
    assert "mid_rate" not in batch["columns"] and "fx_margin" not in batch  # hidden unless configured
    rows = [dict(zip(batch["columns"], row, strict=True)) for row in batch["rows"]]
    dom1 = next(x for x in rows if x["payment_id"] == made[0]["payment_id"] and x["type"] == "debit")
    assert (dom1["amount"], dom1["fee"]) == ("15000", "30")  # 20 bps wallet fee, half-up
    as_csv = await kakao.get(f"/v1/settlements/windows/{day}", params={"format": "csv"})
    tables = read_tables(as_csv.text)
    assert len(tables["items"]) == len(batch["rows"]) and len(tables["positions"]) == len(batch["positions"])
    assert {r["partner_id"] for r in tables["items"] + tables["positions"]} == {"kakaopay-kr"}
    sg = await gw.clients["openwallet-sg"].get(f"/v1/settlements/windows/{day}")
    assert {x[2] for x in sg.json()["rows"]} == {made[5]["payment_id"]}  # only its own movements
    assert (await kakao.get("/v1/settlements/windows/2020-01-01")).json()["code"] == "SETTLEMENT_NOT_FOUND"

    # Each sandbox's own file, in its family's format, reconciles with nothing left over.
    for partner in ("kakaopay-kr", "alipay-cn", "openwallet-sg"):
        assert (await reconcile_sandbox(gw, partner, day)).exceptions == [], partner

    # settlement.closed reaches each partner through the outbox (signed webhooks).
    for _ in range(500):
        if all(any(e["type"] == "settlement.closed" for e in gw.env.sandbox(p).events) for p in ("alipay-cn",)):
            break
        await asyncio.sleep(0.02)
    (ev,) = [e for e in gw.env.sandbox("alipay-cn").events if e["type"] == "settlement.closed"]
    ref = next(b for b in window["batches"] if b["partner_id"] == "alipay-cn")
    assert ev["data"]["content_hash"] == ref["content_hash"] and ev["data"]["window_id"] == day

    # A payment final after the close belongs to the next window, and only it.
    later = await kakao.post("/v1/payments", json=pay("a-late", SEOUL, {"currency": "KRW", "value": "999"},
                                                      "u1", "KR", "KRW"))
    nxt = (datetime.fromisoformat(day) + timedelta(days=1)).date().isoformat()
    w2, _ = await close_window(store, nxt, cfg, owner="test")
    assert w2["items"] == 1 and w2["previous"] == day and w2["seq"] == window["seq"] + 1
    b2 = await store.get_batch(nxt, "kakaopay-kr")
    assert b2 is not None and {r[2] for r in b2["rows"]} == {later.json()["payment_id"]}


async def test_recon_finds_exactly_a_lost_credit_an_amount_off_by_one_and_a_duplicate(gw: Gw) -> None:
    made = await make_day(gw, "b")
    store, day = gw.app[STORE], today()
    await close_window(store, day, config(gw), owner="test")
    ledger = gw.env.sandbox("kakaopay-kr").ledger
    ids = {m: str(made[i]["payment_id"]) for i, m in enumerate(("d1", "d2", "d3"))}
    lost = next(m for m in ledger.journal if m.type == "credit" and m.gateway_ref.startswith(ids["d1"]))
    off = next(m for m in ledger.journal if m.type == "debit" and m.gateway_ref.startswith(ids["d2"]))
    dup = next(m for m in ledger.journal if m.type == "debit" and m.gateway_ref.startswith(ids["d3"]))
    ledger.journal.remove(lost)
    ledger.journal[ledger.journal.index(off)] = dataclasses.replace(off, amount=off.amount + 1)
    ledger.journal.append(dup)

    first = await reconcile_sandbox(gw, "kakaopay-kr", day)
    found = first.exceptions
    assert first.new == 3
    got = sorted((e["kind"], e["gateway_ref"]) for e in found)
    assert got == sorted([("missing_at_partner", lost.gateway_ref), ("amount_differs", off.gateway_ref),
                          ("duplicate", dup.gateway_ref)])
    amounts = next(e for e in found if e["kind"] == "amount_differs")
    assert (amounts["gateway_amount"], amounts["partner_amount"]) == ("7000", "7001")

    # The same file again changes nothing; a resolution sticks and shows in /metrics.
    again = await reconcile_sandbox(gw, "kakaopay-kr", day)
    assert again.new == 0 and [e["exception_id"] for e in again.exceptions] == [e["exception_id"] for e in found]
    assert len(await store.recon_exceptions(day)) == 3
    dup_id = next(e["exception_id"] for e in found if e["kind"] == "duplicate")
    async with admin_client(gw) as admin:  # the operator listener: list, resolve, read the window
        listed = (await admin.get("/admin/recon/exceptions", params={"window": day, "open": "true"})).json()
        assert sorted(e["exception_id"] for e in listed["exceptions"]) == sorted(e["exception_id"] for e in found)
        r = await admin.post(f"/admin/recon/exceptions/{dup_id}/resolve", json={"note": "partner file glitch"})
        assert r.status_code == 200 and r.json()["note"] == "partner file glitch", r.text
        assert (await admin.post(f"/admin/recon/exceptions/{dup_id}/resolve", json={})).status_code == 422
        assert (await admin.post("/admin/recon/exceptions/rx_nope/resolve", json={"note": "n"})).status_code == 404
        left = (await admin.get("/admin/recon/exceptions", params={"open": "true"})).json()["exceptions"]
        assert len(left) == 2
        assert (await admin.get(f"/admin/settlement/windows/{day}")).json()["window_id"] == day
        again = await admin.post(f"/admin/settlement/windows/{day}/close")
        assert again.status_code == 200  # already closed: the frozen window, unchanged
    metrics = gw.app[METRICS]
    await metrics.refresh()  # what the operator listener's GET /metrics does before rendering
    text = metrics.render()[0].decode()
    assert 'qrgw_recon_exceptions{kind="duplicate",state="resolved"} 1.0' in text
    assert 'qrgw_recon_exceptions{kind="amount_differs",state="open"} 1.0' in text
    assert 'qrgw_recon_exceptions{kind="missing_at_gateway",state="open"} 0.0' in text
