"""Routing table: first routed template in tag order, domestic vs cross-border, Alipay+ format, no route."""

from __future__ import annotations

import pytest

from gateway.qr import decode, samples
from gateway.routing import RoutingTable
from schemas.errors import NoRoute
from schemas.qr import MerchantAccount, MerchantQR

COUNTRIES = {"kakaopay-kr": "KR", "alipay-cn": "CN", "openwallet-sg": "SG"}
TABLE = RoutingTable({"com.kakaopay": "kakaopay-kr", "com.alipay": "alipay-cn", "sg.openwallet": "openwallet-sg"},
                     COUNTRIES)


def test_seoul_shared_qr_routes_to_the_first_known_template() -> None:
    qr = decode(samples.seoul())
    r = TABLE.resolve(qr, "alipay-cn")
    assert (r.wallet, r.acquirer, r.kind, r.identifier) == ("alipay-cn", "kakaopay-kr", "cross-border", "com.kakaopay")
    assert TABLE.resolve(qr, "kakaopay-kr").kind == "domestic"


def test_unknown_first_template_is_skipped() -> None:
    qr = decode(samples.seoul())
    only_alipay = RoutingTable({"com.alipay": "alipay-cn"}, COUNTRIES)
    r = only_alipay.resolve(qr, "kakaopay-kr")
    assert (r.acquirer, r.kind, r.identifier) == ("alipay-cn", "cross-border", "com.alipay")


def test_shanghai_from_a_korean_wallet_is_cross_border() -> None:
    r = TABLE.resolve(decode(samples.shanghai("15.05")), "kakaopay-kr")
    assert (r.acquirer, r.kind) == ("alipay-cn", "cross-border")


def test_tag_order_not_print_order_decides() -> None:
    qr = MerchantQR(
        merchant_accounts=[MerchantAccount(tag="27", fields={"00": "com.alipay"}),
                           MerchantAccount(tag="26", fields={"00": "com.kakaopay"})],
        mcc="5812", currency="410", country="KR", merchant_name="A", merchant_city="B",
    )
    assert TABLE.resolve(qr, "alipay-cn").acquirer == "kakaopay-kr"  # 26 before 27, though printed second


def test_alipayplus_format_routes_by_configured_identifier() -> None:
    qr = decode(samples.alipayplus())
    assert TABLE.resolve(qr, "kakaopay-kr").identifier == "com.alipay"
    specific = RoutingTable({"alipayplus:qr.alipay.com": "kakaopay-kr", "com.alipay": "alipay-cn"}, COUNTRIES)
    r = specific.resolve(qr, "kakaopay-kr")
    assert (r.acquirer, r.kind, r.identifier) == ("kakaopay-kr", "domestic", "alipayplus:qr.alipay.com")


def test_no_route_names_the_identifiers() -> None:
    with pytest.raises(NoRoute) as info:
        RoutingTable({}, COUNTRIES).resolve(decode(samples.seoul()), "alipay-cn")
    assert info.value.code == "QR_NO_ROUTE" and info.value.status == 422
    assert "com.kakaopay, com.alipay" in info.value.detail
    primitive_only = decode("00020101021129370016A000000677010111011300668012345675802TH530376463046197")
    with pytest.raises(NoRoute):
        TABLE.resolve(primitive_only, "alipay-cn")


def test_from_settings_matches_the_sandbox_topology(sandbox_env: object) -> None:
    table = RoutingTable.from_settings(sandbox_env.settings)  # type: ignore[attr-defined]
    assert table.entries == TABLE.entries and table.partner_country == COUNTRIES
