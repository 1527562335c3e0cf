"""``qrgw version``."""

from __future__ import annotations

import argparse
from typing import Any

import gateway


def register(sub: Any) -> None:
    p = sub.add_parser("version", help="print the version", description="Print qrgw's version.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(f"qrgw {gateway.__version__}")
    return 0
