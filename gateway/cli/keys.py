"""``qrgw keys generate``: a new signing key pair on disk, its public JWK on stdout."""

from __future__ import annotations

import argparse
import json
import os
import secrets
from pathlib import Path
from typing import Any

from gateway.signing import ALGORITHMS, generate_key, private_pem, public_jwk, public_pem
from schemas.errors import ConfigError


def register(sub: Any) -> None:
    p = sub.add_parser("keys", help="manage signing keys", description="Manage signing keys.")
    ksub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    g = ksub.add_parser(
        "generate",
        help="generate a key pair",
        description="Write <keyid>.pem (private, mode 0600) and <keyid>.pub.pem into --out; "
        "print the public JWK.",
    )
    g.add_argument("--alg", choices=ALGORITHMS, default="ed25519")
    g.add_argument("--out", type=Path, required=True, help="directory for the key files (created if absent)")
    g.add_argument("--keyid", help="key id (default: qrgw-<alg>-<random>)")
    g.set_defaults(func=generate)


def generate(args: argparse.Namespace) -> int:
    keyid = args.keyid or f"qrgw-{args.alg.split('-')[0]}-{secrets.token_hex(4)}"
    if not keyid or "/" in keyid or keyid.startswith("."):
        raise ConfigError(f"--keyid {keyid!r}: must be a plain file name")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out / f"{keyid}.pem", out / f"{keyid}.pub.pem"
    if private_path.exists():
        raise ConfigError(f"{private_path}: exists; refusing to overwrite a key")
    key = generate_key(args.alg)
    # O_EXCL + 0600 from the start: the private key is never readable by others, even briefly.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_pem(key))
    public_path.write_bytes(public_pem(key))
    print(json.dumps(public_jwk(key, keyid, args.alg), indent=2))
    return 0
