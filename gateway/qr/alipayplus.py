"""Alipay+ merchant-presented code (Alipay+ "Code Scanning Payment Standards", MPM code format):

``HTTPS://<DOMAIN_NAME>/MPM/<VERSION>/<Base64 general payload>``; the general payload is
``GPLD`` + a 3-digit length + data objects (4-character id, 3-digit length, value). The
templates ``CDSD`` and ``CIRD`` hold sub-objects with 2-digit ids and 2-digit lengths.

Error offsets count characters of the Base64-decoded general payload (``tag_path`` starts with
``GPLD``); an error in the URL around it has offset 0 (or the Base64's start).
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from gateway.qr._common import NUM3, build, fail
from gateway.qr.emvco import scan
from schemas.errors import QRError
from schemas.qr import AlipayPlusObject, AlipayPlusQR

TEMPLATES = frozenset({"CDSD", "CIRD"})
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def is_url(p: str) -> bool:
    return p[:8].upper() == "HTTPS://" or p[:7].upper() == "HTTP://"


def _gpld(b64: str, at: int) -> str:
    text = unquote(b64) if "%" in b64 else b64
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        return raw.decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise fail("QR_MALFORMED", f"general payload is not Base64 of UTF-8 text: {exc}", at, "GPLD") from None


def decode_alipayplus(p: str) -> AlipayPlusQR:
    scheme, _, rest = p.partition("://")
    parts = rest.split("/")
    if scheme.upper() != "HTTPS" or len(parts) != 4 or parts[1] != "MPM" or not parts[0] or not parts[3]:
        raise fail("QR_UNSUPPORTED_FORMAT", "a URL that is not an Alipay+ code (HTTPS://<domain>/MPM/3/<payload>)", 0)
    domain, _, version, b64 = parts
    if version != "3":
        raise fail("QR_UNSUPPORTED_FORMAT", f"Alipay+ code format version {version!r} (this decoder reads 3)",
                   len(scheme) + 4 + len(domain) + 4, "version")
    g = _gpld(b64, len(p) - len(b64))
    n = NUM3.get(g[4:7])
    if g[:4] != "GPLD" or n is None:
        raise fail("QR_MALFORMED", "general payload must start with GPLD and a 3-digit length", 0, "GPLD")
    if n != len(g) - 7:
        raise fail("QR_MALFORMED", f"GPLD length is {n}, its value has {len(g) - 7} characters", 4, "GPLD")
    objects: list[AlipayPlusObject] = []
    seen: set[str] = set()
    i, end = 7, len(g)
    while i < end:
        ident = g[i : i + 4]
        m = NUM3.get(g[i + 4 : i + 7])
        if len(ident) != 4 or not _ID_CHARS.issuperset(ident) or m is None:
            raise fail("QR_MALFORMED", f"no data object (4-character id, 3-digit length) at offset {i}", i, "GPLD")
        j = i + 7 + m
        if j > end:
            raise fail("QR_MALFORMED", f"GPLD.{ident}: length {m} runs past the end", i, f"GPLD.{ident}")
        if ident in seen:
            raise fail("QR_MALFORMED", f"GPLD.{ident} appears twice", i, f"GPLD.{ident}")
        seen.add(ident)
        value = g[i + 7 : j]
        fields = None
        if ident in TEMPLATES:
            try:
                fields = scan(value, f"GPLD.{ident}")
            except QRError as exc:
                exc.extra["offset"] += i + 7
                raise
        objects.append(build(AlipayPlusObject, {"id": ident, "value": value, "fields": fields}))
        i = j
    if not objects:
        raise fail("QR_MISSING_FIELD", "general payload holds no data object", 7, "GPLD")
    return build(
        AlipayPlusQR,
        {"format": "alipayplus", "scheme": scheme, "domain": domain, "version": version,
         "objects": objects, "payload": b64},
    )


def gpld_of(qr: AlipayPlusQR) -> str:
    body = ""
    for o in qr.objects:
        value = "".join(f"{t}{len(v):02d}{v}" for t, v in o.fields.items()) if o.fields is not None else o.value
        body += f"{o.id}{len(value):03d}{value}"
    return f"GPLD{len(body):03d}{body}"


def encode_alipayplus(qr: AlipayPlusQR) -> str:
    """The code of ``qr``; keeps the Base64 text as printed when it still carries the same payload."""
    g = gpld_of(qr)
    b64 = qr.payload
    if b64 is None or _gpld(b64, 0) != g:
        b64 = base64.b64encode(g.encode("utf-8")).decode("ascii")
    out = f"{qr.scheme}://{qr.domain}/MPM/{qr.version}/{b64}"
    decode_alipayplus(out)  # refuse to print what we would not read
    return out
