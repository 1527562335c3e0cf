"""Read what the gateway logs, as its JSON lines, and leave logging as it was afterwards."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

from gateway.logging import configure_logging


@contextmanager
def json_logs(level: str = "INFO") -> Iterator[io.StringIO]:
    """structlog and stdlib logging write JSON lines into the yielded buffer; both are restored after."""
    saved, root = structlog.get_config(), logging.getLogger()
    handlers, root_level = root.handlers[:], root.level
    buf = io.StringIO()
    configure_logging(level, "json", buf)
    try:
        yield buf
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(root_level)
