"""``qrgw serve``: run the gateway with the configured store, partners and keys."""

from __future__ import annotations

import argparse
import socket
import ssl
from pathlib import Path
from typing import Any

from gateway.cli import COMMANDS
from gateway.config import ServerSettings, Settings, load_settings
from gateway.logging import configure_logging, get_logger
from schemas.errors import ConfigError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help=COMMANDS["serve"],
        description="Run the gateway. Config: packaged defaults, then --config FILE, then QRGW_* environment "
        "variables. With [admin] enabled, /metrics is served on the operator listener (admin.host:admin.port).",
    )
    p.add_argument("--config", type=Path, help="TOML file layered over the packaged defaults (config/gateway.toml)")
    p.add_argument("--host", help="override server.host")
    p.add_argument("--port", type=int, help="override server.port")
    p.add_argument("--reuse-port", action="store_true", help="SO_REUSEPORT: several processes on one port")
    p.set_defaults(func=run)


def preflight(settings: Settings) -> None:
    """Everything ``serve`` checks before it listens (``qrgw config check`` runs exactly this)."""
    from fx.rates import build_rates
    from gateway.keys import registry_from_settings
    from gateway.obs.tracing import check_settings
    from gateway.store.memory import MemoryStore

    check_startup(settings)
    if not registry_from_settings(settings).signers:
        raise ConfigError("gateway.keys: at least one signing key is required (every response is signed)")
    build_rates(settings.fx, MemoryStore())  # the FX table file parses (an http source is polled later)
    check_settings(settings.tracing)
    if settings.admin.enabled and (settings.admin.host, settings.admin.port) == (
        settings.server.host, settings.server.port
    ):
        raise ConfigError("admin.port: the operator listener must not share the partner port")


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
    from gateway.loop import run as run_loop

    overrides: dict[str, Any] = {}
    if args.host or args.port is not None:
        overrides["server"] = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = load_settings(args.config, **overrides)
    preflight(settings)
    listeners = [(settings.server.host, settings.server.port, server_ssl_context(settings.server), "api")]
    if settings.admin.enabled:
        listeners.append((settings.admin.host, settings.admin.port, None, "admin"))
    # Bound before anything starts: a port in use is one line on stderr, not a traceback.
    socks = [_bind(host, port, name, reuse_port=bool(args.reuse_port)) for host, port, _, name in listeners]
    configure_logging(settings.logging.level, settings.logging.format)
    bound = [(sock, ctx, name) for sock, (*_, ctx, name) in zip(socks, listeners, strict=True)]
    return run_loop(_serve(settings, bound, (args.config, overrides)))  # uvloop where installed


def _bind(host: str, port: int, name: str, *, reuse_port: bool) -> socket.socket:
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart over TIME_WAIT sockets
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(addr)
        sock.listen(1024)
    except OSError as exc:
        raise ConfigError(f"{name} listener {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


async def _serve(
    settings: Settings,
    listeners: list[tuple[socket.socket, ssl.SSLContext | None, str]],
    source: tuple[Path | None, dict[str, Any]],
) -> int:
    """Partner API (+ operator listener) until SIGTERM/SIGINT; then stop accepting, let requests in
    flight finish (``shutdown_grace_s``) and close every resource (the apps' ``cleanup_ctx``).
    SIGHUP re-reads ``source`` (the config file and overrides): keys, partners, routing."""
    import asyncio
    import signal

    from aiohttp import web

    from gateway.app import create_app
    from gateway.obs.admin import create_admin_app
    from gateway.serving import GatewayRunner

    log = get_logger("gateway.serve")
    app = create_app(settings)
    from gateway.live import enable_reload

    enable_reload(app, *source)  # SIGHUP: keys, partners and routing, no restart (docs/keys.md)
    # The partner API through the hardened server (header/body deadlines, connection cap, signed parser errors).
    runners: list[web.AppRunner] = [
        GatewayRunner(app, settings.server, shutdown_timeout=settings.server.shutdown_grace_s)
    ]
    if settings.admin.enabled:
        runners.append(web.AppRunner(create_admin_app(app), access_log=None, shutdown_timeout=1.0))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("starting", version=_version(), store=settings.store.url.split("@")[-1])
    if settings.server.public_url is None and settings.server.host in ("0.0.0.0", "::", ""):
        log.warning("public_url_unset", detail="requests must be signed for the address they reach; "
                    "set server.public_url to the URL partners call")
    try:
        for runner in runners:
            await runner.setup()  # the gateway's opens the store, starts recovery and webhooks
        for runner, (sock, ctx, name) in zip(runners, listeners, strict=True):
            await web.SockSite(runner, sock, ssl_context=ctx).start()
            host, port = sock.getsockname()[:2]
            log.info("listening", listener=name, host=host, port=port, tls=ctx is not None)
        log.info("started")
        await stop.wait()
        log.info("stopping", grace_s=settings.server.shutdown_grace_s)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        log.info("stopped")
    return 0


def _version() -> str:
    import gateway

    return gateway.__version__
