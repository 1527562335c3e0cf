"""deploy/: every command, path, config key and metric the Dockerfile, compose.yaml, Prometheus
rules and Grafana dashboard name exists (Docker itself cannot run here)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli import COMMANDS, build_parser
from gateway.config import load_settings
from gateway.metrics import Metrics
from gateway.webhooks.worker import WebhookMetrics

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
METRIC = re.compile(r"\b((?:qrgw|process|python)_[a-z_]+)")


def served_families() -> set[str]:
    metrics = Metrics()
    WebhookMetrics.of(metrics.registry)
    text = metrics.render()[0].decode()
    names = {line.split()[2].removesuffix("_total") for line in text.splitlines() if line.startswith("# TYPE ")}
    return {n for n in names if not n.endswith("_created")}  # a counter's creation time, not a family


def named_metrics(text: str) -> set[str]:
    return {re.sub(r"_(total|bucket|count|sum)$", "", m) for m in METRIC.findall(text)}


def check_command(argv: list[str]) -> None:
    """``qrgw ARGV`` parses: the sub-command exists and takes every option named."""
    assert argv[0] in COMMANDS, argv
    build_parser(argv[0]).parse_args(argv)


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of deploy/Dockerfile, continuation lines joined."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_copies_what_exists_runs_qrgw_as_non_root_and_checks_health() -> None:
    steps = dockerfile()
    assert all("slim" in args for word, args in steps if word == "FROM")
    for word, args in steps:
        if word == "COPY" and not args.startswith("--from"):
            *sources, _dest = shlex.split(args)
            assert all((ROOT / s).exists() for s in sources), sources
    entry = json.loads(next(a for w, a in steps if w == "ENTRYPOINT"))
    cmd = json.loads(next(a for w, a in steps if w == "CMD"))
    assert entry == ["qrgw"]
    check_command(cmd)
    copied = {shlex.split(a)[-1]: shlex.split(a)[0] for w, a in steps if w == "COPY" and not a.startswith("--")}
    assert copied[cmd[cmd.index("--config") + 1]] == "deploy/gateway.toml"
    users = [a for w, a in steps if w == "USER"]
    assert users and users[-1] not in ("root", "0")
    health = next(a for w, a in steps if w == "HEALTHCHECK")
    assert "/healthz" in health and "8080" in health


def test_the_image_config_is_valid() -> None:
    settings = load_settings(DEPLOY / "gateway.toml")
    assert settings.admin.enabled and settings.admin.port != settings.server.port
    assert settings.store.url.startswith("redis://")


def qrgw_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in COMPOSE["services"].items() if s.get("image") == "qrgw:local"}


def test_compose_runs_two_workers_redis_with_aof_sandboxes_prometheus_and_grafana() -> None:
    services = COMPOSE["services"]
    assert {"redis", "sandbox", "prometheus", "grafana"} <= set(services)
    assert "--appendonly" in services["redis"]["command"]
    workers = [n for n, s in qrgw_services().items() if s["command"][0] == "serve"]
    assert len(workers) == 2
    for svc in qrgw_services().values():
        check_command(svc["command"])
    build = services["sandbox"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()


@pytest.mark.parametrize("worker", ["gateway-1", "gateway-2"])
def test_compose_environment_names_real_config_keys(worker: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = COMPOSE["services"][worker]["environment"]
    for key, value in env.items():
        assert key.startswith("QRGW_"), key
        monkeypatch.setenv(key, value)
    settings = load_settings(DEPLOY / "gateway.toml").model_dump()
    for key, value in env.items():
        node: Any = settings
        for part in key.removeprefix("QRGW_").lower().split("__"):
            assert part in node, key  # the key exists ...
            node = node[part]
        assert str(node).lower() == str(value).lower(), key  # ... and the value reached it


def test_compose_mounts_files_that_exist() -> None:
    for svc in COMPOSE["services"].values():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), source
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    mounted = {v.split(":")[1]: v.split(":")[0] for v in COMPOSE["services"]["prometheus"]["volumes"]}
    for rule_file in prometheus["rule_files"]:
        assert (DEPLOY / mounted[rule_file]).is_file(), rule_file


def test_alerts_and_dashboard_name_only_served_metrics() -> None:
    served = served_families()
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "qrgw.json").read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    named = set().union(*(named_metrics(e) for e in exprs))
    assert named and named <= served, named - served
    # and every qrgw family served is on the dashboard
    ours = {f for f in served if f.startswith("qrgw_")}
    assert ours <= named, ours - named
