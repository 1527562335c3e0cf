"""``qrgw keys generate | list | rotate | jwks``: key pairs, validity windows, rotation, the
public set (the runbook is docs/keys.md)."""

from __future__ import annotations

import argparse
import json
import os
import secrets
from datetime import UTC, datetime, timedelta
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
    lst = ksub.add_parser("list", help="every configured key with its validity window and days left")
    lst.add_argument("--config", type=Path, required=True, help="gateway config")
    lst.set_defaults(func=list_keys)
    r = ksub.add_parser(
        "rotate",
        help="add a new gateway key valid from --not-before and retire the current one after an overlap",
        description="Generate a key into --out, add it to --config with not_before, give the current key a "
        "not_after (not_before + overlap). Then SIGHUP every gateway: the new key is published at once and "
        "signs from not_before on; the old one stops at its not_after.",
    )
    r.add_argument("--config", type=Path, required=True, help="gateway config to update (a .bak copy is kept)")
    r.add_argument("--out", type=Path, required=True, help="directory for the new private key")
    r.add_argument("--alg", choices=ALGORITHMS, default="ed25519")
    r.add_argument("--keyid", help="key id (default: qrgw-<date>-<random>)")
    r.add_argument("--not-before", type=_when, help="RFC 3339 time the new key starts signing "
                   "(default: now + --publish-days)")
    r.add_argument("--publish-days", type=float, default=7.0,
                   help="days partners get to fetch the new public key before it signs (default 7)")
    r.add_argument("--overlap-days", type=float, default=7.0,
                   help="days the old key stays valid after the new one starts (default 7)")
    r.set_defaults(func=rotate_key)
    j = ksub.add_parser("jwks", help="print the gateway's public JWK Set (with nbf/exp windows)")
    j.add_argument("--config", type=Path, required=True, help="gateway config")
    j.set_defaults(func=print_jwks)


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


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def list_keys(args: argparse.Namespace) -> int:
    from gateway.config import load_settings
    from gateway.partnerkit.keytool import format_rows, key_rows

    print(format_rows(key_rows(load_settings(args.config))))
    return 0


def rotate_key(args: argparse.Namespace) -> int:
    from gateway.partnerkit.keytool import rotate

    not_before = args.not_before or datetime.now(UTC).replace(microsecond=0) + timedelta(days=args.publish_days)
    keyid, path = rotate(args.config, args.out, alg=args.alg, not_before=not_before,
                         overlap=timedelta(days=args.overlap_days), keyid=args.keyid)
    print(f"new key {keyid} ({args.alg}) in {path}; signs from {not_before.isoformat()}")
    print(f"{args.config} updated ({args.config}.bak kept). Now send SIGHUP to every gateway process:")
    print("the key is published at once and used from its not_before, with no restart.")
    return 0


def print_jwks(args: argparse.Namespace) -> int:
    from gateway.config import load_settings
    from gateway.partnerkit.keytool import jwks

    print(json.dumps(jwks(load_settings(args.config)), indent=2))
    return 0
