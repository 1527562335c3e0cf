"""Bounded parsing of untrusted JSON: every body from outside goes through ``loads``.

``json.loads`` recurses once per nesting level (20,000 levels raise RecursionError) and
converts integer literals of any length (5,000 digits raise ValueError past the interpreter's
limit, and cost quadratic time below it). Both would surface as 500s, so the shape is checked
*before* parsing: a linear scan, on the text with its string literals blanked out, for nesting
deeper than ``MAX_DEPTH`` and number literals longer than ``MAX_NUMBER_CHARS``. ``NaN`` and
``Infinity`` (which Python accepts, JSON does not) are refused too.
"""

from __future__ import annotations

import json
import re
from typing import Any

from schemas.errors import InvalidJSON

MAX_DEPTH = 32  # our deepest legitimate body nests 3 levels
MAX_NUMBER_CHARS = 40  # amounts travel as strings; no number we accept needs more
# Possessive quantifiers: linear even on an unterminated string or a run of backslashes.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.S)
_LONG_NUMBER = re.compile(rb"[-+0-9.eE]{%d,}" % (MAX_NUMBER_CHARS + 1))
_BRACKETS = re.compile(rb"[\[\]{}]")


def _constant(name: str) -> Any:
    raise InvalidJSON(f"{name} is not JSON")


def check_shape(raw: bytes, *, max_depth: int = MAX_DEPTH, max_number: int = MAX_NUMBER_CHARS) -> None:
    """Raise ``InvalidJSON`` when ``raw`` nests deeper than ``max_depth`` or has a number literal
    longer than ``max_number`` characters (string contents are ignored)."""
    bare = _STRING.sub(b'""', raw)
    pattern = _LONG_NUMBER if max_number == MAX_NUMBER_CHARS else re.compile(rb"[-+0-9.eE]{%d,}" % (max_number + 1))
    if pattern.search(bare):
        raise InvalidJSON(f"a number literal is longer than {max_number} characters")
    depth = 0
    for m in _BRACKETS.finditer(bare):
        if m.group() in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                raise InvalidJSON(f"JSON nests deeper than {max_depth} levels")
        else:
            depth -= 1  # unbalanced text is left for the parser to name


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH, max_number: int = MAX_NUMBER_CHARS) -> Any:
    """Parse untrusted UTF-8 JSON within the bounds above; any failure is ``InvalidJSON`` (400)."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    check_shape(data, max_depth=max_depth, max_number=max_number)
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidJSON(f"body is not valid JSON: {exc}") from exc


def loads_object(raw: bytes | str) -> dict[str, Any]:
    """``loads`` that also requires a JSON object (every request body of the protocol is one)."""
    doc = loads(raw)
    if not isinstance(doc, dict):
        raise InvalidJSON(f"body must be a JSON object, not {type(doc).__name__}")
    return doc
