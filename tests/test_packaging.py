"""The wheel works outside the checkout: build it (``pip wheel . --no-deps``), install it into a
fresh virtualenv in a temporary folder, and run ``qrgw version``, ``qrgw demo`` and ``qrgw serve``
(+ ``/healthz``) from there. No network: the fresh venv borrows this venv's installed dependencies
through a ``.pth`` line (which does not carry over this venv's editable install of qrgw)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
import pytest
from test_serve_process import free_port, write_key

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` folder of a fresh venv holding only the built wheel (plus borrowed dependencies)."""
    base = tmp_path_factory.mktemp("wheel")
    env = {**os.environ, "QRGW_NO_MYPYC": "1"}  # the pure-Python build: faster, same package data
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(base / "dist")],
                   check=True, env=env, cwd=base, capture_output=True)
    (wheel,) = (base / "dist").glob("qrgw-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True)
    fresh_site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                check=True, capture_output=True, text=True).stdout.strip()
    Path(fresh_site, "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def run(bin_dir: Path, cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(bin_dir / "qrgw"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_the_installed_package_is_the_wheel_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run([str(installed / "python"), "-c", "import gateway.config as c; print(c.DEFAULTS_FILE)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(installed.parent)) and where.endswith("gateway/_defaults/gateway.toml")
    assert not where.startswith(str(ROOT))
    assert run(installed, tmp_path, "version").stdout.strip().startswith("qrgw ")
    quote = run(installed, tmp_path, "fx", "quote", "--from", "KRW", "--to", "CNY", "--amount", "15000")
    assert quote.returncode == 0 and "CNY" in quote.stdout, quote.stderr  # the packaged FX table is found


def test_demo_runs_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    done = run(installed, tmp_path, "demo", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["ok"] is True and not summary["failures"] and summary["journeys"]


def test_config_check_and_serve_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    write_key(tmp_path / "keys")
    port, admin = free_port(), free_port()
    config = tmp_path / "gw.toml"
    config.write_text(
        f'[server]\nport = {port}\n[admin]\nenabled = true\nport = {admin}\n'
        '[[gateway.keys]]\nkeyid = "qrgw-test"\nalg = "ed25519"\nprivate_key = "keys/qrgw-test.pem"\n'
    )
    checked = run(installed, tmp_path, "config", "check", "--config", str(config))
    assert checked.returncode == 0 and checked.stdout.startswith("config OK"), checked.stderr
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.Popen([str(installed / "qrgw"), "serve", "--config", str(config)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        health = None
        for _ in range(300):  # wait by polling, not by timing
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert health is not None and health.status_code == 200
        metrics = httpx.get(f"http://127.0.0.1:{admin}/metrics", timeout=5.0)
        assert metrics.status_code == 200 and "qrgw_http_requests_total" in metrics.text
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0
