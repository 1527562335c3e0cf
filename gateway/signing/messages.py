"""PROTOCOL.md §2: the ``qrgw`` profile of RFC 9421 HTTP Message Signatures + RFC 9530 Content-Digest:
constants, shared helpers and signing (verification is in ``gateway.signing.verify``).

Signing writes the signature base directly from the fixed component lists (no generic
component resolver): the profile allows exactly one list per message kind, so the verifier
compares the received list with the expected one and rebuilds the base from raw values as
received (raw path and query, header values trimmed, never a re-serialised body).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Protocol

from gateway.signing import sf
from gateway.signing.keys import PublicKeyEntry, Signer
from schemas.errors import (
    SignatureInvalid,
)

LABEL = "qrgw"
TAG = "qrgw-v1"
MAX_VALIDITY_S = 300
MAX_FUTURE_SKEW_S = 60
REQ_BODY_COMPONENTS = '("@method" "@authority" "@path" "@query" "content-digest" "content-type")'
REQ_COMPONENTS = '("@method" "@authority" "@path" "@query")'
RESP_COMPONENTS = (
    '("@status" "content-digest" "content-type" "@method";req "@path";req "signature";req;key="qrgw")'
)
# Used only to sign an error answer to a request that carried no usable qrgw signature to bind.
RESP_UNBOUND_COMPONENTS = '("@status" "content-digest" "content-type" "@method";req "@path";req)'
_PARAMS = frozenset({"created", "expires", "nonce", "keyid", "alg", "tag"})
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_DEFAULT_PORT = {"http": "80", "https": "443"}
_CANONICAL = {n.lower(): n for n in ("Signature", "Signature-Input", "Content-Digest", "Content-Type")}


class NonceStore(Protocol):
    async def remember_nonce(self, keyid: str, nonce: str, ttl_s: int) -> bool: ...


@dataclass(frozen=True)
class Verified:
    partner_id: str
    keyid: str
    signature: str  # the raw Signature header value, as received


@dataclass(frozen=True)
class Checked:
    """A request whose signature verified; the nonce is not yet remembered."""

    entry: PublicKeyEntry
    nonce: str
    expires: int
    signature: str


# --- helpers ---------------------------------------------------------------------------------------
def content_digest(body: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii") + ":"


def split_url(url: str) -> tuple[str, str, str]:
    """``(authority, path, query)`` of an absolute URL, as sent: authority lower-cased without a
    default port, path ``/`` when empty, query with its ``?`` (``?`` alone when absent)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise SignatureInvalid("URL must be absolute")
    cut = len(rest)
    for ch in "/?#":
        pos = rest.find(ch)
        if 0 <= pos < cut:
            cut = pos
    authority = rest[:cut].rpartition("@")[2].lower()
    target = rest[cut:].partition("#")[0]
    path, _q, query = target.partition("?")
    return normalize_authority(authority, scheme.lower()), path or "/", "?" + query


def normalize_authority(authority: str, scheme: str) -> str:
    host, colon, port = authority.lower().rpartition(":")
    if colon and "]" not in port and port == _DEFAULT_PORT.get(scheme):
        return host
    return authority.lower()


def _get(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive field value; several field lines are combined with ", " (RFC 9421 §2.1)."""
    getall = getattr(headers, "getall", None)  # aiohttp CIMultiDict
    if getall is not None:
        values = getall(name, None)
        return ", ".join(v.strip() for v in values) if values else None
    get_list = getattr(headers, "get_list", None)  # httpx.Headers
    if get_list is not None:
        values = get_list(name)
        return ", ".join(v.strip() for v in values) if values else None
    value = headers.get(name)
    if value is None:
        value = headers.get(_CANONICAL.get(name, name))
        if value is not None:
            return value.strip()
        for k, v in headers.items():
            if k.lower() == name:
                return v.strip()
        return None
    return value.strip()


def _params(signer: Signer, created: int, expires: int, nonce: str) -> str:
    return (
        f';created={created};expires={expires};nonce="{nonce}";keyid={signer.keyid_sf}'
        f';alg="{signer.alg}";tag="{TAG}"'
    )


def _sign_into(headers: MutableMapping[str, str], signer: Signer, lines: str, sig_params: str) -> None:
    base = lines + '"@signature-params": ' + sig_params
    sig = signer.sign(base.encode("ascii"))
    headers["Signature-Input"] = "qrgw=" + sig_params
    headers["Signature"] = "qrgw=:" + base64.b64encode(sig).decode("ascii") + ":"


def _nonce(nonce: str | None) -> str:
    if nonce is None:
        return secrets.token_urlsafe(18)  # 24 characters of [A-Za-z0-9_-]
    if _NONCE.fullmatch(nonce) is None:
        raise ValueError("nonce must be 16-64 characters of [A-Za-z0-9_-]")
    return nonce


# --- signing ---------------------------------------------------------------------------------------
def sign_request(
    signer: Signer,
    *,
    method: str,
    url: str,
    headers: MutableMapping[str, str],
    body: bytes | None,
    created: int | None = None,
    nonce: str | None = None,
    expires_in: int = MAX_VALIDITY_S,
) -> None:
    """Add ``Content-Digest`` (when there is a body), ``Signature-Input`` and ``Signature``.

    A body without a ``Content-Type`` gets ``application/json`` (PROTOCOL.md §2)."""
    authority, path, query = split_url(url)
    created = int(time.time()) if created is None else created
    params = _params(signer, created, created + expires_in, _nonce(nonce))
    lines = f'"@method": {method}\n"@authority": {authority}\n"@path": {path}\n"@query": {query}\n'
    if body:
        digest = content_digest(body)
        headers["Content-Digest"] = digest
        ctype = _get(headers, "content-type")
        if ctype is None:
            ctype = headers["Content-Type"] = "application/json"
        lines += f'"content-digest": {digest}\n"content-type": {ctype}\n'
        _sign_into(headers, signer, lines, REQ_BODY_COMPONENTS + params)
    else:
        _sign_into(headers, signer, lines, REQ_COMPONENTS + params)


def _request_sig_member(req_signature: str) -> str | None:
    """The serialised ``qrgw`` member of a request's Signature field, or None if unusable."""
    try:
        member = sf.parse_dictionary(req_signature).get(LABEL)
    except sf.SFError:
        return None
    if member is None or not isinstance(member[0], bytes):
        return None
    return sf.ser_bare(member[0]) + sf.ser_params(member[1])


def sign_response(
    signer: Signer,
    *,
    status: int,
    headers: MutableMapping[str, str],
    body: bytes,
    req_method: str,
    req_path: str,
    req_signature: str,
    created: int | None = None,
    nonce: str | None = None,
    expires_in: int = MAX_VALIDITY_S,
) -> None:
    """Sign a response, bound to its request's method, path and ``qrgw`` signature.

    When the request carried no usable ``qrgw`` signature (only possible for an error answer),
    the ``"signature";req`` component is left out: there is nothing to bind."""
    created = int(time.time()) if created is None else created
    params = _params(signer, created, created + expires_in, _nonce(nonce))
    digest = headers["Content-Digest"] = content_digest(body)
    ctype = _get(headers, "content-type")
    if ctype is None:
        ctype = headers["Content-Type"] = "application/octet-stream"
    lines = (
        f'"@status": {status}\n"content-digest": {digest}\n"content-type": {ctype}\n'
        f'"@method";req: {req_method}\n"@path";req: {req_path}\n'
    )
    member = _request_sig_member(req_signature)
    if member is None:
        _sign_into(headers, signer, lines, RESP_UNBOUND_COMPONENTS + params)
    else:
        lines += f'"signature";req;key="qrgw": {member}\n'
        _sign_into(headers, signer, lines, RESP_COMPONENTS + params)
