"""The ``qrgw`` command line. Each sub-command lives in its own module with a
``register(subparsers)`` function; errors print one line to stderr and exit non-zero."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from schemas.errors import QrgwError

COMMANDS = ("serve", "demo", "sandbox", "qr", "keys", "fx", "settle", "version")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qrgw", description="Cross-border QR payment interoperability gateway.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"gateway.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"gateway.cli.{name}":
                continue  # not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except QrgwError as exc:
        print(f"qrgw {args.command}: {exc.code}: {exc.detail}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
