"""The admin API over loopback against the sandboxes, on memory and on a real Redis: roles,
search with stable pagination, a payment's timeline, replay with the same event_id, review and
resolve, pause across two gateway processes sharing the store, and an audit entry per action."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from admin_kit import SHANGHAI, AdminKit, admin_kit

from gateway.appkeys import STORE
from gateway.events import payment_event
from gateway.payments.ports import HOLD_FLAG, REVIEW_FLAG, REVIEW_STAGE
from gateway.routing_app import routing_table
from gateway.sandbox_env import SandboxEnvironment
from gateway.testing.settlement import make_payment
from gateway.webhooks.state import DeliveryState, record_dead_letter, save_state
from gateway.webhooks.worker import GROUP
from schemas.payment import PaymentStatus


@pytest.fixture(params=["memory", "redis"])
async def kit(request: pytest.FixtureRequest, sandbox_env: SandboxEnvironment) -> AsyncIterator[AdminKit]:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    async with admin_kit(sandbox_env, request.param, url, processes=2) as k:
        yield k


def problem(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code


async def test_roles_401_403(kit: AdminKit) -> None:
    async with kit.admin(None) as anon, kit.admin("viewer") as viewer, kit.admin("operator") as op:
        problem(await anon.get("/admin/v1/payments"), 401, "OPERATOR_TOKEN_INVALID")
        bad = await anon.get("/admin/v1/payments", headers={"Authorization": "Bearer qrgw_op_nope"})
        problem(bad, 401, "OPERATOR_TOKEN_INVALID")
        assert (await viewer.get("/admin/v1/whoami")).json() == {"name": "ana-viewer", "role": "viewer"}
        assert (await viewer.get("/admin/v1/payments")).status_code == 200
        problem(await viewer.post("/admin/v1/partners/alipay-cn/pause", json={}), 403, "OPERATOR_ROLE_NOT_ALLOWED")
        r = await op.post("/admin/v1/payments/pay_x/resolve", json={"resolution": "approve", "note": "ok"})
        problem(r, 403, "OPERATOR_ROLE_NOT_ALLOWED")
        assert r.json()["required"] == "admin"
        problem(await viewer.get("/admin/v1/payments?status=BOGUS"), 422, "VALIDATION_ERROR")
        problem(await viewer.get("/admin/v1/payments?cursor=%%%"), 422, "VALIDATION_ERROR")
        problem(await viewer.get("/admin/v1/payments/pay_missing"), 404, "PAYMENT_NOT_FOUND")
    async with kit.admin("viewer") as viewer:  # no action was taken: nothing audited
        assert (await viewer.get("/admin/v1/audit")).json()["items"] == []


async def test_search_pages_newest_first_and_the_timeline_tells_the_story(kit: AdminKit) -> None:
    ids = []
    for i in range(5):
        r = await kit.pay(f"adm-{i}", payer="kr-user-1" if i % 2 else "kr-user-2")
        assert r.status_code in (201, 202), r.text
        ids.append(r.json()["payment_id"])
        await kit.final(ids[-1])
    async with kit.admin("viewer") as viewer:
        seen: list[str] = []
        cursor = None
        for _ in range(5):
            q: dict[str, str | int] = {"limit": 2, "partner": "kakaopay-kr"}
            if cursor:
                q["cursor"] = cursor
            page = (await viewer.get("/admin/v1/payments", params=q)).json()
            seen += [p["payment_id"] for p in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == ids[::-1]  # newest first, each once
        one = (await viewer.get("/admin/v1/payments", params={"partner": "kakaopay-kr", "request_id": "adm-3"})).json()
        assert [p["payment_id"] for p in one["items"]] == [ids[3]]
        by_payer = (await viewer.get("/admin/v1/payments", params={"payer": "kr-user-2"})).json()["items"]
        assert [p["payment_id"] for p in by_payer] == [ids[4], ids[2], ids[0]]
        assert (await viewer.get("/admin/v1/payments", params={"status": "FAILED"})).json()["items"] == []
        later = (await viewer.get("/admin/v1/payments", params={"from": "2999-01-01"})).json()
        assert later == {"items": [], "next_cursor": None}

        d = (await viewer.get(f"/admin/v1/payments/{ids[0]}")).json()
    assert d["payment"]["status"] == "SUCCEEDED"
    kinds = [t["kind"] for t in d["timeline"]]
    assert kinds[0] == "created" and kinds[-1] == "webhook"
    calls = [t for t in d["timeline"] if t["kind"] == "partner_call"]
    assert {(c["partner"], c["outcome"]) for c in calls} == {("kakaopay-kr", "succeeded")}  # domestic: both legs
    assert all(c["latency_ms"] >= 0 for c in calls)
    assert [t["status"] for t in d["timeline"] if t["kind"] == "state"][-1] == "SUCCEEDED"
    assert [str(t["at"]) for t in d["timeline"]] == sorted(str(t["at"]) for t in d["timeline"])


async def test_replay_redelivers_the_same_event_id(kit: AdminKit) -> None:
    r = await kit.pay("adm-wh", qr=SHANGHAI, value="5000", cur="CNY")
    pid = r.json()["payment_id"]
    await kit.final(pid)
    store = kit.gw.app[STORE]
    rec = await store.get_payment(pid)
    assert rec is not None
    event = payment_event(rec, "payment.succeeded")
    eid = event["event_id"]
    alipay = kit.env.sandbox("alipay-cn")
    for _ in range(400):  # the first delivery reached both partners and the worker is done with it
        if any(e["event_id"] == eid for e in alipay.events) and await store.outbox_backlog(GROUP) == 0:
            break
        await asyncio.sleep(0.02)
    # Alipay+ never got it, after the horizon: dead-lettered as the worker does it.
    alipay.events[:] = [e for e in alipay.events if e["event_id"] != eid]
    await save_state(store, eid, DeliveryState(first_at=0.0, attempts=9, delivered=["kakaopay-kr"], done=True), 600)
    doc = {"reason": "retry horizon passed", "attempts": 9, "delivered": ["kakaopay-kr"],
           "last_error": {"alipay-cn": "HTTP 503"}}
    await record_dead_letter(store, "test", event, doc)
    async with kit.admin("viewer") as viewer, kit.admin("operator") as op:
        dead = (await viewer.get("/admin/v1/dead-letters")).json()["items"]
        assert [(d["event_id"], d["payment_id"]) for d in dead] == [(eid, pid)]
        problem(await viewer.post(f"/admin/v1/dead-letters/{eid}/replay"), 403, "OPERATOR_ROLE_NOT_ALLOWED")
        problem(await op.post("/admin/v1/dead-letters/evt_nope/replay"), 404, "DEAD_LETTER_NOT_FOUND")
        r = await op.post(f"/admin/v1/dead-letters/{eid}/replay")
        assert r.status_code == 200 and r.json()["recipients_left"] == ["alipay-cn"]
        for _ in range(400):
            if any(e["event_id"] == eid for e in alipay.events):
                break
            await asyncio.sleep(0.02)
        got = [e for e in alipay.events if e["event_id"] == eid]
        assert len(got) == 1 and got[0]["payment_id"] == pid and got[0]["type"] == "payment.succeeded"
        assert (await viewer.get("/admin/v1/dead-letters")).json()["items"] == []
        entry = (await viewer.get("/admin/v1/audit")).json()["items"][0]
        assert (entry["operator"], entry["action"], entry["target"]) == ("ana-operator", "dead_letter.replay", eid)
        assert entry["before"]["dead"] is True and entry["after"]["requeued"] is True


async def test_pause_reaches_every_process_sharing_the_store(kit: AdminKit) -> None:
    first, second = kit.gateways
    async with kit.admin("operator", second) as op, kit.admin("viewer") as viewer:
        r = await op.post("/admin/v1/partners/kakaopay-kr/pause", json={"reason": "incident 42"})
        assert r.status_code == 200 and r.json()["paused"] is True
        table = routing_table(first.app)
        for _ in range(200):  # the partner-facing process re-reads the flags every 50 ms
            if table.status.paused("kakaopay-kr"):
                break
            await asyncio.sleep(0.02)
        problem(await kit.pay("adm-paused"), 403, "PARTNER_PAUSED")  # a paused wallet is refused
        parts = {p["id"]: p for p in (await viewer.get("/admin/v1/partners")).json()["items"]}
        assert parts["kakaopay-kr"]["paused"] is True and parts["kakaopay-kr"]["pause_reason"] == "incident 42"
        assert parts["alipay-cn"]["paused"] is False and parts["alipay-cn"]["circuit"] == "closed"
        # A paused acquirer is skipped by routing: no route for a Shanghai merchant.
        assert (await op.post("/admin/v1/partners/alipay-cn/pause", json={})).status_code == 200
        assert (await op.post("/admin/v1/partners/kakaopay-kr/resume", json={})).status_code == 200
        for _ in range(200):
            if table.status.paused("alipay-cn") and not table.status.paused("kakaopay-kr"):
                break
            await asyncio.sleep(0.02)
        problem(await kit.pay("adm-noroute", qr=SHANGHAI, value="5000", cur="CNY"), 422, "QR_NO_ROUTE")
        assert (await op.post("/admin/v1/partners/alipay-cn/resume", json={})).status_code == 200
        problem(await op.post("/admin/v1/partners/nobody/pause", json={}), 404, "NOT_FOUND")
        audit = (await viewer.get("/admin/v1/audit", params={"limit": 2})).json()
        assert [(e["action"], e["target"]) for e in audit["items"]] == [
            ("partner.resume", "alipay-cn"), ("partner.resume", "kakaopay-kr")]
        rest = (await viewer.get("/admin/v1/audit", params={"cursor": audit["next_cursor"]})).json()
        assert [(e["action"], e["target"], e["note"]) for e in rest["items"]] == [
            ("partner.pause", "alipay-cn", ""), ("partner.pause", "kakaopay-kr", "incident 42")]
        assert rest["items"][1]["before"]["paused"] is False and rest["items"][1]["after"]["paused"] is True
        assert (await viewer.delete("/admin/v1/audit")).status_code == 405  # append-only: no way to remove
    assert (await kit.pay("adm-resumed")).status_code in (201, 202)


async def test_review_queue_and_an_admins_decision(kit: AdminKit) -> None:
    store = kit.gw.app[STORE]
    held = make_payment("pay_heldforreview", wallet="kakaopay-kr", acquirer="alipay-cn", merchant_minor=5000,
                        status=PaymentStatus.PROCESSING).model_copy(
        update={"stage": REVIEW_STAGE, "flags": [REVIEW_FLAG, HOLD_FLAG], "created_at": datetime.now(UTC)})
    await store.create_payment(held)
    async with kit.admin("viewer") as viewer, kit.admin("operator") as op, kit.admin("admin") as adm:
        queue = (await viewer.get("/admin/v1/review")).json()["items"]
        assert [(p["payment_id"], p["review"]) for p in queue] == [(held.payment_id, True)]
        url = f"/admin/v1/payments/{held.payment_id}/resolve"
        problem(await op.post(url, json={"resolution": "reject", "note": "x"}), 403, "OPERATOR_ROLE_NOT_ALLOWED")
        problem(await adm.post(url, json={"resolution": "maybe", "note": "x"}), 422, "VALIDATION_ERROR")
        problem(await adm.post(url, json={"resolution": "reject", "note": " "}), 422, "VALIDATION_ERROR")
        r = await adm.post(url, json={"resolution": "reject", "note": "name matches the list, confirmed"})
        assert r.status_code == 200 and r.json()["status"] == "FAILED" and r.json()["failure"] == "SCREENING_HIT"
        problem(await adm.post(url, json={"resolution": "approve", "note": "again"}), 409, "INVALID_STATE")
        assert (await viewer.get("/admin/v1/review")).json()["items"] == []
        entries = (await viewer.get("/admin/v1/audit")).json()["items"]
    assert [(e["operator"], e["action"], e["target"]) for e in entries] == [
        ("ana-admin", "payment.resolve", held.payment_id)]  # refused and repeated decisions leave no entry
    assert entries[0]["before"]["stage"] == "review" and entries[0]["after"]["status"] == "FAILED"
    assert entries[0]["note"] == "name matches the list, confirmed"
    rec = await store.get_payment(held.payment_id)
    assert rec is not None and rec.history[-1].reason == "screening review rejected by ana-admin"
