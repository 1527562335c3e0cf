"""Interoperability both ways with an independent RFC 9421 implementation (http-message-signatures)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from http_message_signatures import HTTPMessageSigner, HTTPMessageVerifier, MappingKeyResolver, algorithms

from gateway.signing import check_request, sign_request, sign_response, verify_response
from gateway.testing.signing import pair

ALGS = {
    "ed25519": algorithms.ED25519,
    "ecdsa-p256-sha256": algorithms.ECDSA_P256_SHA256,
    "rsa-pss-sha512": algorithms.RSA_PSS_SHA512,
}
URL = "https://gw.example.com/v1/qr/decode?lang=en&x=%20y"
BODY = b'{"payload":"00020101021226"}'
REQ_COMPONENTS = ("@method", "@authority", "@path", "@query", "content-digest", "content-type")
RESP_COMPONENTS = (
    "@status",
    "content-digest",
    "content-type",
    '"@method";req',
    '"@path";req',
    '"signature";req;key="qrgw"',
)


@dataclass
class Req:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Resp:
    status_code: int
    request: Req
    headers: dict[str, str] = field(default_factory=dict)


def lib_sign(
    msg: Req | Resp, alg: str, keyid: str, key: Any, components: tuple[str, ...], body: bytes
) -> None:
    now = int(time.time())
    signer = HTTPMessageSigner(
        signature_algorithm=ALGS[alg],
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={keyid: key}),
    )
    signer.sign(
        msg,
        key_id=keyid,
        label="qrgw",
        tag="qrgw-v1",
        nonce=secrets.token_urlsafe(16),
        created=datetime.fromtimestamp(now, UTC),
        expires=datetime.fromtimestamp(now + 300, UTC),
        covered_component_ids=components,
        body=body,
    )


def lib_verifier(alg: str, keyid: str, pub: Any) -> HTTPMessageVerifier:
    return HTTPMessageVerifier(
        signature_algorithm=ALGS[alg],
        key_resolver=MappingKeyResolver(public_keys={keyid: pub}, private_keys={}),
    )


@pytest.mark.parametrize("alg", list(ALGS))
def test_library_signs_we_verify(alg: str) -> None:
    partner, gateway, gw_reg, partner_reg = pair(alg)
    req = Req("POST", URL, {"Content-Type": "application/json"})
    lib_sign(req, alg, partner.keyid, partner.private_key, REQ_COMPONENTS, BODY)
    checked = check_request(gw_reg, method="POST", url=URL, headers=req.headers, body=BODY)
    assert checked.entry.partner_id == "openwallet-sg"
    # and a response the library signs for our request
    ours = {"Content-Type": "application/json"}
    sign_request(partner, method="POST", url=URL, headers=ours, body=BODY)
    resp = Resp(200, Req("POST", URL, ours), {"Content-Type": "application/json"})
    lib_sign(resp, alg, gateway.keyid, gateway.private_key, RESP_COMPONENTS, b'{"ok":true}')
    verify_response(
        partner_reg,
        status=200,
        headers=resp.headers,
        body=b'{"ok":true}',
        req_method="POST",
        req_path="/v1/qr/decode",
        req_signature=ours["Signature"],
        expected_partner="qrgw",
    )


@pytest.mark.parametrize("alg", list(ALGS))
def test_we_sign_library_verifies(alg: str) -> None:
    partner, gateway, _, _ = pair(alg)
    req = Req("POST", URL, {"Content-Type": "application/json"})
    sign_request(partner, method="POST", url=URL, headers=req.headers, body=BODY)
    [res] = lib_verifier(alg, partner.keyid, partner.public_key()).verify(
        req, expect_label="qrgw", expect_tag="qrgw-v1", body=BODY, require_components=REQ_COMPONENTS
    )
    assert res.parameters["keyid"] == partner.keyid
    resp = Resp(201, req, {"Content-Type": "application/json"})
    sign_response(
        gateway,
        status=201,
        headers=resp.headers,
        body=b"{}",
        req_method="POST",
        req_path="/v1/qr/decode",
        req_signature=req.headers["Signature"],
    )
    [res] = lib_verifier(alg, gateway.keyid, gateway.public_key()).verify(
        resp, expect_label="qrgw", expect_tag="qrgw-v1", body=b"{}", require_components=RESP_COMPONENTS
    )
    assert res.label == "qrgw"
