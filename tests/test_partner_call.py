"""``qrgw call`` against a running gateway on loopback: signs as a partner, verifies the answer."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httpx
import pytest

from gateway.partnerkit.client import load_client_config, write_sandbox_client_config
from gateway.sandbox_env import SandboxEnvironment
from gateway.signing import generate_key, public_jwk


@pytest.fixture
def gateway(gateway_on_loopback: SandboxEnvironment) -> Path:
    """The running gateway's client config (``qrgw call --config``)."""
    return write_sandbox_client_config(gateway_on_loopback)


async def qrgw(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", *args, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _prepend(src: Path, dst: Path, line: str) -> Path:
    dst.write_text(line + src.read_text(encoding="utf-8"), encoding="utf-8")
    return dst


async def test_get_is_signed_and_the_answer_verified(gateway: Path) -> None:
    code, out, err = await qrgw("call", "--config", str(gateway), "GET", "/v1/settlements/2026-01-05")
    assert code == 0, err
    assert "signature: verified (qrgw)" in err and isinstance(json.loads(out), dict)
    code, out, err = await qrgw("call", "--config", str(gateway), "GET", "/openapi.json")  # public, unsigned
    assert code == 0 and json.loads(out)["openapi"].startswith("3.") and "signature: none (public endpoint)" in err


async def test_post_body_from_a_file_as_another_partner_verbose(
    gateway: Path, sandbox_env: SandboxEnvironment, tmp_path: Path
) -> None:
    body = tmp_path / "decode.json"
    body.write_text(json.dumps({"qr": sandbox_env.sample_qr("seoul")}), encoding="utf-8")
    code, out, err = await qrgw("call", "--config", str(gateway), "--as", "kakaopay-kr", "-v",
                                "POST", "/v1/qr/decode", f"@{body}")
    assert code == 0, err
    assert json.loads(out)["route"]["acquirer"] == "kakaopay-kr"
    assert '"@method": POST' in err and '"content-digest": sha-256=:' in err
    assert 'keyid="kakaopay-kr-sbx-1"' in err


async def test_error_answers_exit_1_and_bad_gateway_keys_exit_3(gateway: Path, tmp_path: Path) -> None:
    code, out, err = await qrgw("call", "--config", str(gateway), "POST", "/v1/qr/decode", "@-", stdin=b"{")
    assert code == 1 and json.loads(out)["code"] == "INVALID_JSON", out + err
    # Pin a JWKS whose key under the gateway's kid is someone else's: the answer must be rejected.
    cfg = load_client_config(gateway)
    wrong = tmp_path / "wrong-jwks.json"
    wrong.write_text(json.dumps({"keys": [public_jwk(generate_key("ed25519"), "qrgw-sbx-ed25519", "ed25519")]}))
    pinned = _prepend(gateway, tmp_path / "pinned.toml", f'gateway_jwks = "{wrong.as_posix()}"\n')
    assert load_client_config(pinned).gateway_url == cfg.gateway_url
    code, out, err = await qrgw("call", "--config", str(pinned), "GET", "/v1/settlements/2026-01-05")
    assert code == 3 and "REJECTED: SIGNATURE_INVALID" in err, err


async def test_qrgw_sandbox_prints_the_inboxes_and_writes_a_client_config(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "sandbox", "--dir", str(tmp_path / "sbx"), "--ready-file", str(ready),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        text = ""
        while not text.endswith("\n\n"):  # the description ends with an empty line
            line = (await proc.stdout.readline()).decode()
            assert line, text
            text += line
        doc = json.loads(await asyncio.to_thread(ready.read_text))
        events = doc["partners"]["openwallet-sg"]["events"]
        assert events in text and "webhook inbox" in text and doc["client_config"] in text
        async with httpx.AsyncClient() as client:
            inbox = (await client.get(events)).json()
        assert inbox == {"count": 0, "events": []}
        cfg = load_client_config(Path(doc["client_config"]))
        assert cfg.partner(None).id == "openwallet-sg" and cfg.partner("alipay-cn").alg == "rsa-v1_5-sha256"
    finally:
        proc.terminate()
        await proc.wait()
