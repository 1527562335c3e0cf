"""The CLI imports a sub-command's dependencies only when it runs; ``qrgw config check`` validates
what ``serve`` would; start-up failures are one line on stderr."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_serve_process import free_port, qrgw, write_key

from gateway.cli import COMMANDS, build_parser

HEAVY = ("aiohttp", "pydantic", "pydantic_settings", "cryptography", "redis", "structlog", "prometheus_client",
         "httpx", "opentelemetry", "fx", "adapters", "gateway.config", "gateway.app")
PROBE = """
import json, sys
from gateway.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def loaded(*args: str) -> tuple[int, set[str], str]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"]), done.stdout


@pytest.mark.parametrize("args", [("version",), ("--help",)])
def test_version_and_help_import_no_framework(args: tuple[str, ...]) -> None:
    if args == ("--help",):  # argparse exits after printing help: run it through the real entry point
        done = subprocess.run([sys.executable, "-c", "import json, sys\nfrom gateway.cli import main\n"
                               "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
                               "print(json.dumps(sorted(sys.modules)))"], capture_output=True, text=True, timeout=60)
        modules, out = set(json.loads(done.stdout.strip().splitlines()[-1])), done.stdout
        assert all(name in out for name in COMMANDS)  # every sub-command is listed all the same
    else:
        code, modules, out = loaded(*args)
        assert code == 0 and out.startswith("qrgw ")
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY or m in HEAVY)
    assert heavy == [], heavy


def test_a_sub_command_loads_what_it_needs() -> None:
    _code, modules, _ = loaded("qr", "decode", "not-a-qr")  # qr needs its codec, not the web stack
    assert "gateway.qr" in modules and "aiohttp" not in modules and "redis" not in modules


def test_every_summary_matches_its_module() -> None:
    """The lazy --help lists COMMANDS' lines; each module registers the same line when it runs."""
    full = build_parser()
    actions = [a for a in full._actions if a.dest == "command"]
    helps = {c.dest: c.help for c in actions[0]._choices_actions}  # type: ignore[attr-defined]
    assert helps == COMMANDS


def _config(tmp_path: Path, extra: str = "") -> Path:
    write_key(tmp_path / "keys")
    cfg = tmp_path / "gw.toml"
    cfg.write_text('[[gateway.keys]]\nkeyid = "qrgw-test"\nalg = "ed25519"\nprivate_key = "keys/qrgw-test.pem"\n'
                   + extra)
    return cfg


def test_config_check_accepts_a_good_file(tmp_path: Path) -> None:
    done = subprocess.run(qrgw("config", "check", "--config", str(_config(tmp_path))), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("config OK: 0 partners, 1 signing keys") and "admin listener off" in done.stdout


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        ('[fx.rates]\ntable_file = "absent.toml"\n', "absent.toml"),  # what serve reads at start-up
        ("[admin]\nenabled = true\nport = 8080\n", "admin.port"),  # the operator port is not the partner port
        ('[server]\ntls_cert = "cert.pem"\n', "tls"),
    ],
)
def test_config_check_refuses_what_serve_would(tmp_path: Path, extra: str, names: str) -> None:
    done = subprocess.run(qrgw("config", "check", "--config", str(_config(tmp_path, extra))), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and names in done.stderr, done.stderr


def test_otlp_export_is_checked_for_its_exporter(tmp_path: Path) -> None:
    """Tracing to a collector needs the ``otlp`` extra: config check says so rather than serve failing later."""
    try:
        import opentelemetry.exporter.otlp.proto.http  # noqa: F401
        installed = True
    except ImportError:
        installed = False
    cfg = _config(tmp_path, '[tracing]\nenabled = true\notlp_endpoint = "http://127.0.0.1:4318/v1/traces"\n')
    done = subprocess.run(qrgw("config", "check", "--config", str(cfg)), capture_output=True, text=True, timeout=60)
    assert (done.returncode == 0) is installed, done.stderr
    assert installed or "tracing.otlp_endpoint" in done.stderr


def test_a_port_in_use_is_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen(1)
        done = subprocess.run(qrgw("serve", "--config", str(_config(tmp_path, f"[server]\nport = {port}\n"))),
                              capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "in use" in lines[0].lower()
