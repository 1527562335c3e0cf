"""Signed messages (PROTOCOL.md §2, §8): RFC 9421 ``qrgw`` profile, Alipay+ RSA256, key registry.

Self-contained: imports nothing else from ``gateway`` (``adapters`` may import it).
"""

from __future__ import annotations

from gateway.signing.keys import (
    ALGORITHMS,
    KeyRegistry,
    PublicKeyEntry,
    Signer,
    generate_key,
    load_private_key,
    load_public_key,
    private_pem,
    public_jwk,
    public_pem,
)
from gateway.signing.messages import (
    NonceStore,
    Verified,
    check_request,
    content_digest,
    sign_request,
    sign_response,
    verify_request,
    verify_response,
)

__all__ = [
    "ALGORITHMS",
    "KeyRegistry",
    "NonceStore",
    "PublicKeyEntry",
    "Signer",
    "Verified",
    "check_request",
    "content_digest",
    "generate_key",
    "load_private_key",
    "load_public_key",
    "private_pem",
    "public_jwk",
    "public_pem",
    "sign_request",
    "sign_response",
    "verify_request",
    "verify_response",
]
