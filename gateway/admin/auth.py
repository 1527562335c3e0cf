"""Who is calling the admin API: ``Authorization: Bearer <token>`` (or the console's session
cookie), matched by SHA-256 against ``[[admin.operators]]``; roles rank viewer < operator < admin.

The token is never stored or logged: config holds its hash, the console's session blob holds the
hash of a random session id. Comparison is constant-time over every configured operator.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from gateway.config import OperatorSettings
from gateway.store.base import Store
from schemas.errors import OperatorForbidden, OperatorUnauthorized

Role = Literal["viewer", "operator", "admin"]
RANK: dict[str, int] = {"viewer": 0, "operator": 1, "admin": 2}
SESSION_COOKIE = "qrgw_console"
_SESSION_KEY = "admin:session:"  # + sha256(session id) -> {"name", "role"}


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    role: str
    via: str  # "token" | "session"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_token() -> str:
    """A fresh operator token (256 bits, URL-safe): shown once, only its hash is configured."""
    return "qrgw_op_" + secrets.token_urlsafe(32)


def match_token(token: str, operators: list[OperatorSettings]) -> Operator | None:
    digest = sha256_hex(token)
    found: Operator | None = None
    for op in operators:  # no early exit: the time taken does not say which entry matched
        if hmac.compare_digest(digest, op.token_sha256):
            found = Operator(op.name, op.role, "token")
    return found


async def open_session(store: Store, op: Operator, ttl_s: int) -> str:
    sid = secrets.token_urlsafe(32)
    await store.put_blob(_SESSION_KEY + sha256_hex(sid), json.dumps({"name": op.name, "role": op.role}).encode(),
                         ttl_s)
    return sid


async def close_session(store: Store, sid: str) -> None:
    await store.put_blob(_SESSION_KEY + sha256_hex(sid), b"{}", 1)  # blobs have no delete: expire it now


async def session_operator(store: Store, sid: str, operators: list[OperatorSettings]) -> Operator | None:
    raw = await store.get_blob(_SESSION_KEY + sha256_hex(sid))
    doc = json.loads(raw) if raw else {}
    # The operator must still be configured with that role: removing them from config ends sessions.
    if any(o.name == doc.get("name") and o.role == doc.get("role") for o in operators):
        return Operator(str(doc["name"]), str(doc["role"]), "session")
    return None


async def authenticate(request: web.Request, store: Store, operators: list[OperatorSettings]) -> Operator:
    """The caller, or OperatorUnauthorized (401)."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        op = match_token(token.strip(), operators) if scheme.lower() == "bearer" and token.strip() else None
        if op is None:
            raise OperatorUnauthorized("the bearer token matches no operator")
        return op
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        op = await session_operator(store, sid, operators)
        if op is not None:
            return op
    raise OperatorUnauthorized("send Authorization: Bearer <operator token>")


def require(op: Operator, role: Role) -> None:
    """OperatorForbidden (403) unless ``op``'s role ranks at least ``role``."""
    if RANK[op.role] < RANK[role]:
        raise OperatorForbidden(f"{role} role required; {op.name} is {op.role}", required=role)
