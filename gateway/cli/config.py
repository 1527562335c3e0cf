"""``qrgw config check --config FILE``: everything ``qrgw serve`` validates before it listens
(settings, key files, partner endpoints and TLS, the FX table, listeners, tracing), without serving."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gateway.cli import COMMANDS


def register(sub: Any) -> None:
    p = sub.add_parser("config", help=COMMANDS["config"], description=__doc__)
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    c = csub.add_parser("check", help="validate a configuration as `qrgw serve` would, then exit")
    c.add_argument("--config", type=Path, help="TOML file layered over the packaged defaults")
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gateway.cli.serve import preflight
    from gateway.config import load_settings

    settings = load_settings(args.config)
    preflight(settings)
    admin = settings.admin
    print(
        f"config OK: {len(settings.partners)} partners, {len(settings.gateway.keys)} signing keys, "
        f"store {settings.store.url.split('@')[-1]}, listening on {settings.server.host}:{settings.server.port}"
        + (f", admin on {admin.host}:{admin.port}" if admin.enabled else ", admin listener off")
    )
    return 0
