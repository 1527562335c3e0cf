"""The ``qrgw`` command line. Each sub-command lives in its own module with a
``register(subparsers)`` function; errors print one line to stderr and exit non-zero.

Start-up is lazy: only the module of the sub-command being run is imported (with whatever it
needs); the others appear in ``--help`` from the one-line summaries below, so ``qrgw version``
and ``qrgw --help`` load no framework at all.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> the summary --help shows; each module's register() uses the same line (a test checks).
COMMANDS: dict[str, str] = {
    "serve": "run the gateway HTTP API",
    "config": "check a configuration file without serving",
    "demo": "run the payment journeys end to end against the sandbox partners",
    "sandbox": "run the sandbox partners (qrgw, Alipay+, Kakao Pay families) on loopback",
    "qr": "decode, encode and render merchant QR codes",
    "keys": "manage signing keys",
    "fx": "exchange-rate quotes and FX policy",
    "settle": "settlement report, balance check, FX extract",
    "recon": "reconcile partner settlement files",
    "conformance": "test a partner server of the qrgw family; prints a pass/fail table",
    "call": "send a signed request to the gateway and verify its signed answer",
    "admin": "operator commands over the admin API (search, replay, pause ...)",
    "version": "print the version",
}


def _chosen(argv: Sequence[str]) -> str | None:
    """The sub-command named on the command line (the first word that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that sub-command's module is imported and registered."""
    parser = argparse.ArgumentParser(prog="qrgw", description="Cross-border QR payment interoperability gateway.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, summary in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=summary)  # listed in --help; never run (argv names another)
            continue
        try:
            module = importlib.import_module(f"gateway.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"gateway.cli.{name}":
                continue  # not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    chosen = _chosen(args_in)
    parser = build_parser(chosen if chosen in COMMANDS else "")
    args = parser.parse_args(args_in)
    from schemas.errors import QrgwError  # light, but only needed once a command runs

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
