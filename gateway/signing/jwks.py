"""JWK Sets (RFC 7517) as registry entries: the public keys a party publishes, read back.

Each JWK must carry ``kid`` and ``alg`` (the JOSE name of one of the profile's algorithms, or
the RFC 9421 name itself): a key is registered with exactly one algorithm (PROTOCOL.md §2), so
a JWK without ``alg`` is refused rather than guessed. ``nbf``/``exp`` (seconds since the
epoch, as in JWTs), when present, become the key's validity window.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gateway.signing.keys import ALGORITHMS, JOSE_ALG, PublicKeyEntry, load_public_key
from schemas.errors import ConfigError

FROM_JOSE = {v: k for k, v in JOSE_ALG.items()}


def _when(jwk: Mapping[str, Any], name: str) -> datetime | None:
    value = jwk.get(name)
    if value is None:
        return None
    if type(value) is not int:
        raise ConfigError(f"JWK {jwk.get('kid')!r}: {name} must be an integer (seconds since the epoch)")
    return datetime.fromtimestamp(value, UTC)


def entries_from_jwks(doc: Any, partner_id: str) -> list[PublicKeyEntry]:
    """Every usable signature key of ``doc`` as an entry of ``partner_id``; ConfigError on a
    malformed set (one bad key refuses the whole set: half a key set is worse than the old one)."""
    keys = doc.get("keys") if isinstance(doc, Mapping) else None
    if not isinstance(keys, list):
        raise ConfigError("JWK Set must be an object with a 'keys' array")
    out: list[PublicKeyEntry] = []
    seen: set[str] = set()
    for jwk in keys:
        if not isinstance(jwk, Mapping):
            raise ConfigError("JWK Set: every key must be an object")
        if jwk.get("use", "sig") != "sig":
            continue  # encryption keys have no place in a signature registry
        kid, jose = jwk.get("kid"), jwk.get("alg")
        if not isinstance(kid, str) or not kid or kid in seen:
            raise ConfigError(f"JWK Set: every key needs a unique non-empty kid (got {kid!r})")
        alg = FROM_JOSE.get(str(jose), str(jose))
        if alg not in ALGORITHMS:
            raise ConfigError(f"JWK {kid!r}: alg {jose!r} is not one of {sorted(FROM_JOSE)}")
        seen.add(kid)
        out.append(PublicKeyEntry(keyid=kid, partner_id=partner_id, alg=alg, public_key=load_public_key(jwk, alg),
                                  not_before=_when(jwk, "nbf"), not_after=_when(jwk, "exp")))
    return out
