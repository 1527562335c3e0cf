"""Shared helpers of the codec: CRC, errors, fast model construction, ISO 4217 table."""

from __future__ import annotations

import binascii
from typing import Any, TypeVar

from iso4217 import Currency
from pydantic import BaseModel

from schemas.errors import QRError

M = TypeVar("M", bound=BaseModel)

# "00".."99" -> 0..99: one dict lookup checks two ASCII digits and converts them (no regex per TLV).
NUM2: dict[str, int] = {f"{i:02d}": i for i in range(100)}
NUM3: dict[str, int] = {f"{i:03d}": i for i in range(1000)}
# "TTLL" (2-digit id + 2-digit length) -> length: one lookup checks a whole data-object header.
HEAD: dict[str, int] = {f"{t:02d}{n:02d}": n for t in range(100) for n in range(100)}

# ISO 4217 numeric (as printed in tag 53) -> (alpha-3, exponent); funds/metals without an
# exponent count as 0 minor digits.
CURRENCIES: dict[str, tuple[str, int]] = {
    f"{int(c.number):03d}": (c.code, c.exponent or 0) for c in Currency if c.number is not None
}


def crc16(data: str) -> str:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of the UTF-8 bytes, four upper-case hex digits."""
    return f"{binascii.crc_hqx(data.encode('utf-8'), 0xFFFF):04X}"


def fail(code: str, detail: str, offset: int, tag_path: str | None = None) -> QRError:
    extra: dict[str, Any] = {"offset": offset}
    if tag_path is not None:
        extra["tag_path"] = tag_path
    return QRError(detail, code=code, **extra)


def build(cls: type[M], values: dict[str, Any]) -> M:
    """A model from values the codec has already validated: ``values`` must name every field.

    ``model_construct`` re-walks defaults and costs several microseconds per model; this sets
    the same four slots directly. Tests check that a validated copy compares equal.
    """
    obj = _new(cls)
    _set(obj, "__dict__", values)
    _set(obj, "__pydantic_fields_set__", set(values))
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


_new = object.__new__
_set = object.__setattr__
