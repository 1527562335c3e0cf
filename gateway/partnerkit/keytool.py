"""``qrgw keys list | rotate | jwks``: what the configured keys are, and a rotation step.

Rotation (docs/keys.md): ``rotate`` writes a new gateway key valid from ``not_before`` and gives
the current key a ``not_after`` after that, so both are published (JWKS) for the overlap; the
running gateway switches to the new key by itself when it becomes valid and stops using the old
one at its ``not_after`` (``gateway.live``), once it has reloaded the config (SIGHUP).
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.config import Settings, load_settings
from gateway.keys import registry_from_settings
from gateway.signing import generate_key, private_pem, public_jwk
from schemas.errors import ConfigError


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else (value if value.tzinfo else value.replace(tzinfo=UTC))


@dataclass(frozen=True)
class KeyRow:
    owner: str  # "gateway" or the partner id
    keyid: str
    alg: str
    not_before: datetime | None
    not_after: datetime | None
    state: str  # pending | active | expired
    days_left: int | None  # whole days until not_after; None when open-ended
    signing: bool = False  # the key the gateway signs its qrgw messages with now


def _row(owner: str, keyid: str, alg: str, nb: datetime | None, na: datetime | None, now: datetime,
         signing: bool = False) -> KeyRow:
    nb, na = _utc(nb), _utc(na)
    state = "pending" if nb and now < nb else "expired" if na and now >= na else "active"
    days = None if na is None else max(0, (na - now) // timedelta(days=1))
    return KeyRow(owner, keyid, alg, nb, na, state, days, signing)


def key_rows(settings: Settings, now: datetime | None = None) -> list[KeyRow]:
    """Every configured key (gateway first, then each partner's), with its window."""
    now = now or datetime.now(UTC)
    current = registry_from_settings(settings).signer.keyid if settings.gateway.keys else None
    rows = [_row("gateway", k.keyid, k.alg, k.not_before, k.not_after, now, k.keyid == current)
            for k in settings.gateway.keys]
    for p in settings.partners:
        rows += [_row(p.id, k.keyid, k.alg, k.not_before, k.not_after, now) for k in p.keys]
    return rows


def format_rows(rows: list[KeyRow]) -> str:
    def when(d: datetime | None) -> str:
        return d.strftime("%Y-%m-%dT%H:%MZ") if d else "-"

    lines = [f"{'owner':<15} {'keyid':<28} {'alg':<18} {'not_before':<17} {'not_after':<17} state    days"]
    for r in rows:
        days = "∞" if r.days_left is None else str(r.days_left)
        mark = "  (signing)" if r.signing else ""
        lines.append(f"{r.owner:<15} {r.keyid:<28} {r.alg:<18} {when(r.not_before):<17} "
                     f"{when(r.not_after):<17} {r.state:<8} {days}{mark}")
    return "\n".join(lines)


def _toml_writer() -> Any:
    from gateway.sandbox_env import dump_toml

    return dump_toml


def rotate(config: Path, out: Path, *, alg: str, not_before: datetime, overlap: timedelta,
           keyid: str | None = None) -> tuple[str, Path]:
    """Add a new gateway key valid from ``not_before`` and retire the current one at
    ``not_before + overlap``. The config is rewritten only if the result loads (``.bak`` kept)."""
    settings = load_settings(config)
    current = registry_from_settings(settings).signer if settings.gateway.keys else None
    if current is not None and current.alg != alg:
        raise ConfigError(f"the current key is {current.alg}; rotate to the same algorithm (--alg {current.alg})")
    keyid = keyid or f"qrgw-{not_before:%Y%m%d}-{secrets.token_hex(3)}"
    out.mkdir(parents=True, exist_ok=True)
    private_path = out / f"{keyid}.pem"
    key = generate_key(alg)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_pem(key))
    data = tomllib.loads(config.read_text(encoding="utf-8"))
    keys = data.setdefault("gateway", {}).setdefault("keys", [])
    if not keys:  # the file inherits its keys from the defaults: take them over explicitly
        keys.extend({k: str(v) if isinstance(v, Path) else v for k, v in gk.model_dump(exclude_none=True).items()}
                    for gk in settings.gateway.keys)
    retire = not_before + overlap
    for k in keys:
        if current is not None and k.get("keyid") == current.keyid:
            old_end = _utc(k.get("not_after"))
            if old_end is None or old_end > retire:
                k["not_after"] = retire
    keys.append({"keyid": keyid, "alg": alg, "private_key": str(private_path.resolve()), "not_before": not_before})
    text = _toml_writer()(data)
    trial = config.with_name(config.name + ".new")
    trial.write_text(text, encoding="utf-8")
    try:
        load_settings(trial)  # a rotation never leaves a config the gateway would refuse
    except ConfigError:
        trial.unlink()
        private_path.unlink()
        raise
    config.with_name(config.name + ".bak").write_bytes(config.read_bytes())
    os.replace(trial, config)
    return keyid, private_path


def jwks(settings: Settings) -> dict[str, Any]:
    """The gateway's public JWK Set as ``/.well-known/jwks.json`` serves it, with windows."""
    windows = {k.keyid: (_utc(k.not_before), _utc(k.not_after)) for k in settings.gateway.keys}
    out = []
    for s in registry_from_settings(settings).signers:
        jwk = public_jwk(s.public_key(), s.keyid, s.alg)
        nb, na = windows.get(s.keyid, (None, None))
        if nb:
            jwk["nbf"] = int(nb.timestamp())
        if na:
            jwk["exp"] = int(na.timestamp())
        out.append(jwk)
    return {"keys": out}
