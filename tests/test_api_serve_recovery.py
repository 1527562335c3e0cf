"""`qrgw serve` on Redis, killed (SIGKILL) between the payer's debit and the merchant's credit:
a restarted process finishes the payment, and the sandboxes show both legs done once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from adapters.sandbox.ledger import merge_sums
from gateway.qr import samples
from gateway.sandbox_env import SandboxEnvironment, free_port
from gateway.signing import KeyRegistry, QrgwAuth


def serve(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "QRGW_PAYMENTS__LEASE_S": "1.0",
        "QRGW_PAYMENTS__CALL_ATTEMPTS": "1",
        "QRGW_SERVER__PORT": str(port),
        "QRGW_LOGGING__FORMAT": "json",
    }
    out = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config)],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )


async def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx.AsyncClient() as c:
        for _ in range(200):
            assert proc.poll() is None, f"gateway exited; see {log}"
            try:
                if (await c.get(f"{url}/readyz", timeout=1.0)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"gateway not ready; see {log}")


async def test_killed_between_debit_and_credit_a_restarted_gateway_finishes(tmp_path: Path, redis_url: str) -> None:
    store_url = redis_url.rsplit("/", 1)[0] + "/5"  # a database of its own: no key collides
    async with SandboxEnvironment(tmp_path / "sbx", store_url=store_url, hang_s=3.0) as env:
        port, log = free_port(), tmp_path / "serve.log"
        url = f"http://127.0.0.1:{port}"
        signer = env.partner_keys["kakaopay-kr"]
        auth = QrgwAuth(
            signer, KeyRegistry([signer], list(env.partner_registry("kakaopay-kr").partner_keys("qrgw"))), "qrgw"
        )
        kakao = env.sandbox("kakaopay-kr")
        kakao.faults.push("notify", "timeout=before", count=1)  # the credit hangs: the gateway dies in it
        before = kakao.ledger.balance("kr-user-1")
        assert before is not None
        first = serve(env.config_path, port, log)
        try:
            await wait_ready(url, first, log)
            body = {
                "payment_request_id": "kill-1",
                "qr": samples.seoul("15000"),
                "payer": {"id": "kr-user-1", "residency": "resident", "country": "KR"},
                "payer_currency": "KRW",
            }
            client = httpx.AsyncClient(base_url=url, auth=auth, timeout=60)
            post = asyncio.create_task(client.post("/v1/payments", json=body))
            for _ in range(200):  # until the wallet has debited the payer
                if kakao.ledger.balance("kr-user-1") == before - 15000:
                    break
                await asyncio.sleep(0.05)
            assert kakao.ledger.balance("kr-user-1") == before - 15000
            await asyncio.sleep(0.2)  # the credit call is in flight (hanging at the acquirer)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            try:
                await post
            except httpx.TransportError:
                pass
            await client.aclose()
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(10)
        second = serve(env.config_path, port, log)
        try:
            await wait_ready(url, second, log)
            async with httpx.AsyncClient(base_url=url, auth=auth, timeout=30) as client:
                for _ in range(200):
                    repeat = await client.post("/v1/payments", json=body)  # the same payment, idempotently
                    if repeat.json().get("status") != "PROCESSING":
                        break
                    await asyncio.sleep(0.05)
                assert repeat.status_code == 200, repeat.text
                p = repeat.json()
            assert p["status"] == "SUCCEEDED", log.read_text()[-3000:]
            assert kakao.ledger.balance("kr-user-1") == before - 15000  # charged once
            sums = merge_sums(*(s.ledger for s in env.sandboxes.values()))
            assert sums[p["payment_id"]].merchant_in == 15000
            assert env.violations() == []
        finally:
            second.send_signal(signal.SIGTERM)  # graceful: in-flight finish, recovery stops
            assert second.wait(20) == 0, log.read_text()[-3000:]
