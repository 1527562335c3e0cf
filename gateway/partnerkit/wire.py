"""One signed exchange over HTTP, kept whole for inspection: the request as signed (with its
signature base), the answer, and the verdict on the answer's signature.

Shared by ``qrgw call`` and the conformance runner, which also needs to send deliberately
broken signatures (``mutate`` runs after signing).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from gateway.signing import KeyRegistry, Signer, sign_request, verify_response
from gateway.signing.messages import split_url
from schemas.errors import QrgwError

Mutate = Callable[[dict[str, str], bytes], bytes]


@dataclass
class Exchange:
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    verdict: str = "not checked"  # "ok", or the verification code and detail
    signer_partner: str | None = None

    @property
    def signed_ok(self) -> bool:
        return self.verdict == "ok"

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def code(self) -> str | None:
        doc = self.json()
        return doc.get("code") if isinstance(doc, dict) and isinstance(doc.get("code"), str) else None


def signature_base(method: str, url: str, headers: dict[str, str]) -> str:
    """The request's signature base as the profile builds it (for ``--verbose``)."""
    authority, path, query = split_url(url)
    lines = f'"@method": {method}\n"@authority": {authority}\n"@path": {path}\n"@query": {query}\n'
    if "Content-Digest" in headers:
        lines += f'"content-digest": {headers["Content-Digest"]}\n"content-type": {headers["Content-Type"]}\n'
    return lines + '"@signature-params": ' + headers["Signature-Input"].removeprefix("qrgw=")


async def exchange(
    client: httpx.AsyncClient,
    signer: Signer,
    verifier: KeyRegistry,
    method: str,
    url: str,
    body: bytes | None = None,
    *,
    expect_partner: str | None = None,
    mutate: Mutate | None = None,
    created: int | None = None,
    headers: dict[str, str] | None = None,
) -> Exchange:
    """Sign and send; verify the answer against ``verifier`` (bound to this request)."""
    hdrs = {"Content-Type": "application/json"} if body else {}
    hdrs.update(headers or {})
    sign_request(signer, method=method, url=url, headers=hdrs, body=body or None, created=created)
    sent = mutate(hdrs, body or b"") if mutate is not None else (body or b"")
    ex = Exchange(method, url, hdrs, sent)
    resp = await client.request(method, url, headers=hdrs, content=sent or None)
    ex.status, ex.headers, ex.body = resp.status_code, dict(resp.headers), resp.content
    path = split_url(url)[1]
    try:
        v = verify_response(verifier, status=resp.status_code, headers=resp.headers, body=resp.content,
                            req_method=method, req_path=path, req_signature=hdrs["Signature"],
                            expected_partner=expect_partner)
    except QrgwError as exc:
        ex.verdict = f"{exc.code}: {exc.detail}"
    else:
        ex.verdict, ex.signer_partner = "ok", v.partner_id
    return ex
