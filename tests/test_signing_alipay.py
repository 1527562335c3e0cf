"""The Alipay+ RSA256 scheme: the documented content-to-be-signed example, both directions."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from gateway.signing import KeyRegistry, alipay_content, alipay_key_version, alipay_sign, alipay_verify
from gateway.signing.alipay import alipay_signature_bytes, header
from gateway.testing.signing import entry_for, make_signer
from schemas.errors import SignatureMissing

# Alipay+ docs, "Sign a request and validate the signature" (ACQP, older edition): Request-URI,
# Client-Id, Request-Time and the resulting Content_To_Be_Signed layout.
DOC_URI = "/aps/api/v1/payments/pay"
DOC_CLIENT = "TEST_5X00000000000000"
DOC_TIME = "2019-05-28T12:12:12+08:00"
DOC_BODY = (
    b'{\n "order":{\n    "orderId":"OrderID_0101010101",\n    "orderDescription":"sample_order",\n'
    b'    "orderAmount":{\n       "value":"100",\n       "currency":"JPY"\n    },\n },\n'
    b' "paymentAmount":{\n    "value":"100",\n    "currency":"JPY"\n },\n'
    b' "paymentFactor": {\n     "isInStorePayment": "true"\n } \n}'
)


def test_documented_content_to_be_signed() -> None:
    content = alipay_content(
        method="POST", uri=DOC_URI, client_id=DOC_CLIENT, request_time=DOC_TIME, body=DOC_BODY
    )
    assert (
        content
        == b"POST /aps/api/v1/payments/pay\nTEST_5X00000000000000.2019-05-28T12:12:12+08:00." + DOC_BODY
    )


def test_sign_and_verify_both_directions_with_rotation() -> None:
    gateway = make_signer("rsa-v1_5-sha256", "qrgw-alipay-1")
    wallet_old = make_signer("rsa-v1_5-sha256", "alipay-cn-1")
    wallet_new = make_signer("rsa-v1_5-sha256", "alipay-cn-2")
    reg = KeyRegistry(
        [gateway],
        [
            entry_for(wallet_old, "alipay-cn", key_version="1"),
            entry_for(wallet_new, "alipay-cn", key_version="2"),
        ],
        client_ids={"ALIPAY_CN": "alipay-cn"},
    )
    # gateway -> wallet request, verified by the wallet with the gateway's public key
    sig = alipay_sign(
        gateway,
        method="POST",
        uri=DOC_URI,
        client_id="qrgw",
        request_time=DOC_TIME,
        body=DOC_BODY,
        key_version="1",
    )
    assert (
        sig.startswith("algorithm=RSA256,keyVersion=1,signature=") and "+" not in sig.split("signature=")[1]
    )
    kw = dict(method="POST", uri=DOC_URI, client_id="qrgw", request_time=DOC_TIME, body=DOC_BODY)
    gw_entry = entry_for(gateway, "qrgw")
    assert alipay_verify(gw_entry, header=sig, **kw)  # type: ignore[arg-type]
    assert not alipay_verify(gw_entry, header=sig, **{**kw, "body": DOC_BODY + b" "})  # type: ignore[arg-type]
    assert not alipay_verify(gw_entry, header=sig, **{**kw, "request_time": "2019-05-28T12:12:13+08:00"})  # type: ignore[arg-type]
    # wallet -> gateway response signed with Response-Time under keyVersion 2; parts in another order
    resp = alipay_sign(
        wallet_new,
        method="POST",
        uri=DOC_URI,
        client_id="ALIPAY_CN",
        request_time="2019-05-28T12:12:14+08:00",
        body=b'{"result":{"resultStatus":"S"}}',
        key_version="2",
    )
    reordered = "signature=" + resp.split("signature=")[1] + ", keyVersion=2 ,algorithm=RSA256"
    entry = reg.alipay_public("ALIPAY_CN", alipay_key_version(reordered))
    assert entry.keyid == "alipay-cn-2"
    assert alipay_verify(
        entry,
        method="POST",
        uri=DOC_URI,
        client_id="ALIPAY_CN",
        request_time="2019-05-28T12:12:14+08:00",
        body=b'{"result":{"resultStatus":"S"}}',
        header=reordered,
    )
    assert not alipay_verify(
        reg.alipay_public("ALIPAY_CN", "1"),
        method="POST",
        uri=DOC_URI,
        client_id="ALIPAY_CN",
        request_time="2019-05-28T12:12:14+08:00",
        body=b'{"result":{"resultStatus":"S"}}',
        header=reordered,
    )


def test_header_parsing_is_by_signature_part_and_case_insensitive() -> None:
    gateway = make_signer("rsa-v1_5-sha256", "k")
    value = alipay_sign(
        gateway, method="post", uri="/x", client_id="c", request_time="t", body=b"", key_version="3"
    )
    raw = alipay_signature_bytes(value.replace("signature=", "Signature="))
    assert len(raw) == 256 and unquote(value.split("signature=")[1]).endswith("=")
    for bad in ("", "algorithm=RSA256,keyVersion=1", "signature=%%%"):
        with pytest.raises(SignatureMissing):
            alipay_signature_bytes(bad)
        assert not alipay_verify(
            entry_for(gateway, "p"),
            method="POST",
            uri="/x",
            client_id="c",
            request_time="t",
            body=b"",
            header=bad,
        )
    assert header({"SIGNATURE": "v", "client-id": "c"}, "Client-Id") == "c"
    assert header({"Signature": "v"}, "signature") == "v" and header({}, "Signature") is None
