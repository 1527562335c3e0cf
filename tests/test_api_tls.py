"""TLS on loopback: `qrgw serve`'s context (mTLS refusing a client without a certificate), and the
outbound layer's (the partner's CA bundle, the gateway's client certificate)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.cli.serve import server_ssl_context
from gateway.config import ServerSettings
from schemas.errors import ConfigError


def _cert(
    path: Path, name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, ca: bool = False
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    cert = b.sign(issuer[1] if issuer else key, hashes.SHA256())
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert, key


async def test_mtls_requires_a_client_certificate(tmp_path: Path) -> None:
    ca = _cert(tmp_path / "ca", "qrgw test CA", None, ca=True)
    _cert(tmp_path / "server", "gateway", ca)
    _cert(tmp_path / "client", "alipay-cn", ca)
    ctx = server_ssl_context(
        ServerSettings(tls_cert=tmp_path / "server.crt", tls_key=tmp_path / "server.key", client_ca=tmp_path / "ca.crt")
    )
    assert ctx is not None and ctx.verify_mode == ssl.CERT_REQUIRED
    app = web.Application()

    async def healthz(_r: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    url = f"https://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/healthz"  # type: ignore[union-attr]
    try:
        good = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
        good.load_cert_chain(tmp_path / "client.crt", tmp_path / "client.key")
        async with httpx.AsyncClient(verify=good) as c:
            assert (await c.get(url)).json() == {"status": "ok"}
        anonymous = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
        with pytest.raises(httpx.TransportError):
            async with httpx.AsyncClient(verify=anonymous) as c:
                await c.get(url)
    finally:
        await runner.cleanup()


def test_tls_settings_must_be_complete(tmp_path: Path) -> None:
    assert server_ssl_context(ServerSettings()) is None
    with pytest.raises(ConfigError):
        server_ssl_context(ServerSettings(client_ca=tmp_path / "ca.crt"))
    with pytest.raises(ConfigError):
        server_ssl_context(ServerSettings(tls_cert=tmp_path / "missing.crt", tls_key=tmp_path / "missing.key"))


async def test_outbound_layer_verifies_the_partner_ca_and_presents_its_client_certificate(tmp_path: Path) -> None:
    """The gateway's outbound layer against a partner that requires mTLS: the partner's CA bundle
    and the gateway's client certificate get through; without either, the call is unavailable."""
    from adapters.endpoint import PartnerEndpoint
    from adapters.http import OutboundHttp
    from schemas.errors import PartnerUnavailable

    ca = _cert(tmp_path / "ca", "partner CA", None, ca=True)
    _cert(tmp_path / "server", "partner", ca)
    _cert(tmp_path / "client", "qrgw", ca)
    ctx = server_ssl_context(
        ServerSettings(tls_cert=tmp_path / "server.crt", tls_key=tmp_path / "server.key", client_ca=tmp_path / "ca.crt")
    )
    app = web.Application()
    seen: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        seen.append(dict(x[0] for x in peer["subject"])["commonName"] if peer else "")
        return web.json_response({"ok": True})

    app.router.add_post("/hooks", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    base = f"https://127.0.0.1:{runner.addresses[0][1]}"

    def ep(pid: str, **kw: object) -> PartnerEndpoint:
        return PartnerEndpoint(id=pid, family="qrgw", roles=("acquirer",), country="SG", currency="SGD",
                               base_url=base, webhook_url=f"{base}/hooks", **kw)  # type: ignore[arg-type]

    http = OutboundHttp()
    try:
        full = ep("full", ca_bundle=tmp_path / "ca.crt", client_cert=tmp_path / "client.crt",
                  client_key=tmp_path / "client.key")
        answer = await http.call(full, "webhook", "POST", f"{base}/hooks", body=b"{}")
        assert answer.status_code == 200 and seen == ["qrgw"]
        for wrong in (ep("no-ca", client_cert=tmp_path / "client.crt", client_key=tmp_path / "client.key"),
                      ep("no-client-cert", ca_bundle=tmp_path / "ca.crt")):
            with pytest.raises(PartnerUnavailable):
                await http.call(wrong, "webhook", "POST", f"{base}/hooks", body=b"{}")
        assert seen == ["qrgw"]
    finally:
        await http.aclose()
        await runner.cleanup()
