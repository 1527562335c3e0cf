"""Starting the pieces of a bench run: sandboxes, gateway workers, the floor, the load generator.

Every function takes the run's ``Procs`` so that whatever it starts is stopped with the run.
"""

from __future__ import annotations

import json
import os
import re
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx
from _harness import PY, Proc, Procs, free_port, listening, wait_file, wait_until

from gateway.sandbox_env import PARTNER_ALG, dump_toml, sample_qr
from gateway.signing import generate_key, private_pem, public_pem

BENCH = Path(__file__).resolve().parent
QUIET_GATEWAY = {"QRGW_LOGGING__LEVEL": "WARNING", "QRGW_LOGGING__FORMAT": "json"}


def quiet_env() -> dict[str, str]:
    return {**os.environ, **QUIET_GATEWAY}


FAMILY = {"kakaopay-kr": "kakaopay", "alipay-cn": "alipayplus", "openwallet-sg": "qrgw"}


# --- journeys (notes/topology: the three sandbox journeys) ----------------------------------------------
def journeys(partners: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The three journeys, each signed by its wallet's key; payer ids get a per-request suffix."""
    seoul, shanghai = sample_qr("seoul"), sample_qr("shanghai")
    specs = [
        ("cn-tourist@seoul", "alipay-cn", seoul, ("KRW", "15000"), "cn-bench", "non-resident", "CN", "CNY"),
        ("kr-user@shanghai", "kakaopay-kr", shanghai, ("CNY", "5000"), "kr-bench-x", "resident", "KR", "KRW"),
        ("kr-user@seoul", "kakaopay-kr", seoul, ("KRW", "12000"), "kr-bench-d", "resident", "KR", "KRW"),
    ]
    out = []
    for name, partner, qr, (cur, value), payer, residency, country, payer_cur in specs:
        k = partners[partner]
        out.append({
            "name": name, "partner": partner, "keyid": k["keyid"], "alg": k["alg"],
            "private_key": k["private_key"],
            "body": {"qr": qr, "amount": {"currency": cur, "value": value},
                     "payer": {"id": payer, "residency": residency, "country": country},
                     "payer_currency": payer_cur},
        })
    return out


# --- keys ----------------------------------------------------------------------------------------------
def write_key(folder: Path, keyid: str, alg: str) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    key = generate_key(alg)
    priv, pub = folder / f"{keyid}.pem", folder / f"{keyid}.pub.pem"
    priv.write_bytes(private_pem(key))
    priv.chmod(0o600)
    pub.write_bytes(public_pem(key))
    return {"keyid": keyid, "alg": alg, "private_key": str(priv), "public_key": str(pub)}


def partner_keys(folder: Path) -> dict[str, dict[str, Any]]:
    """Run-time keys of the three partners, same algorithms as the sandbox topology (floor-only)."""
    return {pid: write_key(folder, f"{pid}-bench-1", PARTNER_ALG[fam]) for pid, fam in FAMILY.items()}


def floor_key_files(folder: Path, partners: dict[str, dict[str, Any]]) -> tuple[Path, Path]:
    """Key files of the floor server (partners' public keys + responder's) and of its responder."""
    floor = write_key(folder, "floor-gw-1", "ed25519")
    responder = write_key(folder, "floor-responder-1", "ed25519")
    pub = [{"keyid": k["keyid"], "partner_id": pid, "alg": k["alg"], "public_key": k["public_key"]}
           for pid, k in partners.items()]
    pub.append({"keyid": responder["keyid"], "partner_id": "floor-responder", "alg": "ed25519",
                "public_key": responder["public_key"]})
    floor_file, responder_file = folder / "floor-keys.json", folder / "responder-keys.json"
    floor_file.write_text(json.dumps({"signer": floor, "public": pub}))
    responder_file.write_text(json.dumps({
        "signer": responder,
        "public": [{"keyid": floor["keyid"], "partner_id": "floor", "alg": "ed25519",
                    "public_key": floor["public_key"]}],
    }))
    return floor_file, responder_file


# --- processes -----------------------------------------------------------------------------------------
def start_floor(procs: Procs, workdir: Path, partners: dict[str, dict[str, Any]], workers: int) -> tuple[
        list[Proc], str]:
    """The trivial responder plus ``workers`` floor processes on one port; returns them and the URL."""
    floor_file, responder_file = floor_key_files(workdir / "floor-keys", partners)
    rport, port = free_port(), free_port()
    responder = procs.start("floor-responder", [PY, str(BENCH / "floor.py"), "respond", "--keys",
                                                str(responder_file), "--port", str(rport)])
    servers = [
        procs.start(f"floor-{i}", [PY, str(BENCH / "floor.py"), "serve", "--keys", str(floor_file), "--port",
                                   str(port), "--reuse-port", "--responder", f"http://127.0.0.1:{rport}"])
        for i in range(workers)
    ]
    every = [responder, *servers]
    wait_until(lambda: listening(responder.pid, rport) and all(listening(s.pid, port) for s in servers),
               30, "the floor servers", every)
    return every, f"http://127.0.0.1:{port}"


def start_sandboxes(procs: Procs, workdir: Path, *, store_url: str, hang_s: float = 30.0,
                    seed: int = 0) -> tuple[Proc, dict[str, Any]]:
    ready = workdir / "sandboxes.json"
    gw_port, control = free_port(), free_port()
    proc = procs.start("sandboxes", [
        PY, str(BENCH / "sandboxes.py"), "--dir", str(workdir / "sandbox"), "--store-url", store_url,
        "--gateway-port", str(gw_port), "--control-port", str(control), "--ready-file", str(ready),
        "--hang-s", str(hang_s), "--seed", str(seed)])
    doc = wait_file(ready, 60, [proc])
    doc["gateway_port"] = gw_port
    return proc, doc


def set_config(config: str, section: str, **values: Any) -> None:
    """Overwrite keys of one section of the run's gateway.toml (before the workers start)."""
    path = Path(config)
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    doc.setdefault(section, {}).update(values)
    path.write_text(dump_toml(doc), encoding="utf-8")


def start_worker(procs: Procs, config: str, port: int, name: str, env: dict[str, str] | None = None) -> Proc:
    return procs.start(name, [PY, "-m", "gateway.cli", "serve", "--config", config, "--port", str(port),
                              "--reuse-port"], env={**QUIET_GATEWAY, **(env or {})})


def wait_workers(workers: list[Proc], port: int, timeout: float = 60) -> None:
    wait_until(lambda: all(listening(w.pid, port) for w in workers), timeout, "gateway workers", workers)
    url = f"http://127.0.0.1:{port}/readyz"

    def ready() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, timeout, "gateway /readyz", workers)


def start_gateway(procs: Procs, config: str, port: int, workers: int,
                  env: dict[str, str] | None = None) -> list[Proc]:
    started = [start_worker(procs, config, port, f"gateway-{i}", env) for i in range(workers)]
    wait_workers(started, port)
    return started


def run_loadgen(procs: Procs, workdir: Path, tag: str, url: str, journeys: list[dict[str, Any]], *,
                concurrency: int, duration: float, rate: float = 0.0, timeout: float = 10.0,
                records: Path | None = None) -> tuple[Proc, Path]:
    """Start the load generator (its own process); ``finish_loadgen`` collects its result."""
    spec = workdir / f"spec-{tag}.json"
    # run_id prefixes every payment_request_id, which PROTOCOL.md §5 limits to [A-Za-z0-9_-]
    run_id = re.sub(r"[^A-Za-z0-9_-]", "-", tag) + str(int(time.time() * 1000) % 10**8)
    spec.write_text(json.dumps({"url": url, "run_id": run_id,
                                "journeys": journeys}))
    out = workdir / f"result-{tag}.json"
    argv = [PY, str(BENCH / "loadgen.py"), "--spec", str(spec), "--out", str(out), "--concurrency",
            str(concurrency), "--duration", str(duration), "--timeout", str(timeout)]
    if rate:
        argv += ["--rate", f"{rate:.3f}", "--max-inflight", str(max(64, concurrency * 8))]
    if records is not None:
        argv += ["--records", str(records)]
    return procs.start(f"loadgen-{tag}", argv), out


def finish_loadgen(proc: Proc, out: Path, timeout: float) -> dict[str, Any]:
    wait_until(lambda: proc.popen.poll() is not None, timeout, f"{proc.name} to finish")
    if proc.popen.returncode != 0 or not out.exists():
        raise RuntimeError(f"{proc.name} failed ({proc.popen.returncode}):\n{proc.tail()}")
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc
