"""The payment path's QR resolver over the real codec and routing table."""

from __future__ import annotations

from typing import Any

from gateway.config import load_settings
from gateway.payments.qrbridge import RoutingResolver
from gateway.qr.samples import PUBLIC_EXAMPLES


def partner(pid: str, country: str, currency: str) -> dict[str, Any]:
    return {
        "id": pid, "roles": ["wallet", "acquirer"], "country": country, "currency": currency,
        "family": "qrgw", "base_url": f"http://127.0.0.1:9/{pid}",
        "keys": [{"keyid": f"{pid}-1", "alg": "ed25519", "public_key": "unused.pub.pem"}],
    }


def test_a_routed_code_without_merchant_name_or_city_resolves() -> None:
    # PromptPay codes carry neither tag 59 nor 60; routing one must not fail on the missing name.
    settings = load_settings(
        partners=[partner("promptpay-th", "TH", "THB"), partner("kakaopay-kr", "KR", "KRW")],
        routing=[{"identifier": "A000000677010111", "partner": "promptpay-th"}],
    )
    resolved = RoutingResolver(settings).resolve(PUBLIC_EXAMPLES["promptpay-phone"], "kakaopay-kr")
    assert resolved.merchant.name == ""
    assert resolved.merchant.city == ""
    assert resolved.merchant.country == "TH"
    assert resolved.currency == "THB"
    assert resolved.route.acquirer == "promptpay-th"
    assert resolved.route.kind == "cross-border"
