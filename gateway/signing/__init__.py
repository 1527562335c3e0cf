"""Signed messages (PROTOCOL.md §2, §8): RFC 9421 ``qrgw`` profile, Alipay+ RSA256, key registry.

Self-contained: imports nothing else from ``gateway`` (``adapters`` may import it).
"""

from __future__ import annotations

from gateway.signing.alipay import alipay_content, alipay_key_version, alipay_sign, alipay_verify
from gateway.signing.client import QrgwAuth, QrgwCallAuth
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
from gateway.signing.messages import NonceStore, Verified, content_digest, sign_request, sign_response
from gateway.signing.server import (
    UNSIGNED_PATHS,
    Authority,
    make_jwks_handler,
    make_signing_middleware,
    request_url,
    sign_answer,
)
from gateway.signing.verify import check_request, verify_request, verify_response

__all__ = [
    "ALGORITHMS",
    "UNSIGNED_PATHS",
    "Authority",
    "KeyRegistry",
    "NonceStore",
    "PublicKeyEntry",
    "QrgwAuth",
    "QrgwCallAuth",
    "Signer",
    "Verified",
    "alipay_content",
    "alipay_key_version",
    "alipay_sign",
    "alipay_verify",
    "check_request",
    "content_digest",
    "generate_key",
    "load_private_key",
    "load_public_key",
    "make_jwks_handler",
    "make_signing_middleware",
    "private_pem",
    "public_jwk",
    "public_pem",
    "request_url",
    "sign_answer",
    "sign_request",
    "sign_response",
    "verify_request",
    "verify_response",
]
