"""``qrgw call``: a signed request to the gateway from the shell, like ``curl`` plus signatures.

Signs as a partner (key from a client config), sends, verifies the gateway's signed answer and
prints it. Exit 0 on a verified 2xx, 1 on a verified error answer, 3 when the answer's
signature is rejected (the body is still shown, marked unverified). The public endpoints
(``/.well-known/jwks.json``, ``/openapi.json``, health) answer unsigned: shown as such.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "call",
        help="send a signed request to the gateway and verify its signed answer",
        description="Sign METHOD PATH [BODY|@file|@-] as a partner, send it, verify and print the answer.",
    )
    p.add_argument("method", metavar="METHOD")
    p.add_argument("path", metavar="PATH", help="e.g. /v1/payments/pay_123 (query included)")
    p.add_argument("body", metavar="BODY", nargs="?", help="JSON text, @file or @- (stdin)")
    p.add_argument("--as", dest="partner", metavar="PARTNER", help="partner id in the client config")
    p.add_argument("--config", type=Path, default=Path(os.environ.get("QRGW_CLIENT_CONFIG", "qrgw-client.toml")),
                   help="client config (default $QRGW_CLIENT_CONFIG or ./qrgw-client.toml)")
    p.add_argument("-v", "--verbose", action="store_true", help="show the signature base and all headers")
    p.set_defaults(func=run)


def _body(arg: str | None) -> bytes | None:
    from schemas.errors import ConfigError

    if arg is None:
        return None
    if arg == "@-":
        return sys.stdin.buffer.read()
    if arg.startswith("@"):
        try:
            return Path(arg[1:]).read_bytes()
        except OSError as exc:
            raise ConfigError(f"{arg[1:]}: cannot read body: {exc.strerror}") from exc
    return arg.encode()


def run(args: argparse.Namespace) -> int:
    from gateway.partnerkit.client import call, load_client_config
    from gateway.partnerkit.wire import signature_base
    from gateway.signing import UNSIGNED_PATHS
    from gateway.signing.messages import split_url

    cfg = load_client_config(args.config)
    ex = asyncio.run(call(cfg, args.partner, args.method, args.path, _body(args.body)))
    if args.verbose:
        print(f"> {ex.method} {ex.url}", file=sys.stderr)
        for k, v in ex.request_headers.items():
            print(f"> {k}: {v}", file=sys.stderr)
        print("> signature base:\n" + signature_base(ex.method, ex.url, ex.request_headers), file=sys.stderr)
        print(f"< HTTP {ex.status}", file=sys.stderr)
        for k, v in ex.headers.items():
            print(f"< {k}: {v}", file=sys.stderr)
    # The few public endpoints (JWKS, OpenAPI, health: PROTOCOL.md §2) answer unsigned by design.
    public = split_url(ex.url)[1] in UNSIGNED_PATHS and "signature" not in {k.lower() for k in ex.headers}
    verdict = ("verified (" + str(ex.signer_partner) + ")" if ex.signed_ok
               else "none (public endpoint)" if public else "REJECTED: " + ex.verdict)
    print(f"< signature: {verdict}", file=sys.stderr)
    doc = ex.json()
    print(json.dumps(doc, indent=2, ensure_ascii=False) if doc is not None else ex.body.decode("utf-8", "replace"))
    if not ex.signed_ok and not public:
        return 3
    return 0 if 200 <= ex.status < 300 else 1
