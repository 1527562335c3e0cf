"""The part of RFC 8941 Structured Field Values that the signature profile needs.

Parses Dictionaries (``Signature-Input``, ``Signature``, ``Content-Digest``) strictly per
RFC 8941 §4.2 and serialises Inner Lists and Parameters canonically (§4.1). Hand-written with
compiled regexes at a moving position because it sits on every request's hot path; anything it
does not understand raises ``SFError`` (the caller maps that to its own error).
"""

from __future__ import annotations

import base64
import binascii
import re
from decimal import Decimal
from typing import TypeAlias

__all__ = [
    "BareItem",
    "Dictionary",
    "Item",
    "Member",
    "Params",
    "SFError",
    "Token",
    "parse_dictionary",
    "ser_bare",
    "ser_inner_list",
    "ser_params",
    "ser_string",
]


class SFError(ValueError):
    """The field value is not a valid Structured Field of the expected type."""


class Token(str):
    """An sf-token (distinct from an sf-string, which is a plain ``str``)."""

    __slots__ = ()


BareItem: TypeAlias = "int | Decimal | str | bytes | bool"
Params: TypeAlias = "dict[str, BareItem]"
Item: TypeAlias = "tuple[BareItem, Params]"
# A dictionary member: an Item's bare value or an Inner List (list of Items), with its parameters.
Member: TypeAlias = "tuple[BareItem | list[Item], Params]"
Dictionary: TypeAlias = "dict[str, Member]"

_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_NUMBER = re.compile(r"(-?)([0-9]+)(?:\.([0-9]*))?")
_STRING = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\\"])*)"')
_UNESCAPE = re.compile(r"\\([\\\"])")
_TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*")
_BYTES = re.compile(r":([A-Za-z0-9+/=]*):")
_BOOL = re.compile(r"\?([01])")
_OWS = re.compile(r"[ \t]*")
_SP = re.compile(r" *")
_STRING_OK = re.compile(r"[\x20-\x7e]*")


def _key(s: str, i: int) -> tuple[str, int]:
    m = _KEY.match(s, i)
    if m is None:
        raise SFError(f"expected a key at offset {i}")
    return m.group(), m.end()


def _bare(s: str, i: int) -> tuple[BareItem, int]:
    c = s[i : i + 1]
    if c == '"':
        m = _STRING.match(s, i)
        if m is None:
            raise SFError(f"bad string at offset {i}")
        raw = m.group(1)
        return (_UNESCAPE.sub(r"\1", raw) if "\\" in raw else raw), m.end()
    if c == ":":
        m = _BYTES.match(s, i)
        if m is None:
            raise SFError(f"bad byte sequence at offset {i}")
        try:
            return base64.b64decode(m.group(1), validate=True), m.end()
        except binascii.Error as exc:
            raise SFError(f"bad base64 at offset {i}") from exc
    if c == "-" or c.isdigit():
        m = _NUMBER.match(s, i)
        if m is None:
            raise SFError(f"bad number at offset {i}")
        sign, whole, frac = m.groups()
        if frac is None:
            if len(whole) > 15:
                raise SFError(f"integer too long at offset {i}")
            return int(sign + whole), m.end()
        if len(whole) > 12 or not 1 <= len(frac) <= 3:
            raise SFError(f"bad decimal at offset {i}")
        return Decimal(f"{sign}{whole}.{frac}"), m.end()
    if c == "?":
        m = _BOOL.match(s, i)
        if m is None:
            raise SFError(f"bad boolean at offset {i}")
        return m.group(1) == "1", m.end()
    m = _TOKEN.match(s, i)
    if m is None:
        raise SFError(f"unexpected character at offset {i}")
    return Token(m.group()), m.end()


def _params(s: str, i: int) -> tuple[Params, int]:
    params: Params = {}
    n = len(s)
    while i < n and s[i] == ";":
        i = _SP.match(s, i + 1).end()  # type: ignore[union-attr]
        name, i = _key(s, i)
        value: BareItem = True
        if i < n and s[i] == "=":
            value, i = _bare(s, i + 1)
        params[name] = value  # a repeated key overwrites (RFC 8941 §4.2.3.2)
    return params, i


def _inner_list(s: str, i: int) -> tuple[list[Item], Params, int]:
    items: list[Item] = []
    i += 1  # "("
    n = len(s)
    while True:
        i = _SP.match(s, i).end()  # type: ignore[union-attr]
        if i >= n:
            raise SFError("unterminated inner list")
        if s[i] == ")":
            params, i = _params(s, i + 1)
            return items, params, i
        value, i = _bare(s, i)
        iparams, i = _params(s, i)
        items.append((value, iparams))
        if i >= n or s[i] not in " )":
            raise SFError(f"expected space or ')' at offset {i}")


def parse_dictionary(text: str) -> Dictionary:
    """Parse an sf-dictionary (RFC 8941 §4.2.2); later duplicates overwrite earlier ones."""
    s = text.strip(" ")
    out: Dictionary = {}
    n = len(s)
    i = 0
    while i < n:
        name, i = _key(s, i)
        if i < n and s[i] == "=":
            i += 1
            if i < n and s[i] == "(":
                items, params, i = _inner_list(s, i)
                out[name] = (items, params)
            else:
                value, i = _bare(s, i)
                params, i = _params(s, i)
                out[name] = (value, params)
        else:
            params, i = _params(s, i)
            out[name] = (True, params)
        i = _OWS.match(s, i).end()  # type: ignore[union-attr]
        if i >= n:
            return out
        if s[i] != ",":
            raise SFError(f"expected ',' at offset {i}")
        i = _OWS.match(s, i + 1).end()  # type: ignore[union-attr]
        if i >= n:
            raise SFError("trailing comma")
    return out


# --- serialisation ---------------------------------------------------------------------------------
def ser_string(value: str) -> str:
    if _STRING_OK.fullmatch(value) is None:
        raise SFError("sf-string must be printable ASCII")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ser_bare(value: BareItem) -> str:
    if value is True:
        return "?1"
    if value is False:
        return "?0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Token):
        return str.__str__(value)
    if isinstance(value, str):
        return ser_string(value)
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    if isinstance(value, Decimal):
        text = format(value.quantize(Decimal("0.001")).normalize(), "f")
        return text if "." in text else text + ".0"
    raise SFError(f"cannot serialise {type(value).__name__}")


def ser_params(params: Params) -> str:
    return "".join(f";{k}" if v is True else f";{k}={ser_bare(v)}" for k, v in params.items())


def ser_inner_list(items: list[Item], params: Params) -> str:
    inner = " ".join(ser_bare(v) + (ser_params(p) if p else "") for v, p in items)
    return f"({inner}){ser_params(params)}"
