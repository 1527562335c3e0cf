"""structlog set-up: JSON lines in production, a readable console on a terminal; stdlib logging
(libraries, aiohttp, ``fx.rates``) goes through the same processors, so the stream is all JSON.

Every line of a request carries ``request_id`` (bound in a contextvar by the request-id
middleware). ``redact`` keeps private keys, secrets, signatures and full payer ids out of
every line, whatever the caller passed.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

SECRET_KEYS = frozenset(
    {"private_key", "secret", "secret_key", "authorization", "password", "token", "signature", "api_key", "key_pem"}
)
PAYER_KEYS = frozenset({"payer_id", "partner_user_id", "customer_id", "user_id"})
# travel-rule data (docs/fx.md): masked like payer ids wherever they appear, nested ones included
TRAVEL_KEYS = frozenset({"payer_name", "account", "address", "date_of_birth", "national_id_hash", "national_id"})
_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S)
_SECRET_HEADER = re.compile(r"(SECRET_KEY|Bearer)\s+\S+", re.I)


def mask_payer(value: str) -> str:
    """A stable, non-reversible handle of a payer id: enough to correlate lines, not to identify."""
    digest = hashlib.sha256(value.encode()).hexdigest()[:10]
    return f"{value[:2]}…{digest}" if len(value) > 2 else f"…{digest}"


def _scrub(key: str, value: Any) -> Any:
    lowered = key.lower()
    if lowered in SECRET_KEYS or lowered.endswith(("_secret", "_private_key", "_token")):
        return "[REDACTED]"
    if lowered in PAYER_KEYS | TRAVEL_KEYS and value is not None and not isinstance(value, dict | list | tuple):
        return mask_payer(str(value))
    if isinstance(value, str):
        value = _PEM.sub("[REDACTED PRIVATE KEY]", value)
        return _SECRET_HEADER.sub(lambda m: f"{m.group(1)} [REDACTED]", value)
    if isinstance(value, dict):
        if lowered == "payer":  # a payer's id and name identify it, wherever the payer is nested
            value = {k: mask_payer(str(v)) if k in ("id", "name") and v is not None else v for k, v in value.items()}
        return {k: _scrub(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(key, v) for v in value]
    return value


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: scrub secrets and payer ids from every key, nested ones included."""
    for key in list(event_dict):
        event_dict[key] = _scrub(key, event_dict[key])
    return event_dict


class _Stderr:
    """``sys.stderr`` looked up at each write: whoever replaces it later (a test runner's capture,
    a daemon redirect) gets the lines, and a stream closed meanwhile is never written to."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(level: str = "INFO", fmt: str = "auto", stream: Any = None) -> None:
    """Configure structlog, and stdlib logging through the same processors, once per process:
    every line — ours, aiohttp's, asyncio's, a library's — is JSON off a terminal, redacted, and
    carries the request's ``request_id``/``trace_id`` when logged inside one."""
    if stream is None or stream is sys.stderr:  # the process's stderr, whatever it will be at each write
        stream = _Stderr()
    use_console = fmt == "console" or (fmt == "auto" and hasattr(stream, "isatty") and stream.isatty())
    renderer: Any = structlog.dev.ConsoleRenderer(colors=False) if use_console else structlog.processors.JSONRenderer()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, redact, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(logging.WARNING, logging.getLevelNamesMapping()[level]))


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
