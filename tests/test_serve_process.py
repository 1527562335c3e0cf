"""`qrgw serve` as a real subprocess: it comes up on the embedded store, and a broken config
fails at start-up with one line naming the file and the key."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_key(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "qrgw-test.pem"
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    return path


def qrgw(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway.cli", *args]


def test_serve_starts_on_the_memory_store_and_answers_healthz(tmp_path: Path) -> None:
    write_key(tmp_path / "keys")
    port = free_port()
    config = tmp_path / "gw.toml"
    config.write_text(
        f'[server]\nport = {port}\n[store]\nurl = "memory://"\n'
        '[[gateway.keys]]\nkeyid = "qrgw-test"\nalg = "ed25519"\nprivate_key = "keys/qrgw-test.pem"\n'
    )
    env = {**os.environ, "QRGW_LOGGING__FORMAT": "json"}
    proc = subprocess.Popen(qrgw("serve", "--config", str(config)), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        status = None
        for _ in range(200):  # wait for readiness by polling, not by timing
            if proc.poll() is not None:
                break
            try:
                resp = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0)
                status = resp.status_code
                body = resp.json()
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert status == 200
        assert body == {"status": "ok"}
        assert resp.headers["X-Request-Id"]
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2.0)
        assert ready.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0  # graceful shutdown on SIGTERM


def test_serve_with_a_broken_config_prints_one_line_and_exits_nonzero(tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text('[server]\nport = "eighty"\n')
    done = subprocess.run(qrgw("serve", "--config", str(config)), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(config) in lines[0]
    assert "server.port" in lines[0]
    assert "Traceback" not in done.stderr


def test_serve_refuses_a_missing_key_file(tmp_path: Path) -> None:
    config = tmp_path / "nokey.toml"
    config.write_text(
        '[[gateway.keys]]\nkeyid = "qrgw-x"\nalg = "ed25519"\nprivate_key = "keys/absent.pem"\n'
    )
    done = subprocess.run(qrgw("serve", "--config", str(config)), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "gateway.keys[0].private_key" in done.stderr
    assert "does not exist" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
