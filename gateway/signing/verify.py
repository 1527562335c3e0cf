"""Verification of the ``qrgw`` profile: requests (with replay protection) and responses.

The received component list must be exactly the profile's; the base is rebuilt from raw values
as received. Checks run in the order documented in docs/signing.md, and the nonce is remembered
only once everything else passed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Mapping

from gateway.signing import sf
from gateway.signing.keys import KeyRegistry, PublicKeyEntry
from gateway.signing.messages import (
    _NONCE,
    _PARAMS,
    LABEL,
    MAX_FUTURE_SKEW_S,
    MAX_VALIDITY_S,
    REQ_BODY_COMPONENTS,
    REQ_COMPONENTS,
    RESP_COMPONENTS,
    RESP_UNBOUND_COMPONENTS,
    TAG,
    Checked,
    NonceStore,
    Verified,
    _get,
    _request_sig_member,
    split_url,
)
from schemas.errors import (
    DigestMismatch,
    SignatureExpired,
    SignatureInvalid,
    SignatureMissing,
    SignatureReplayed,
)

_FAST_DIGEST = re.compile(r"sha-256=:([A-Za-z0-9+/]{43}=):")
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
