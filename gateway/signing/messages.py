"""PROTOCOL.md §2: the ``qrgw`` profile of RFC 9421 HTTP Message Signatures + RFC 9530 Content-Digest.

Signing writes the signature base directly from the fixed component lists (no generic
component resolver): the profile allows exactly one list per message kind, so the verifier
compares the received list with the expected one and rebuilds the base from raw values as
received (raw path and query, header values trimmed, never a re-serialised body).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Protocol

from gateway.signing import sf
from gateway.signing.keys import KeyRegistry, PublicKeyEntry, Signer
from schemas.errors import (
    DigestMismatch,
    SignatureExpired,
    SignatureInvalid,
    SignatureMissing,
    SignatureReplayed,
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
_FAST_DIGEST = re.compile(r"sha-256=:([A-Za-z0-9+/]{43}=):")


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


def _ascii_line(value: str, name: str) -> str:
    if not value.isascii() or "\n" in value or "\r" in value:
        raise SignatureInvalid(f"{name} must be ASCII without line breaks")
    return value


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


# --- verification ----------------------------------------------------------------------------------
# Fast path for the canonical form every conforming signer emits: one qrgw member whose
# parameters are plain integers/strings without escapes, so the raw text IS its RFC 8941
# re-serialisation. Anything else (other labels, escapes, odd spacing) takes the general parser.
_FAST_INPUT = re.compile(
    r'qrgw=(\([^()]*\))((?:;[a-z*][a-z0-9_\-.*]*=(?:0|[1-9][0-9]{0,14}|"[\x20\x21\x23-\x5b\x5d-\x7e]*"))+)'
)
_FAST_PARAM = re.compile(r';([a-z*][a-z0-9_\-.*]*)=(?:([0-9]+)|"([^"]*)")')
_FAST_COMPONENTS = frozenset({REQ_BODY_COMPONENTS, REQ_COMPONENTS, RESP_COMPONENTS, RESP_UNBOUND_COMPONENTS})
_FAST_SIG = re.compile(r"qrgw=:([A-Za-z0-9+/]*={0,2}):")


def _parse_signature(headers: Mapping[str, str]) -> tuple[str, str, sf.Params, str, bytes]:
    """(raw Signature value, serialised covered components, parameters, serialised parameters,
    signature bytes) of the label ``qrgw``."""
    raw_input = _get(headers, "signature-input")
    raw_sig = _get(headers, "signature")
    if not raw_input or not raw_sig:
        raise SignatureMissing("Signature-Input and Signature are required")
    fast_in, fast_sig = _FAST_INPUT.fullmatch(raw_input), _FAST_SIG.fullmatch(raw_sig)
    if fast_in is not None and fast_sig is not None and fast_in.group(1) in _FAST_COMPONENTS:
        found = _FAST_PARAM.findall(fast_in.group(2))
        params: sf.Params = {k: (int(i) if i else v) for k, i, v in found}
        if len(params) == len(found):  # no repeated key, so the raw text is canonical
            try:
                sig = base64.b64decode(fast_sig.group(1), validate=True)
            except ValueError as exc:
                raise SignatureMissing("malformed signature field: bad base64") from exc
            return raw_sig, fast_in.group(1), params, fast_in.group(2), sig
    try:
        inputs = sf.parse_dictionary(raw_input)
        sigs = sf.parse_dictionary(raw_sig)
    except sf.SFError as exc:
        raise SignatureMissing(f"malformed signature field: {exc}") from exc
    member, sig_member = inputs.get(LABEL), sigs.get(LABEL)
    if member is None or sig_member is None:
        raise SignatureInvalid("no signature labelled 'qrgw'")
    items, params = member
    if not isinstance(items, list) or not isinstance(sig_member[0], bytes) or sig_member[1]:
        raise SignatureMissing("Signature-Input member must be an inner list, Signature a byte sequence")
    return raw_sig, sf.ser_inner_list(items, {}), params, sf.ser_params(params), sig_member[0]


def _profile(params: sf.Params, now: float) -> tuple[int, int, str, str, str]:
    """Check the profile's parameters; return (created, expires, nonce, keyid, alg)."""
    if params.keys() != _PARAMS:
        missing = sorted(_PARAMS - params.keys()) or sorted(params.keys() - _PARAMS)
        raise SignatureInvalid(f"signature parameters must be exactly {sorted(_PARAMS)}; check {missing}")
    created, expires = params["created"], params["expires"]
    nonce, keyid, alg, tag = params["nonce"], params["keyid"], params["alg"], params["tag"]
    if type(created) is not int or type(expires) is not int:
        raise SignatureInvalid("created and expires must be integers")
    if not isinstance(nonce, str) or isinstance(nonce, sf.Token) or _NONCE.fullmatch(nonce) is None:
        raise SignatureInvalid("nonce must be a string of 16-64 characters of [A-Za-z0-9_-]")
    if not isinstance(keyid, str) or not isinstance(alg, str) or isinstance(keyid, sf.Token):
        raise SignatureInvalid("keyid and alg must be strings")
    if tag != TAG or isinstance(tag, sf.Token):
        raise SignatureInvalid(f'tag must be "{TAG}"')
    if expires < created or expires - created > MAX_VALIDITY_S:
        raise SignatureExpired(f"expires must be within {MAX_VALIDITY_S} s after created")
    if now > expires:
        raise SignatureExpired("signature expired")
    if created > now + MAX_FUTURE_SKEW_S:
        raise SignatureExpired(f"created is more than {MAX_FUTURE_SKEW_S} s in the future")
    return created, expires, nonce, keyid, alg


def _check_digest(raw: str, body: bytes) -> None:
    fast = _FAST_DIGEST.fullmatch(raw)
    if fast is not None:
        expected = base64.b64decode(fast.group(1))
    else:
        try:
            member = sf.parse_dictionary(raw).get("sha-256")
        except sf.SFError as exc:
            raise DigestMismatch("Content-Digest is malformed") from exc
        if member is None or not isinstance(member[0], bytes):
            raise DigestMismatch("Content-Digest needs a sha-256 byte sequence")
        expected = member[0]
    if not hmac.compare_digest(expected, hashlib.sha256(body).digest()):
        raise DigestMismatch("Content-Digest does not match the body")


def _verify_base(entry: PublicKeyEntry, alg: str, lines: str, sig_params: str, sig: bytes) -> None:
    if alg != entry.alg:
        raise SignatureInvalid("alg does not match the key's algorithm")
    base = lines + '"@signature-params": ' + sig_params
    if not base.isascii() or not entry.verify(sig, base.encode("ascii")):
        raise SignatureInvalid("signature does not verify")


def check_request(
    registry: KeyRegistry,
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
) -> Checked:
    """Everything of ``verify_request`` except remembering the nonce (pure, synchronous)."""
    now = time.time() if now is None else now
    raw_sig, covered, params, params_text, sig = _parse_signature(headers)
    with_body = covered == REQ_BODY_COMPONENTS
    if not with_body and (body or covered != REQ_COMPONENTS):
        raise SignatureInvalid(
            f"covered components must be {REQ_BODY_COMPONENTS if body else REQ_COMPONENTS} in this order"
        )
    _created, expires, nonce, keyid, alg = _profile(params, now)
    entry = registry.lookup(keyid, now)
    authority, path, query = split_url(url)
    lines = f'"@method": {method}\n"@authority": {authority}\n"@path": {path}\n"@query": {query}\n'
    digest: str | None = None
    if with_body:
        digest, ctype = _get(headers, "content-digest"), _get(headers, "content-type")
        if digest is None:
            raise DigestMismatch("Content-Digest is missing")
        if ctype is None:
            raise SignatureInvalid("Content-Type is covered but absent")
        lines += f'"content-digest": {digest}\n"content-type": {ctype}\n'
    _verify_base(entry, alg, lines, covered + params_text, sig)
    if digest is not None:
        _check_digest(digest, body)
    return Checked(entry=entry, nonce=nonce, expires=expires, signature=raw_sig)


async def verify_request(
    registry: KeyRegistry,
    nonces: NonceStore,
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
) -> Verified:
    """Verify an inbound request; raise the precise ``AuthError``. The ``(keyid, nonce)`` pair is
    remembered only once everything else passed, so a rejected message leaves no trace."""
    now = time.time() if now is None else now
    checked = check_request(registry, method=method, url=url, headers=headers, body=body, now=now)
    ttl = max(1, int(checked.expires - now) + 1)
    if not await nonces.remember_nonce(checked.entry.keyid, checked.nonce, ttl):
        raise SignatureReplayed("this (keyid, nonce) was already used")
    entry = checked.entry
    return Verified(partner_id=entry.partner_id, keyid=entry.keyid, signature=checked.signature)


def verify_response(
    registry: KeyRegistry,
    *,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    req_method: str,
    req_path: str,
    req_signature: str,
    expected_partner: str | None = None,
    now: float | None = None,
) -> Verified:
    """Verify a response signed by a partner (or the gateway) and bound to our request."""
    now = time.time() if now is None else now
    raw_sig, covered, params, params_text, sig = _parse_signature(headers)
    member = _request_sig_member(req_signature)
    expected = RESP_COMPONENTS if member is not None else RESP_UNBOUND_COMPONENTS
    if covered != expected:
        raise SignatureInvalid(f"covered components must be {expected} in this order")
    keyid, alg = _profile(params, now)[3:]
    entry = registry.lookup(keyid, now)
    if expected_partner is not None and entry.partner_id != expected_partner:
        raise SignatureInvalid("response signed by another partner's key")
    digest, ctype = _get(headers, "content-digest"), _get(headers, "content-type")
    if digest is None:
        raise DigestMismatch("Content-Digest is missing")
    if ctype is None:
        raise SignatureInvalid("Content-Type is covered but absent")
    lines = (
        f'"@status": {status}\n"content-digest": {digest}\n"content-type": {ctype}\n'
        f'"@method";req: {req_method}\n"@path";req: {req_path}\n'
    )
    if member is not None:
        lines += f'"signature";req;key="qrgw": {member}\n'
    _verify_base(entry, alg, lines, covered + params_text, sig)
    _check_digest(digest, body)
    return Verified(partner_id=entry.partner_id, keyid=entry.keyid, signature=raw_sig)
