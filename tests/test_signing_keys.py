"""``qrgw keys generate`` and the registry built from Settings (gateway/keys.py)."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import Settings
from gateway.keys import registry_from_settings
from gateway.signing import (
    ALGORITHMS,
    Signer,
    generate_key,
    load_private_key,
    private_pem,
    public_jwk,
    public_pem,
)
from schemas.errors import ConfigError


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_keys_generate_writes_private_0600_and_prints_jwk(
    alg: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "generate", "--alg", alg, "--out", str(tmp_path / "k"), "--keyid", "gw-1"]) == 0
    jwk = json.loads(capsys.readouterr().out)
    private, public = tmp_path / "k" / "gw-1.pem", tmp_path / "k" / "gw-1.pub.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = load_private_key(private, alg)
    assert jwk == public_jwk(key, "gw-1", alg) and public.read_bytes() == public_pem(key)
    assert main(["keys", "generate", "--alg", alg, "--out", str(tmp_path / "k"), "--keyid", "gw-1"]) == 2


def _partner(keys: list[dict[str, object]]) -> dict[str, object]:
    return {
        "id": "alipay-cn",
        "roles": ["wallet"],
        "country": "CN",
        "currency": "CNY",
        "family": "alipayplus",
        "base_url": "http://127.0.0.1:1",
        "client_id": "ALIPAY_CN",
        "keys": keys,
    }


def test_registry_from_settings(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    old, new = generate_key("ed25519"), generate_key("ed25519")
    (tmp_path / "old.pem").write_bytes(private_pem(old))
    (tmp_path / "new.pem").write_bytes(private_pem(new))
    wallet = generate_key("rsa-v1_5-sha256")
    (tmp_path / "wallet.pub.pem").write_bytes(public_pem(wallet))
    ec = generate_key("ecdsa-p256-sha256")
    settings = Settings(
        gateway={
            "keys": [
                {
                    "keyid": "gw-old",
                    "alg": "ed25519",
                    "private_key": tmp_path / "old.pem",
                    "not_before": now - timedelta(days=30),
                },
                {
                    "keyid": "gw-new",
                    "alg": "ed25519",
                    "private_key": tmp_path / "new.pem",
                    "not_before": now - timedelta(days=1),
                },
            ]
        },
        partners=[
            _partner(
                [
                    {
                        "keyid": "ali-1",
                        "alg": "rsa-v1_5-sha256",
                        "public_key": tmp_path / "wallet.pub.pem",
                        "key_version": "1",
                    },
                    {
                        "keyid": "ali-ec",
                        "alg": "ecdsa-p256-sha256",
                        "public_key": public_jwk(ec, "ali-ec", "ecdsa-p256-sha256"),
                    },
                ]
            )
        ],
    )
    reg = registry_from_settings(settings)
    assert reg.signer.keyid == "gw-new"  # newest key already valid signs; both are published
    assert {k["kid"] for k in reg.jwks()["keys"]} == {"gw-old", "gw-new"}
    assert reg.alipay_public("ALIPAY_CN", "1").keyid == "ali-1"
    assert reg.public("ali-ec").partner_id == "alipay-cn"
    assert isinstance(reg.signer, Signer)


def test_registry_from_settings_names_the_bad_key(tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("not a key")
    (tmp_path / "ed.pem").write_bytes(private_pem(generate_key("ed25519")))
    cases = [
        (
            {
                "gateway": {
                    "keys": [{"keyid": "gw-x", "alg": "ed25519", "private_key": tmp_path / "absent.pem"}]
                }
            },
            "gateway.keys[0] (gw-x)",
        ),
        (
            {
                "gateway": {
                    "keys": [{"keyid": "gw-j", "alg": "ed25519", "private_key": tmp_path / "junk.pem"}]
                }
            },
            "gateway.keys[0] (gw-j)",
        ),
        (
            {
                "gateway": {
                    "keys": [{"keyid": "gw-e", "alg": "rsa-pss-sha512", "private_key": tmp_path / "ed.pem"}]
                }
            },
            "gateway.keys[0] (gw-e)",
        ),
        (
            {"partners": [_partner([{"keyid": "ali-z", "alg": "ed25519", "public_key": {"kty": "OKP"}}])]},
            "partners[0].keys[0] (ali-z)",
        ),
    ]
    for data, where in cases:
        with pytest.raises(ConfigError) as info:
            registry_from_settings(Settings(**data))  # type: ignore[arg-type]
        assert where in info.value.detail
