"""``qrgw admin …`` over a live admin listener: token, search, show, pause, resume, replay, audit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from admin_kit import AdminKit, admin_kit

from gateway.cli import main
from gateway.sandbox_env import SandboxEnvironment


@pytest.fixture
async def kit(sandbox_env: SandboxEnvironment) -> AsyncIterator[AdminKit]:
    async with admin_kit(sandbox_env, "memory", None) as k:
        yield k


async def qrgw(kit: AdminKit, role: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
               *argv: str) -> tuple[int, str, str]:
    monkeypatch.setenv("QRGW_ADMIN_TOKEN", kit.tokens[role])
    code = await asyncio.to_thread(main, ["admin", "--url", kit.gw.admin_url, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


async def test_cli_over_the_admin_api(kit: AdminKit, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["admin", "token", "--role", "viewer", "--name", "ana"]) == 0
    out = capsys.readouterr().out
    assert 'role = "viewer"' in out and 'name = "ana"' in out and "token_sha256 = " in out
    pid = (await kit.pay("cli-1")).json()["payment_id"]
    await kit.final(pid)

    code, out, _ = await qrgw(kit, "viewer", capsys, monkeypatch, "search", "--partner", "kakaopay-kr")
    assert code == 0 and pid in out and "SUCCEEDED" in out
    code, out, _ = await qrgw(kit, "viewer", capsys, monkeypatch, "--json", "show", pid)
    assert code == 0 and json.loads(out)["payment"]["payment_id"] == pid
    code, _, err = await qrgw(kit, "viewer", capsys, monkeypatch, "pause", "alipay-cn")
    assert code == 2 and "OPERATOR_ROLE_NOT_ALLOWED" in err
    code, out, _ = await qrgw(kit, "operator", capsys, monkeypatch, "pause", "alipay-cn", "--reason", "drill")
    assert code == 0 and json.loads(out)["paused"] is True
    code, out, _ = await qrgw(kit, "operator", capsys, monkeypatch, "resume", "alipay-cn")
    assert code == 0 and json.loads(out)["paused"] is False
    code, _, err = await qrgw(kit, "operator", capsys, monkeypatch, "replay", "evt_missing")
    assert code == 2 and "DEAD_LETTER_NOT_FOUND" in err
    code, out, _ = await qrgw(kit, "viewer", capsys, monkeypatch, "--json", "audit")
    assert [(e["operator"], e["action"]) for e in json.loads(out)["items"]] == [
        ("ana-operator", "partner.resume"), ("ana-operator", "partner.pause")]
