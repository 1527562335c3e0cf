"""The outbound HTTP layer's policy at start-up: a production config whose webhook_url is plain
http is refused by ``qrgw serve`` with one line, before anything listens; the same config in
sandbox mode passes the check."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from gateway.cli import main
from gateway.cli.serve import check_startup
from gateway.config import load_settings


def write_config(tmp_path: Path, *, sandbox: bool, webhook_url: str) -> Path:
    key = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "gw.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (tmp_path / "partner.pub").write_bytes(
        ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    config = tmp_path / "gw.toml"
    config.write_text(
        f'[server]\nsandbox = {str(sandbox).lower()}\n[store]\nurl = "memory://"\n'
        '[[gateway.keys]]\nkeyid = "gw-1"\nalg = "ed25519"\nprivate_key = "gw.pem"\n'
        '[[partners]]\nid = "openwallet-sg"\nfamily = "qrgw"\nroles = ["wallet"]\ncountry = "SG"\n'
        f'currency = "SGD"\nbase_url = "https://api.openwallet.example"\nwebhook_url = "{webhook_url}"\n'
        '[[partners.keys]]\nkeyid = "ow-1"\nalg = "ed25519"\npublic_key = "partner.pub"\n'
    )
    return config


def test_plain_http_webhook_url_refused_outside_sandbox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, sandbox=False, webhook_url="http://hooks.openwallet.example/qrgw")
    assert main(["serve", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "partners[openwallet-sg].webhook_url: plain http is allowed only in sandbox mode" in err[0]


def test_https_webhook_url_and_sandbox_http_pass(tmp_path: Path) -> None:
    check_startup(load_settings(write_config(tmp_path, sandbox=False, webhook_url="https://hooks.example/q")))
    check_startup(load_settings(write_config(tmp_path, sandbox=True, webhook_url="http://127.0.0.1:9/q")))


def test_uvloop_where_installed_else_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import sys

    import uvloop

    from gateway.loop import new_event_loop, run

    loop = new_event_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()

    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run(which()).startswith("uvloop")
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as on Windows: the import fails
    assert run(which()).startswith("asyncio")


async def test_the_app_refuses_to_start_webhooks_to_a_plain_http_url(tmp_path: Path) -> None:
    from aiohttp import web

    from gateway.app import create_app
    from schemas.errors import ConfigError

    settings = load_settings(write_config(tmp_path, sandbox=False, webhook_url="http://hooks.openwallet.example/q"))
    runner = web.AppRunner(create_app(settings))
    with pytest.raises(ConfigError, match="webhook_url: plain http"):
        await runner.setup()
    await runner.cleanup()
