"""Whose limit it is: the counter key ("holder") of a payer.

A wallet's payer id is unique only within that wallet, so the key is (wallet, payer id); when
the wallet sends ``payer.national_id_hash`` the key is the national identity instead, and the
payers of every wallet that send the same hash share one set of counters (one person). Keys
are hashes with a domain prefix: the store never holds a payer id or a national id hash in clear,
and a wallet-scoped key can never equal a national one.
"""

from __future__ import annotations

import hashlib

from schemas.payment import Payer

__all__ = ["binding_key", "holder_of", "national_holder", "wallet_holder"]


def _h(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def wallet_holder(wallet: str, payer_id: str) -> str:
    return "w" + _h("wallet", wallet, payer_id)


def national_holder(national_id_hash: str) -> str:
    return "n" + _h("national", national_id_hash)


def holder_of(payer: Payer, wallet: str) -> str:
    """The counters a payment of ``payer`` through ``wallet`` counts against."""
    if payer.national_id_hash:
        return national_holder(payer.national_id_hash)
    return wallet_holder(wallet, payer.id)


def binding_key(wallet: str, payer_id: str) -> str:
    """Blob key remembering that a wallet's payer id sent a national id (for GET /v1/limits)."""
    return f"fx:nid:{wallet_holder(wallet, payer_id)}"
