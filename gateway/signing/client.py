"""Client side of the qrgw profile: sign every outbound request, verify the signed answer.

``QrgwCallAuth`` is transport-free (the gateway's aiohttp layer, ``adapters.http``, calls its
``sign`` and ``check``); ``QrgwAuth`` wraps it as an httpx auth flow for sandboxes, tests and
benches that drive the gateway with httpx.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, MutableMapping

import httpx

from gateway.signing.keys import KeyRegistry, Signer
from gateway.signing.messages import sign_request
from gateway.signing.verify import verify_response
from schemas.errors import AuthError, PartnerProtocolError

_SIGNATURE_FIELDS = ("Signature", "Signature-Input", "Content-Digest")


class QrgwCallAuth:
    """Signs a request (body as sent) and verifies its answer against ``registry``.

    The answer must be signed by a key of ``expected_partner`` (any registered key when None)
    and bound to this request's signature; otherwise ``PartnerProtocolError`` is raised with the
    precise verification code in ``extra['signature_code']``."""

    def __init__(self, signer: Signer, registry: KeyRegistry, expected_partner: str | None) -> None:
        self._signer = signer
        self._registry = registry
        self._expected = expected_partner

    def sign(self, method: str, url: str, headers: MutableMapping[str, str], body: bytes | None) -> None:
        for name in _SIGNATURE_FIELDS:
            headers.pop(name, None)  # a retried request gets a fresh signature and nonce
        sign_request(self._signer, method=method, url=url, headers=headers, body=body or None)

    def check(
        self,
        method: str,
        path: str,
        request_headers: Mapping[str, str],
        status: int,
        headers: Mapping[str, str],
        body: bytes,
    ) -> None:
        try:
            verify_response(
                self._registry,
                status=status,
                headers=headers,
                body=body,
                req_method=method,
                req_path=path or "/",
                req_signature=request_headers["Signature"],
                expected_partner=self._expected,
            )
        except AuthError as exc:
            raise PartnerProtocolError(
                f"response signature rejected: {exc.code}: {exc.detail}", signature_code=exc.code
            ) from exc


class QrgwAuth(httpx.Auth):
    """``QrgwCallAuth`` as an httpx auth flow."""

    requires_request_body = True
    requires_response_body = True

    def __init__(self, signer: Signer, registry: KeyRegistry, expected_partner: str | None) -> None:
        self._call = QrgwCallAuth(signer, registry, expected_partner)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self._call.sign(request.method, str(request.url), request.headers, request.content)
        response = yield request
        path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
        self._call.check(request.method, path, request.headers, response.status_code, response.headers,
                         response.content)
