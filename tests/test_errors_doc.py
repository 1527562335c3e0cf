"""Every stable error code in the tree is documented in docs/errors.md, and the tree is sound."""

from __future__ import annotations

import inspect
from pathlib import Path

import schemas.errors as errors

DOC = Path(__file__).resolve().parent.parent / "docs" / "errors.md"


def all_codes() -> set[str]:
    codes: set[str] = set()
    for _, cls in inspect.getmembers(errors, inspect.isclass):
        if issubclass(cls, errors.QrgwError):
            codes.add(cls.default_code)
            codes |= set(cls.codes)
    return codes


def test_every_code_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = sorted(code for code in all_codes() if f"`{code}`" not in text)
    assert missing == []


def test_codes_outside_a_class_list_are_refused() -> None:
    err = errors.QRError("bad", code="QR_CRC_MISMATCH", offset=3)
    assert (err.code, err.status, err.offset) == ("QR_CRC_MISMATCH", 422, 3)
    try:
        errors.QRError("bad", code="FX_LIMIT_EXCEEDED")
    except ValueError as exc:
        assert "QRError" in str(exc)
    else:  # pragma: no cover - the assertion below reports it
        raise AssertionError("a QRError accepted a foreign code")


def test_every_class_has_a_client_or_server_status() -> None:
    for _, cls in inspect.getmembers(errors, inspect.isclass):
        if issubclass(cls, errors.QrgwError):
            assert 400 <= cls.status <= 599, cls
