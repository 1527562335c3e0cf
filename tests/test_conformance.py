"""``qrgw conformance`` against the project's own sandbox partner (every check passes) and
against a deliberately broken one (each misbehaviour is found by its check), over loopback."""

from __future__ import annotations

import asyncio
import sys

import pytest
from broken_partner import BROKEN, QUIET, BrokenQrgwSandbox

from gateway.partnerkit.checks import CHECKS
from gateway.partnerkit.conformance import partner_from_settings, run_checks, table
from gateway.sandbox_env import SandboxEnvironment

PID = "openwallet-sg"


async def test_the_sandbox_partner_passes_every_check(sandbox_env: SandboxEnvironment) -> None:
    assert sandbox_env.settings is not None
    partner = partner_from_settings(sandbox_env.settings, PID, sandbox_env.sandbox(PID).url or "")
    results = await run_checks(partner)
    assert [r.name for r in results] == [name for name, _ in CHECKS]
    assert {r.name: (r.passed, r.detail) for r in results if r.passed is not True} == {}
    # The checks did real work at the partner: debits, credits, refunds, events.
    sbx = sandbox_env.sandbox(PID)
    assert sbx.calls.get("pay", 0) >= 10 and sbx.calls.get("refund", 0) >= 3
    assert any(e.duplicate for e in sbx.inbox.entries()) and any(not e.verified for e in sbx.inbox.entries())


@pytest.mark.parametrize("broken", sorted(BROKEN))
async def test_each_broken_behaviour_is_found(sandbox_env: SandboxEnvironment, broken: str) -> None:
    assert sandbox_env.settings is not None
    bad = BrokenQrgwSandbox(sandbox_env.sandbox(PID).cfg, broken)
    url = await bad.start()
    try:
        results = {r.name: r for r in await run_checks(partner_from_settings(sandbox_env.settings, PID, url))}
    finally:
        await bad.stop()
    expected = BROKEN[broken]
    assert results[expected].passed is False, results[expected]
    assert results[expected].detail  # says what it saw


async def test_what_cannot_be_observed_is_na_not_a_failure(sandbox_env: SandboxEnvironment) -> None:
    assert sandbox_env.settings is not None
    quiet = BrokenQrgwSandbox(sandbox_env.sandbox(PID).cfg, QUIET)
    url = await quiet.start()
    try:
        results = await run_checks(partner_from_settings(sandbox_env.settings, PID, url))
    finally:
        await quiet.stop()
    assert [(r.name, r.passed) for r in results if r.passed is not True] == [("webhooks-deduplicated", None)]
    assert "webhooks-deduplicated       N/A" in table(results) and "1 n/a, 0 failed" in table(results)


async def test_cli_prints_the_table_and_exits_by_the_verdict(sandbox_env: SandboxEnvironment) -> None:
    good_url = sandbox_env.sandbox(PID).url or ""
    bad = BrokenQrgwSandbox(sandbox_env.sandbox(PID).cfg, "cancel-forgets")
    bad_url = await bad.start()
    try:
        outs = {}
        for url in (good_url, bad_url):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.cli", "conformance", "--partner-url", url, "--partner-id", PID,
                "--config", str(sandbox_env.config_path),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            out, err = await proc.communicate()
            outs[url] = (proc.returncode, out.decode(), err.decode())
    finally:
        await bad.stop()
    code, out, err = outs[good_url]
    assert code == 0, out + err
    assert "cancel-before-debit" in out and "FAIL " not in out and "13 checks: 13 passed, 0 n/a, 0 failed" in out
    code, out, err = outs[bad_url]
    assert code == 1, out + err
    assert [line.split()[1] for line in out.splitlines() if line.startswith("cancel-before-debit")] == ["FAIL"]
