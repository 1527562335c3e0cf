"""The Alipay+ signature scheme (PROTOCOL.md §8, family ``alipayplus``), both directions.

Content to be signed: ``"<METHOD> <Request-URI>\\n<Client-Id>.<Request-Time|Response-Time>.<raw body>"``;
RSA PKCS#1 v1.5 with SHA-256; header ``Signature: algorithm=RSA256,keyVersion=N,signature=<b64>``
with the base64 URL-encoded. The header is parsed by its ``signature=`` part only, as Alipay+
documents: partners vary in spacing and in the order of the other parts.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import quote, unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from gateway.signing.keys import PublicKeyEntry, Signer
from schemas.errors import SignatureInvalid, SignatureMissing

ALIPAY_ALG = "rsa-v1_5-sha256"
_SIG_PART = re.compile(r"(?:^|,)\s*signature\s*=\s*([^,\s]+)", re.IGNORECASE)
_KEY_VERSION = re.compile(r"(?:^|,)\s*keyVersion\s*=\s*([^,\s]+)", re.IGNORECASE)


def alipay_content(*, method: str, uri: str, client_id: str, request_time: str, body: bytes) -> bytes:
    """The exact bytes Alipay+ signs; ``request_time`` is Response-Time for a response."""
    return f"{method.upper()} {uri}\n{client_id}.{request_time}.".encode() + body


def alipay_sign(
    signer: Signer, *, method: str, uri: str, client_id: str, request_time: str, body: bytes, key_version: str
) -> str:
    """The ``Signature`` header value for a request (or, with Response-Time, a response)."""
    if not isinstance(signer.private_key, rsa.RSAPrivateKey):
        raise SignatureInvalid("the Alipay+ scheme needs an RSA key")
    content = alipay_content(
        method=method, uri=uri, client_id=client_id, request_time=request_time, body=body
    )
    raw = signer.private_key.sign(content, padding.PKCS1v15(), hashes.SHA256())
    b64 = base64.b64encode(raw).decode("ascii")
    return f"algorithm=RSA256,keyVersion={key_version},signature={quote(b64, safe='')}"


def alipay_signature_bytes(header: str) -> bytes:
    """The raw signature of an Alipay+ ``Signature`` header; SignatureMissing when absent/malformed."""
    m = _SIG_PART.search(header or "")
    if m is None:
        raise SignatureMissing("Signature header has no signature= part")
    try:
        return base64.b64decode(unquote(m.group(1)), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureMissing("signature= is not URL-encoded base64") from exc


def alipay_key_version(header: str) -> str | None:
    m = _KEY_VERSION.search(header or "")
    return m.group(1) if m else None


def alipay_verify(
    key: PublicKeyEntry, *, method: str, uri: str, client_id: str, request_time: str, body: bytes, header: str
) -> bool:
    """True when ``header`` carries a valid RSA256 signature of the message by ``key``."""
    try:
        sig = alipay_signature_bytes(header)
    except SignatureMissing:
        return False
    if not isinstance(key.public_key, rsa.RSAPublicKey):
        return False
    content = alipay_content(
        method=method, uri=uri, client_id=client_id, request_time=request_time, body=body
    )
    try:
        key.public_key.verify(sig, content, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def header(headers: object, name: str) -> str | None:
    """Case-insensitive header lookup over any mapping-like object (Alipay+ names vary in case)."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    value = get(name)
    if value is None and hasattr(headers, "items"):
        lname = name.lower()
        for k, v in headers.items():
            if isinstance(k, str) and k.lower() == lname:
                return str(v)
    return None if value is None else str(value)
