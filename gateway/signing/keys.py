"""Keys: the gateway's signers, partners' public keys, the registry that finds them, JWK/PEM I/O.

A key is registered with exactly one RFC 9421 algorithm (PROTOCOL.md §2):
``ed25519``, ``ecdsa-p256-sha256`` (raw ``r||s``, 64 bytes), ``rsa-pss-sha512`` (MGF1-SHA-512,
64-byte salt) and ``rsa-v1_5-sha256`` (also the Alipay+ ``RSA256`` scheme).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from gateway.signing import sf
from schemas.errors import ConfigError, KeyUnknown

ALGORITHMS = ("ed25519", "ecdsa-p256-sha256", "rsa-pss-sha512", "rsa-v1_5-sha256")
JOSE_ALG = {
    "ed25519": "EdDSA", "ecdsa-p256-sha256": "ES256", "rsa-pss-sha512": "PS512", "rsa-v1_5-sha256": "RS256"
}
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=64)
_ECDSA = ec.ECDSA(hashes.SHA256())


def _check_alg(alg: str) -> None:
    if alg not in ALGORITHMS:
        raise ConfigError(f"unsupported signature algorithm {alg!r}; expected one of {', '.join(ALGORITHMS)}")


def _matches(key: Any, alg: str) -> bool:
    if alg == "ed25519":
        return isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey)
    if alg == "ecdsa-p256-sha256":
        return isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and isinstance(
            key.curve, ec.SECP256R1
        )
    return isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey) and key.key_size >= 2048


def _signing_fn(key: Any, alg: str) -> Callable[[bytes], bytes]:
    if alg == "ed25519":
        return key.sign  # type: ignore[no-any-return]
    if alg == "ecdsa-p256-sha256":
        def sign_ec(data: bytes) -> bytes:
            r, s = decode_dss_signature(key.sign(data, _ECDSA))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return sign_ec
    if alg == "rsa-pss-sha512":
        return lambda data: key.sign(data, _PSS, hashes.SHA512())
    return lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _verify_fn(key: Any, alg: str) -> Callable[[bytes, bytes], None]:
    if alg == "ed25519":
        return key.verify  # type: ignore[no-any-return]
    if alg == "ecdsa-p256-sha256":
        def verify_ec(sig: bytes, data: bytes) -> None:
            if len(sig) != 64:
                raise InvalidSignature("ecdsa-p256-sha256 signatures are 64 bytes r||s")
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            key.verify(der, data, _ECDSA)
        return verify_ec
    if alg == "rsa-pss-sha512":
        return lambda sig, data: key.verify(sig, data, _PSS, hashes.SHA512())
    return lambda sig, data: key.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())


@dataclass(frozen=True)
class Signer:
    """A private key with its key id and its one algorithm."""

    keyid: str
    alg: str
    private_key: Any
    _sign: Callable[[bytes], bytes] = field(init=False, repr=False, compare=False)
    keyid_sf: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_alg(self.alg)
        if not _matches(self.private_key, self.alg) or not hasattr(self.private_key, "sign"):
            raise ConfigError(f"key {self.keyid!r}: not a private key for {self.alg}")
        object.__setattr__(self, "_sign", _signing_fn(self.private_key, self.alg))
        try:
            object.__setattr__(self, "keyid_sf", sf.ser_string(self.keyid))
        except sf.SFError as exc:
            raise ConfigError(f"key id {self.keyid!r} must be printable ASCII") from exc

    def sign(self, data: bytes) -> bytes:
        return self._sign(data)

    def public_key(self) -> Any:
        return self.private_key.public_key()


def _ts(value: datetime | None, default: float) -> float:
    if value is None:
        return default
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True)
class PublicKeyEntry:
    """A partner's public key: which partner it authenticates, its algorithm and validity window."""

    keyid: str
    partner_id: str
    alg: str
    public_key: Any
    not_before: datetime | None = None
    not_after: datetime | None = None
    key_version: str | None = None
    _verify: Callable[[bytes, bytes], None] = field(init=False, repr=False, compare=False)
    _window: tuple[float, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_alg(self.alg)
        if not _matches(self.public_key, self.alg) or not hasattr(self.public_key, "verify"):
            raise ConfigError(f"key {self.keyid!r}: not a public key for {self.alg}")
        object.__setattr__(self, "_verify", _verify_fn(self.public_key, self.alg))
        window = (_ts(self.not_before, float("-inf")), _ts(self.not_after, float("inf")))
        object.__setattr__(self, "_window", window)

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            self._verify(signature, data)
        except (InvalidSignature, ValueError):
            return False
        return True

    def active_at(self, ts: float) -> bool:
        return self._window[0] <= ts < self._window[1]


class KeyRegistry:
    """The gateway's signers plus every partner's public keys, looked up by key id.

    ``client_ids`` maps an Alipay+ ``Client-Id`` to its partner id (default: the same string).
    """

    def __init__(
        self,
        signers: Sequence[Signer],
        public_keys: Sequence[PublicKeyEntry],
        *,
        client_ids: Mapping[str, str] | None = None,
    ) -> None:
        self._signers = tuple(signers)
        self._by_keyid: dict[str, PublicKeyEntry] = {}
        for entry in public_keys:
            if entry.keyid in self._by_keyid:
                raise ConfigError(f"key id {entry.keyid!r} is registered twice")
            self._by_keyid[entry.keyid] = entry
        self._client_ids = dict(client_ids or {})

    @property
    def signer(self) -> Signer:
        """The current signing key: the first one configured."""
        if not self._signers:
            raise ConfigError("no gateway signing key configured (gateway.keys)")
        return self._signers[0]

    @property
    def signers(self) -> tuple[Signer, ...]:
        return self._signers

    def signer_for(self, alg: str) -> Signer:
        """The first signer of algorithm ``alg`` (e.g. ``rsa-v1_5-sha256`` for Alipay+)."""
        for s in self._signers:
            if s.alg == alg:
                return s
        raise KeyUnknown(f"no gateway signing key for {alg}")

    def lookup(self, keyid: str, ts: float) -> PublicKeyEntry:
        """Hot-path variant of ``public`` taking a POSIX timestamp."""
        entry = self._by_keyid.get(keyid)
        if entry is None:
            raise KeyUnknown("unknown keyid")
        if not entry.active_at(ts):
            raise KeyUnknown("key is outside its validity window")
        return entry

    def public(self, keyid: str, at: datetime | None = None) -> PublicKeyEntry:
        return self.lookup(keyid, (at or datetime.now(UTC)).timestamp())

    def alipay_public(
        self, client_id: str, key_version: str | None, at: datetime | None = None
    ) -> PublicKeyEntry:
        partner = self._client_ids.get(client_id, client_id)
        ts = (at or datetime.now(UTC)).timestamp()
        for entry in self._by_keyid.values():
            if entry.partner_id != partner or not entry.active_at(ts):
                continue
            if key_version is None or entry.key_version == key_version:
                return entry
        raise KeyUnknown(f"no active key for Client-Id {client_id!r} keyVersion {key_version!r}")

    def partner_keys(self, partner_id: str) -> list[PublicKeyEntry]:
        return [e for e in self._by_keyid.values() if e.partner_id == partner_id]

    def jwks(self) -> dict[str, Any]:
        """The public half of every gateway signer as a JWK Set (RFC 7517), ``kid`` = keyid."""
        return {"keys": [public_jwk(s.public_key(), s.keyid, s.alg) for s in self._signers]}


# --- generation and (de)serialisation ------------------------------------------------------------
def generate_key(alg: str) -> Any:
    _check_alg(alg)
    if alg == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "ecdsa-p256-sha256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: Any) -> bytes:
    return key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_pem(key: Any) -> bytes:
    pub = key.public_key() if hasattr(key, "private_bytes") else key
    return pub.public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64u(text: Any, name: str) -> bytes:
    if not isinstance(text, str):
        raise ConfigError(f"JWK member {name!r} must be a base64url string")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:
        raise ConfigError(f"JWK member {name!r} is not base64url") from exc


def _uint(n: int) -> bytes:
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")


def public_jwk(key: Any, keyid: str, alg: str) -> dict[str, Any]:
    """RFC 7517/8037 public JWK; ``alg`` is the JOSE name of the RFC 9421 algorithm."""
    pub = key.public_key() if hasattr(key, "private_bytes") else key
    jwk: dict[str, Any]
    if isinstance(pub, ed25519.Ed25519PublicKey):
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64u(raw)}
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        nums = pub.public_numbers()
        jwk = {"kty": "EC", "crv": "P-256", "x": _b64u(nums.x.to_bytes(32, "big")),
               "y": _b64u(nums.y.to_bytes(32, "big"))}
    elif isinstance(pub, rsa.RSAPublicKey):
        rn = pub.public_numbers()
        jwk = {"kty": "RSA", "n": _b64u(_uint(rn.n)), "e": _b64u(_uint(rn.e))}
    else:
        raise ConfigError(f"key {keyid!r}: unsupported key type {type(pub).__name__}")
    jwk.update({"kid": keyid, "alg": JOSE_ALG[alg], "use": "sig"})
    return jwk


def _key_from_jwk(jwk: Mapping[str, Any], alg: str) -> Any:
    kty = jwk.get("kty")
    if "alg" in jwk and jwk["alg"] not in (alg, JOSE_ALG.get(alg)):
        raise ConfigError(f"JWK alg {jwk['alg']!r} does not match {alg}")
    if kty == "OKP" and jwk.get("crv") == "Ed25519":
        return ed25519.Ed25519PublicKey.from_public_bytes(_unb64u(jwk.get("x"), "x"))
    if kty == "EC" and jwk.get("crv") == "P-256":
        x = int.from_bytes(_unb64u(jwk.get("x"), "x"), "big")
        y = int.from_bytes(_unb64u(jwk.get("y"), "y"), "big")
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    if kty == "RSA":
        n = int.from_bytes(_unb64u(jwk.get("n"), "n"), "big")
        e = int.from_bytes(_unb64u(jwk.get("e"), "e"), "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    raise ConfigError(f"unsupported JWK kty={kty!r} crv={jwk.get('crv')!r}")


def load_private_key(path: Path, alg: str) -> Any:
    """A PKCS#8/traditional PEM private key (unencrypted) of algorithm ``alg``."""
    _check_alg(alg)
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read private key: {exc.strerror}") from exc
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: not an unencrypted PEM private key") from exc
    if not _matches(key, alg):
        raise ConfigError(f"{path}: private key is not a {alg} key")
    return key


def load_public_key(src: Path | Mapping[str, Any], alg: str) -> Any:
    """A public key from a PEM file, a JWK file (``.json``) or an inline JWK mapping."""
    _check_alg(alg)
    try:
        if isinstance(src, Mapping):
            key = _key_from_jwk(src, alg)
        else:
            data = Path(src).read_bytes()
            if data.lstrip().startswith(b"{"):
                key = _key_from_jwk(json.loads(data), alg)
            else:
                key = serialization.load_pem_public_key(data)
    except OSError as exc:
        raise ConfigError(f"{src}: cannot read public key: {exc.strerror}") from exc
    except (ValueError, TypeError) as exc:
        where = "inline JWK" if isinstance(src, Mapping) else str(src)
        raise ConfigError(f"{where}: not a valid public key ({exc})") from exc
    if not _matches(key, alg):
        raise ConfigError(f"{src if not isinstance(src, Mapping) else 'inline JWK'}: not a {alg} public key")
    return key
