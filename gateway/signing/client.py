"""httpx auth flow: sign every outbound request with the qrgw profile, verify the signed answer."""

from __future__ import annotations

from collections.abc import Generator

import httpx

from gateway.signing.keys import KeyRegistry, Signer
from gateway.signing.messages import sign_request
from gateway.signing.verify import verify_response
from schemas.errors import AuthError, PartnerProtocolError


class QrgwAuth(httpx.Auth):
    """Signs the request (body as sent) and verifies the response against ``registry``.

    The response must be signed by a key of ``expected_partner`` (any registered key when None)
    and bound to this request's signature; otherwise ``PartnerProtocolError`` is raised with the
    precise verification code in ``extra['signature_code']``."""

    requires_request_body = True
    requires_response_body = True

    def __init__(self, signer: Signer, registry: KeyRegistry, expected_partner: str | None) -> None:
        self._signer = signer
        self._registry = registry
        self._expected = expected_partner

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        body = request.content
        for name in ("Signature", "Signature-Input", "Content-Digest"):
            request.headers.pop(name, None)  # a retried request gets a fresh signature and nonce
        sign_request(self._signer, method=request.method, url=str(request.url), headers=request.headers,
                     body=body or None)
        response = yield request
        try:
            verify_response(
                self._registry,
                status=response.status_code,
                headers=response.headers,
                body=response.content,
                req_method=request.method,
                req_path=request.url.raw_path.split(b"?", 1)[0].decode("ascii") or "/",
                req_signature=request.headers["Signature"],
                expected_partner=self._expected,
            )
        except AuthError as exc:
            raise PartnerProtocolError(
                f"response signature rejected: {exc.code}: {exc.detail}", signature_code=exc.code
            ) from exc
