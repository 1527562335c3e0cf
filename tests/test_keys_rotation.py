"""Rotation with no restart and no failed request: `qrgw serve` as a real process, `qrgw keys
rotate`, SIGHUP, a partner calling all along; then a partner key added the same way, and a
broken config refused with one log line while the old one keeps serving."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.partnerkit.wire import exchange
from gateway.sandbox_env import SandboxEnvironment, dump_toml, free_port, generate
from gateway.signing import KeyRegistry, Signer
from gateway.signing.jwks import entries_from_jwks

PID = "openwallet-sg"


def qrgw(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway.cli", *args]


def add_partner_key(config: Path, pid: str, key: dict[str, Any]) -> None:
    data = tomllib.loads(config.read_text(encoding="utf-8"))
    next(p for p in data["partners"] if p["id"] == pid)["keys"].append(key)
    config.write_text(dump_toml(data), encoding="utf-8")


def set_key_time(config: Path, keyid: str, name: str, when: datetime) -> None:
    data = tomllib.loads(config.read_text(encoding="utf-8"))
    next(k for k in data["gateway"]["keys"] if k["keyid"] == keyid)[name] = when
    config.write_text(dump_toml(data), encoding="utf-8")


class Caller:
    """A partner calling the gateway non-stop; it refreshes the gateway's JWKS only when told."""

    def __init__(self, url: str, signer: Signer, qr: str) -> None:
        self.url, self.signer, self.qr = url, signer, qr
        self.verifier = KeyRegistry([], [])
        self.answers: list[tuple[int, str, str]] = []  # (status, verdict, answer keyid)
        self.stop = False

    async def refresh(self, client: httpx.AsyncClient) -> list[str]:
        doc = (await client.get(self.url + "/.well-known/jwks.json")).json()
        self.verifier = KeyRegistry([], entries_from_jwks(doc, "qrgw"))
        return [k["kid"] for k in doc["keys"]]

    async def once(self, client: httpx.AsyncClient, signer: Signer | None = None) -> tuple[int, str, str]:
        body = json.dumps({"qr": self.qr}).encode()
        ex = await exchange(client, signer or self.signer, self.verifier, "POST", self.url + "/v1/qr/decode",
                            body, expect_partner="qrgw")
        kid = ex.headers.get("signature-input", "").split('keyid="')[-1].split('"')[0]
        return ex.status, ex.verdict, kid

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            while not self.stop:
                self.answers.append(await self.once(client))
                await asyncio.sleep(0.02)  # stay well inside the partner's rate limit (200/s by default)


async def until(check: Any, what: str, tries: int = 400) -> None:
    for _ in range(tries):  # polling for a state, never asserting a duration
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


@pytest.mark.slow
async def test_rotation_without_restart_or_failed_request(sandbox_env: SandboxEnvironment, tmp_path: Path) -> None:
    env, cfg = sandbox_env, sandbox_env.config_path
    log_path = tmp_path / "serve.log"
    admin_port = free_port()
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            *qrgw("serve", "--config", str(cfg)), stdout=log, stderr=log,
            env={**os.environ, "QRGW_LOGGING__FORMAT": "json", "QRGW_ADMIN__ENABLED": "true",
                 "QRGW_ADMIN__PORT": str(admin_port)},
        )
    caller = Caller(env.gateway_url, env.partner_keys[PID], env.sample_qr("seoul"))
    client = httpx.AsyncClient(timeout=10)
    try:
        async def up() -> bool:
            try:
                return (await client.get(env.gateway_url + "/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await until(up, "gateway up")
        await caller.refresh(client)
        task = asyncio.create_task(caller.run())
        await until(lambda: asyncio.sleep(0, len(caller.answers) > 3), "first answers")

        # 1. The gateway's key: rotate, SIGHUP; the new key is published at once, signs from not_before.
        later = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
        rot = await asyncio.create_subprocess_exec(
            *qrgw("keys", "rotate", "--config", str(cfg), "--out", str(tmp_path / "keys"),
                  "--keyid", "qrgw-next", "--not-before", later.isoformat(), "--overlap-days", "1"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _out, err = await rot.communicate()
        assert rot.returncode == 0, err.decode()
        proc.send_signal(signal.SIGHUP)

        async def published() -> bool:
            return "qrgw-next" in await caller.refresh(client)

        await until(published, "new key in the JWKS")
        assert (await caller.once(client))[2] == "qrgw-sbx-ed25519"  # published, not signing yet
        # Bring the switch-over forward (the partner already holds the key), so the test need not
        # wait an hour; the process switches by itself when not_before passes.
        set_key_time(cfg, "qrgw-next", "not_before", datetime.now(UTC) + timedelta(seconds=1))
        proc.send_signal(signal.SIGHUP)
        await until(lambda: asyncio.sleep(0, any(a[2] == "qrgw-next" for a in caller.answers)),
                    "answers signed by the new key")
        # The gateway now calls partners under the new key: the sandbox partner fetches our JWKS
        # on the unknown keyid (as partners should) and the payment goes through.
        pay = {"payment_request_id": "rot-1", "qr": env.sample_qr("singapore", amount=1000),
               "payer": {"id": "sg-user-1", "residency": "resident", "country": "SG"}, "payer_currency": "SGD"}
        paid = await exchange(client, caller.signer, caller.verifier, "POST", env.gateway_url + "/v1/payments",
                              json.dumps(pay).encode(), expect_partner="qrgw")
        assert paid.status == 201 and paid.json()["status"] == "SUCCEEDED", paid.body
        assert paid.signed_ok and env.sandbox(PID).registry.public("qrgw-next").partner_id == "qrgw"

        # 2. The partner's key: a second key added to the config, SIGHUP, the partner switches.
        new = generate(tmp_path / "pkeys", "openwallet-sg-2", "ed25519")
        assert (await caller.once(client, new.signer))[0] == 401  # not known yet
        add_partner_key(cfg, PID, {"keyid": new.keyid, "alg": "ed25519", "public_key": str(new.public_path)})
        reload = (await client.post(f"http://127.0.0.1:{admin_port}/admin/reload")).json()  # the operator API
        assert reload["reloaded"] is True, reload

        async def accepted() -> bool:
            return (await caller.once(client, new.signer))[0] == 200

        await until(accepted, "the partner's new key accepted")
        caller.signer = new.signer

        # 3. A broken config: refused, the running one kept.
        cfg.write_text("[gateway\nnot toml", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        refused = await client.post(f"http://127.0.0.1:{admin_port}/admin/reload")
        assert refused.status_code == 422 and "not valid TOML" in refused.json()["detail"]
        seen = len(caller.answers)
        await until(lambda: asyncio.sleep(0, len(caller.answers) > seen + 5), "answers after the bad reload")
        caller.stop = True
        await task
    finally:
        await client.aclose()
        running = proc.returncode is None
        proc.terminate()
        await proc.wait()
    assert running, "the gateway never restarted or died"
    bad = [a for a in caller.answers if a[0] != 200 or a[1] != "ok"]
    assert bad == [] and len(caller.answers) > 10
    kids = [a[2] for a in caller.answers]
    assert kids[0] == "qrgw-sbx-ed25519" and kids[-1] == "qrgw-next"
    assert kids.index("qrgw-next") > max(i for i, k in enumerate(kids) if k == "qrgw-sbx-ed25519")
    log = log_path.read_text(encoding="utf-8")
    assert log.count("config_reload_refused") == 2, log[-2000:]  # one line per refused reload


def test_keys_list_rotate_and_jwks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    old = generate(tmp_path / "keys", "gw-old", "ed25519")
    cfg = tmp_path / "gw.toml"
    cfg.write_text(dump_toml({"gateway": {"keys": [
        {"keyid": "gw-old", "alg": "ed25519", "private_key": str(old.private_path),
         "not_after": datetime(2099, 1, 1, tzinfo=UTC)}]}}))
    nb = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    assert main(["keys", "rotate", "--config", str(cfg), "--out", str(tmp_path / "keys"), "--keyid", "gw-new",
                 "--not-before", nb.isoformat(), "--overlap-days", "2"]) == 0
    assert (tmp_path / "keys" / "gw-new.pem").stat().st_mode & 0o077 == 0
    assert (tmp_path / "gw.toml.bak").exists()
    capsys.readouterr()
    assert main(["keys", "list", "--config", str(cfg)]) == 0
    rows = {line.split()[1]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "active" in rows["gw-old"] and "(signing)" in rows["gw-old"] and rows["gw-old"].split()[6] == "4"
    assert "pending" in rows["gw-new"] and "∞" in rows["gw-new"]
    assert main(["keys", "jwks", "--config", str(cfg)]) == 0

    keys = {k["kid"]: k for k in json.loads(capsys.readouterr().out)["keys"]}
    assert keys["gw-new"]["nbf"] == int(nb.timestamp())
    assert keys["gw-old"]["exp"] == int((nb + timedelta(days=2)).timestamp())
    # A rotation to another algorithm than the current key's is refused, nothing written.
    assert main(["keys", "rotate", "--config", str(cfg), "--out", str(tmp_path / "keys"), "--alg",
                 "ecdsa-p256-sha256", "--keyid", "gw-ec"]) == 2
    assert not (tmp_path / "keys" / "gw-ec.pem").exists()
