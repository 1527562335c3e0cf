"""Run-time keys for signing tests: signers and registries, never a key on disk unless asked."""

from __future__ import annotations

from gateway.signing import KeyRegistry, PublicKeyEntry, Signer, generate_key


def make_signer(alg: str = "ed25519", keyid: str = "partner-key-1") -> Signer:
    return Signer(keyid, alg, generate_key(alg))


def entry_for(signer: Signer, partner_id: str, **kw: object) -> PublicKeyEntry:
    return PublicKeyEntry(signer.keyid, partner_id, signer.alg, signer.public_key(), **kw)  # type: ignore[arg-type]


def pair(
    alg: str = "ed25519", partner_id: str = "openwallet-sg"
) -> tuple[Signer, Signer, KeyRegistry, KeyRegistry]:
    """(partner signer, gateway signer, gateway's registry, partner's registry) for one partner."""
    partner = make_signer(alg, f"{partner_id}-1")
    gateway = make_signer(alg, "qrgw-gw-1")
    gw_registry = KeyRegistry([gateway], [entry_for(partner, partner_id)])
    partner_registry = KeyRegistry([partner], [entry_for(gateway, "qrgw")])
    return partner, gateway, gw_registry, partner_registry
