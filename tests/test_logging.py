"""Logging: JSON lines with the request id, and redaction of secrets and payer ids."""

from __future__ import annotations

import io
import json

import structlog

from gateway.logging import configure_logging, get_logger, mask_payer

# A PEM-shaped fake (not a key), assembled so that no private-key block stands in the repository.
_KIND = "PRIVATE" + " KEY"
PEM = f"-----BEGIN {_KIND}-----\nMC4CAQAwBQYDK2VwBCIEIA\n-----END {_KIND}-----"


def capture() -> io.StringIO:
    buf = io.StringIO()
    configure_logging("DEBUG", "json", stream=buf)
    return buf


def lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


def test_secrets_and_payer_ids_never_reach_the_log() -> None:
    buf = capture()
    get_logger("t").info(
        "call",
        private_key=PEM,
        headers={"Authorization": "SECRET_KEY abc123", "X-Other": "fine"},
        note=f"loaded {PEM}",
        payer_id="user-8812-3391",
        payer={"id": "user-8812-3391", "country": "KR"},
        secret_key="s3cr3t",
    )
    out = buf.getvalue()
    for leaked in ("MC4CAQAwBQYDK2VwBCIEIA", "abc123", "s3cr3t", "user-8812-3391"):
        assert leaked not in out
    (line,) = lines(buf)
    assert line["private_key"] == "[REDACTED]"
    assert line["headers"] == {"Authorization": "[REDACTED]", "X-Other": "fine"}
    assert line["payer_id"] == mask_payer("user-8812-3391")
    assert line["payer"] == {"id": mask_payer("user-8812-3391"), "country": "KR"}


def test_masked_payer_is_stable_and_distinct() -> None:
    assert mask_payer("alice") == mask_payer("alice")
    assert mask_payer("alice") != mask_payer("alicf")


def test_request_id_bound_in_context_is_on_every_line() -> None:
    buf = capture()
    with structlog.contextvars.bound_contextvars(request_id="req_123"):
        get_logger("t").info("one")
        get_logger("t").warning("two")
    get_logger("t").info("three")
    got = lines(buf)
    assert [line.get("request_id") for line in got] == ["req_123", "req_123", None]
