"""``qrgw serve``: run the gateway with the configured store, partners and keys."""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path
from typing import Any

from gateway.config import ServerSettings, Settings, load_settings
from gateway.logging import configure_logging, get_logger
from schemas.errors import ConfigError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="run the gateway HTTP API",
        description="Run the gateway. Config: defaults, then --config FILE, then QRGW_* environment variables.",
    )
    p.add_argument("--config", type=Path, help="TOML file layered over config/gateway.toml")
    p.add_argument("--host", help="override server.host")
    p.add_argument("--port", type=int, help="override server.port")
    p.add_argument("--reuse-port", action="store_true", help="SO_REUSEPORT: several processes on one port")
    p.set_defaults(func=run)


def check_startup(settings: Settings) -> None:
    """Fail fast on what would otherwise fail at the first request."""
    for i, key in enumerate(settings.gateway.keys):
        if not key.private_key.is_file():
            raise ConfigError(f"gateway.keys[{i}].private_key: file {key.private_key} does not exist")
    for i, partner in enumerate(settings.partners):
        for j, pkey in enumerate(partner.keys):
            if isinstance(pkey.public_key, Path) and not pkey.public_key.is_file():
                raise ConfigError(f"partners[{i}].keys[{j}].public_key: file {pkey.public_key} does not exist")
        from adapters.endpoint import PartnerEndpoint
        from adapters.http import check_endpoint

        check_endpoint(PartnerEndpoint.from_settings(partner.model_dump(), sandbox=settings.server.sandbox))
    server_ssl_context(settings.server)


def server_ssl_context(server: ServerSettings) -> ssl.SSLContext | None:
    """TLS 1.2+ when ``tls_cert``/``tls_key`` are set; with ``client_ca``, partners must present
    a certificate that CA issued (mTLS)."""
    if server.tls_cert is None and server.tls_key is None:
        if server.client_ca is not None:
            raise ConfigError("server.client_ca: mTLS needs server.tls_cert and server.tls_key")
        return None
    if server.tls_cert is None or server.tls_key is None:
        raise ConfigError("server.tls_cert and server.tls_key go together")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(server.tls_cert, server.tls_key)
        if server.client_ca is not None:
            ctx.load_verify_locations(cafile=server.client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"server.tls_*: cannot load certificate or key: {exc}") from exc
    return ctx


def run(args: argparse.Namespace) -> int:
    from gateway.app import create_app
    from gateway.serving import run as serve

    overrides: dict[str, Any] = {}
    if args.host or args.port is not None:
        overrides["server"] = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = load_settings(args.config, **overrides)
    check_startup(settings)
    configure_logging(settings.logging.level, settings.logging.format)
    log = get_logger("gateway.serve")
    app = create_app(settings)
    log.info("starting", host=settings.server.host, port=settings.server.port, store=settings.store.url.split("@")[-1])
    if settings.server.public_url is None and settings.server.host in ("0.0.0.0", "::", ""):
        log.warning("public_url_unset", detail="requests must be signed for the address they reach; "
                    "set server.public_url to the URL partners call")
    # Graceful: stop accepting, let in-flight requests finish, then cleanup_ctx; hardened connections.
    serve(app, settings.server, ssl_context=server_ssl_context(settings.server), reuse_port=args.reuse_port)
    return 0
