"""Build a partner's adapters from its endpoint: one object per partner serves both roles."""

from __future__ import annotations

from adapters.alipayplus import AlipayPlusAdapter
from adapters.base import AcquirerAdapter, WalletAdapter
from adapters.endpoint import PartnerEndpoint
from adapters.http import OutboundHttp, check_endpoint
from adapters.kakaopay import KakaoPayAdapter
from adapters.qrgw import QrgwAdapter
from gateway.signing import KeyRegistry
from schemas.errors import ConfigError, KeyUnknown

__all__ = ["PartnerEndpoint", "build_adapters"]

FAMILIES: dict[str, type[QrgwAdapter | AlipayPlusAdapter | KakaoPayAdapter]] = {
    "qrgw": QrgwAdapter,
    "alipayplus": AlipayPlusAdapter,
    "kakaopay": KakaoPayAdapter,
}


def build_adapters(
    ep: PartnerEndpoint, registry: KeyRegistry, http: OutboundHttp
) -> tuple[WalletAdapter | None, AcquirerAdapter | None]:
    """The partner's wallet adapter (if it has the wallet role) and acquirer adapter (if acquirer)."""
    cls = FAMILIES.get(ep.family)
    if cls is None:
        raise ConfigError(f"partners[{ep.id}].family: unknown adapter family {ep.family!r}")
    check_endpoint(ep)
    try:
        adapter = cls(ep, registry, http)
    except (ValueError, KeyUnknown) as exc:
        raise ConfigError(f"partners[{ep.id}]: {exc}") from exc
    wallet = adapter if "wallet" in ep.roles else None
    acquirer = adapter if "acquirer" in ep.roles else None
    return wallet, acquirer
