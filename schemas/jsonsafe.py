"""Bounded parsing of untrusted JSON: every body from outside goes through ``loads``.

``json.loads`` recurses once per nesting level (20,000 levels raise RecursionError) and
converts integer literals of any length (5,000 digits raise ValueError past the interpreter's
limit, and cost quadratic time below it). Both would surface as 500s, so:

- nesting deeper than ``MAX_DEPTH`` is refused *before* parsing. A typical body has fewer
  brackets than that and is not looked at further; otherwise, on the text with its string
  literals blanked out, innermost bracket pairs are removed ``MAX_DEPTH`` times (C-speed
  ``bytes.replace``): anything left that still nests, or more unmatched openers than the
  limit, is too deep;
- number literals longer than ``MAX_NUMBER_CHARS`` are refused *while* parsing, by the
  ``parse_int`` / ``parse_float`` hooks, before any conversion;
- ``NaN`` and ``Infinity`` (which Python accepts, JSON does not) are refused.
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
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_AS_SQUARE = bytes.maketrans(b"{}", b"[]")


def check_depth(raw: bytes, max_depth: int = MAX_DEPTH) -> None:
    """Raise ``InvalidJSON`` when ``raw`` nests deeper than ``max_depth`` (strings ignored)."""
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return
    brackets = _STRING.sub(b"", raw).translate(_AS_SQUARE, _NOT_BRACKETS)
    for _ in range(max_depth):
        shorter = brackets.replace(b"[]", b"")
        if shorter == brackets:
            break
        brackets = shorter
    if b"[]" in brackets or brackets.count(b"[") > max_depth:
        raise InvalidJSON(f"JSON nests deeper than {max_depth} levels")


def _number(convert: Any) -> Any:
    def parse(text: str) -> Any:
        if len(text) > MAX_NUMBER_CHARS:
            raise InvalidJSON(f"a number literal is longer than {MAX_NUMBER_CHARS} characters")
        return convert(text)

    return parse


def _constant(name: str) -> Any:
    raise InvalidJSON(f"{name} is not JSON")


_PARSE_INT, _PARSE_FLOAT = _number(int), _number(float)


def loads(raw: bytes | str) -> Any:
    """Parse untrusted UTF-8 JSON within the bounds above; any failure is ``InvalidJSON`` (400)."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    check_depth(data)
    try:
        text = data.decode("utf-8")
        return json.loads(text, parse_int=_PARSE_INT, parse_float=_PARSE_FLOAT, parse_constant=_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidJSON(f"body is not valid JSON: {exc}") from exc


def loads_object(raw: bytes | str) -> dict[str, Any]:
    """``loads`` that also requires a JSON object (every request body of the protocol is one)."""
    doc = loads(raw)
    if not isinstance(doc, dict):
        raise InvalidJSON(f"body must be a JSON object, not {type(doc).__name__}")
    return doc
