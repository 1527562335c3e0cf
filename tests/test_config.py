"""Configuration: layering, environment overrides, relative paths, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import DEFAULTS_FILE, load_settings
from schemas.errors import ConfigError

PARTNER = """
[[partners]]
id = "kakaopay-kr"
roles = ["wallet", "acquirer"]
country = "KR"
currency = "KRW"
family = "kakaopay"
base_url = "http://127.0.0.1:9201/"
webhook_url = "http://127.0.0.1:9201/webhooks/qrgw"
[[partners.keys]]
keyid = "kakaopay-kr-1"
alg = "ed25519"
public_key = "keys/kakaopay-kr-1.pub.pem"

[[routing]]
identifier = "com.kakaopay"
partner = "kakaopay-kr"
"""


def write(tmp_path: Path, text: str, name: str = "gw.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_load_and_name_the_embedded_store() -> None:
    settings = load_settings()
    assert settings.store.url == "memory://"
    assert settings.server.port == 8080
    assert settings.business_day.zone == "Asia/Seoul"
    assert DEFAULTS_FILE.is_file()


def test_file_layers_over_defaults_and_keeps_missing_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9100\n" + PARTNER)
    settings = load_settings(path)
    assert settings.server.port == 9100
    assert settings.server.host == "127.0.0.1"  # kept from the defaults
    assert settings.server.max_body_bytes == 65536
    assert settings.fx.quote_ttl_s == 60  # a section the file leaves out keeps its defaults
    partner = settings.partner("kakaopay-kr")
    assert partner is not None
    assert partner.base_url == "http://127.0.0.1:9201"  # trailing slash normalised


def test_relative_paths_resolve_against_the_files_folder(tmp_path: Path) -> None:
    sub = tmp_path / "etc"
    sub.mkdir()
    path = write(sub, PARTNER)
    settings = load_settings(path)
    key = settings.partners[0].keys[0].public_key
    assert key == (sub / "keys" / "kakaopay-kr-1.pub.pem").resolve()


def test_environment_beats_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[server]\nport = 9100\n")
    monkeypatch.setenv("QRGW_SERVER__PORT", "9200")
    monkeypatch.setenv("QRGW_STORE__URL", "redis://127.0.0.1:6390/0")
    settings = load_settings(path)
    assert settings.server.port == 9200
    assert settings.store.url == "redis://127.0.0.1:6390/0"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[server]\nport = 'eighty'\n", "server.port: Input should be a valid integer"),
        ("[server]\nprot = 1\n", "server.prot: Extra inputs are not permitted"),
        ("[store]\nurl = 'mysql://x'\n", "store.url: must be memory://"),
        (PARTNER.replace('"kakaopay"', '"paypal"'), "partners[0].family: Input should be"),
        (PARTNER.replace('id = "kakaopay-kr"', 'id = "Kakao Pay"'), "partners[0].id: String should match"),
        (PARTNER.replace('partner = "kakaopay-kr"', 'partner = "nobody"'), "routing[0].partner: unknown partner"),
        ("[server\n", "not valid TOML"),
    ],
)
def test_errors_name_file_key_and_problem_in_one_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert expected in message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "absent.toml")


def test_routing_to_a_partner_without_acquirer_role_is_refused(tmp_path: Path) -> None:
    text = PARTNER.replace('roles = ["wallet", "acquirer"]', 'roles = ["wallet"]')
    with pytest.raises(ConfigError, match="has no acquirer role"):
        load_settings(write(tmp_path, text))
