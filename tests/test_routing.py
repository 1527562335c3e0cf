"""Routing: candidates in tag order, coverage checks before anything moves, domestic vs cross-border by
country and currency, the per-wallet policy, paused partners and the circuit breaker."""

from __future__ import annotations

import pytest

from gateway.breaker import Circuit, CircuitBreaker
from gateway.partner_status import StaticStatus
from gateway.qr import decode, encode, samples
from gateway.routing import PartnerInfo, RoutingTable
from gateway.routing_settings import BreakerSettings, RoutingPolicySettings, WalletRule
from schemas.errors import NoRoute
from schemas.qr import MerchantAccount, MerchantQR

PARTNERS = {"kakaopay-kr": PartnerInfo("KR", "KRW"), "alipay-cn": PartnerInfo("CN", "CNY"),
            "openwallet-sg": PartnerInfo("SG", "SGD")}
ENTRIES = {"com.kakaopay": "kakaopay-kr", "com.alipay": "alipay-cn", "sg.openwallet": "openwallet-sg"}
TABLE = RoutingTable(ENTRIES, PARTNERS)


def code(country: str, currency: str, *idents: str) -> MerchantQR:
    accounts = [MerchantAccount(tag=str(26 + i), fields={"00": g, "01": "M-1"}) for i, g in enumerate(idents)]
    return decode(encode(MerchantQR(merchant_accounts=accounts, mcc="5812", currency=currency, country=country,
                                    merchant_name="A", merchant_city="B")))


def test_seoul_shared_qr_routes_to_the_first_usable_template() -> None:
    qr = decode(samples.seoul())
    r = TABLE.resolve(qr, "alipay-cn")
    assert (r.wallet, r.acquirer, r.kind, r.identifier) == ("alipay-cn", "kakaopay-kr", "cross-border", "com.kakaopay")
    assert r.acquirer_country == "KR"
    assert TABLE.resolve(qr, "kakaopay-kr").kind == "domestic"


def test_a_template_whose_acquirer_does_not_serve_the_country_is_skipped() -> None:
    # The Seoul code's Alipay template goes to alipay-cn, which acquires only CN/CNY: never usable here.
    d = TABLE.evaluate(decode(samples.seoul()), "kakaopay-kr")
    assert [(c.identifier, c.reason) for c in d.candidates] == [("com.kakaopay", "chosen"),
                                                               ("com.alipay", "country_not_acquired")]


def test_impossible_route_names_each_template_and_why() -> None:
    with pytest.raises(NoRoute) as info:
        TABLE.resolve(code("KR", "410", "com.alipay", "kr.unknown"), "kakaopay-kr")
    exc = info.value
    assert exc.code == "QR_NO_ROUTE" and exc.status == 422
    assert "26 com.alipay: the acquirer does not acquire merchants of this country (alipay-cn)" in exc.detail
    assert "27 kr.unknown: this identifier is not routed here" in exc.detail
    assert [c["reason"] for c in exc.extra["candidates"]] == ["country_not_acquired", "not_routed"]


def test_currency_is_checked_too_and_coverage_can_be_widened() -> None:
    cn_in_krw = code("CN", "410", "com.alipay")
    with pytest.raises(NoRoute, match="does not acquire in this currency"):
        TABLE.resolve(cn_in_krw, "kakaopay-kr")
    wide = RoutingTable(ENTRIES, {**PARTNERS, "alipay-cn": PartnerInfo("CN", "CNY", frozenset({"CN", "KR"}),
                                                                          frozenset({"CNY", "KRW"}))})
    r = wide.resolve(code("KR", "410", "com.alipay"), "kakaopay-kr")
    # Domestic by the merchant's country and currency against the wallet's, not by who the partners are.
    assert (r.acquirer, r.kind, r.acquirer_country) == ("alipay-cn", "domestic", "KR")
    assert wide.resolve(cn_in_krw, "kakaopay-kr").kind == "cross-border"


def test_tag_order_not_print_order_decides() -> None:
    qr = MerchantQR(
        merchant_accounts=[MerchantAccount(tag="27", fields={"00": "com.alipay"}),
                           MerchantAccount(tag="26", fields={"00": "com.kakaopay"})],
        mcc="5812", currency="410", currency_alpha="KRW", country="KR", merchant_name="A", merchant_city="B",
    )
    wide = RoutingTable(ENTRIES, {**PARTNERS, "alipay-cn": PartnerInfo("CN", "CNY", frozenset({"KR"}),
                                                                          frozenset({"KRW"}))})
    assert wide.resolve(qr, "alipay-cn").acquirer == "kakaopay-kr"  # 26 before 27, though printed second


def test_alipayplus_format_routes_by_configured_identifier() -> None:
    qr = decode(samples.alipayplus())
    r = TABLE.resolve(qr, "kakaopay-kr")
    assert (r.identifier, r.acquirer_country) == ("com.alipay", "CN")
    specific = RoutingTable({"alipayplus:qr.alipay.com": "kakaopay-kr", "com.alipay": "alipay-cn"}, PARTNERS)
    r = specific.resolve(qr, "kakaopay-kr")
    assert (r.acquirer, r.kind, r.identifier) == ("kakaopay-kr", "domestic", "alipayplus:qr.alipay.com")


def test_primitive_only_code_has_no_candidate() -> None:
    primitive_only = decode("00020101021129370016A000000677010111011300668012345675802TH530376463046197")
    with pytest.raises(NoRoute, match="not routed"):
        TABLE.resolve(primitive_only, "alipay-cn")


# --- policy -----------------------------------------------------------------------------------------------
WIDE = {**PARTNERS, "alipay-cn": PartnerInfo("CN", "CNY", frozenset({"CN", "KR"}), frozenset({"CNY", "KRW"}))}


def policy_table(*rules: WalletRule, status: StaticStatus | None = None,
                 breaker: CircuitBreaker | None = None) -> RoutingTable:
    return RoutingTable(ENTRIES, WIDE, RoutingPolicySettings(wallets=list(rules)), status, breaker)


def test_no_rule_keeps_tag_order() -> None:
    d = policy_table().evaluate(decode(samples.seoul()), "alipay-cn")
    assert [(c.identifier, c.reason) for c in d.candidates] == [("com.kakaopay", "chosen"), ("com.alipay", "usable")]


def test_wallet_prefers_its_own_network_or_a_listed_template() -> None:
    own = policy_table(WalletRule(wallet="alipay-cn", prefer_own_network=True))
    d = own.evaluate(decode(samples.seoul()), "alipay-cn")
    assert [(c.identifier, c.reason) for c in d.candidates] == [("com.alipay", "chosen"), ("com.kakaopay", "usable")]
    assert d.route is not None and d.route.kind == "cross-border"  # KR/KRW merchant, CN/CNY wallet
    listed = policy_table(WalletRule(wallet="openwallet-sg", prefer=["com.alipay"]))
    assert listed.resolve(decode(samples.seoul()), "openwallet-sg").acquirer == "alipay-cn"
    assert listed.resolve(decode(samples.seoul()), "kakaopay-kr").acquirer == "kakaopay-kr"  # other wallets: tag order


def test_wallet_excludes_an_acquirer() -> None:
    t = policy_table(WalletRule(wallet="openwallet-sg", exclude=["kakaopay-kr"]))
    d = t.evaluate(decode(samples.seoul()), "openwallet-sg")
    assert [(c.identifier, c.reason) for c in d.candidates] == [("com.kakaopay", "excluded"), ("com.alipay", "chosen")]


def test_paused_acquirer_falls_through_unless_the_policy_says_not_to() -> None:
    status = StaticStatus({"kakaopay-kr"})
    d = policy_table(status=status).evaluate(decode(samples.seoul()), "openwallet-sg")
    assert [(c.identifier, c.reason) for c in d.candidates] == [("com.kakaopay", "paused"), ("com.alipay", "chosen")]
    strict = policy_table(WalletRule(wallet="openwallet-sg", fall_through=False), status=status)
    with pytest.raises(NoRoute) as info:
        strict.resolve(decode(samples.seoul()), "openwallet-sg")
    assert [c["reason"] for c in info.value.extra["candidates"]] == ["paused", "no_fall_through"]


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_breaker_opens_after_consecutive_transport_failures_then_probes_and_closes() -> None:
    clock = Clock()
    b = CircuitBreaker(BreakerSettings(failures=3, open_s=10, half_open_probes=1, probe_timeout_s=5), clock)
    for _ in range(2):
        b.observe("kakaopay-kr", "credit", "unknown")
    b.observe("kakaopay-kr", "credit", "failed")  # an answer (even a refusal) resets the count
    for _ in range(2):
        b.observe("kakaopay-kr", "credit", "unknown")
    assert b.state("kakaopay-kr") is Circuit.CLOSED
    b.observe("kakaopay-kr", "inquiry", "unknown")
    assert b.state("kakaopay-kr") is Circuit.OPEN and not b.allow("kakaopay-kr")
    clock.t += 10
    assert b.state("kakaopay-kr") is Circuit.HALF_OPEN
    assert b.would_allow("kakaopay-kr") and b.would_allow("kakaopay-kr")  # a preview takes nothing
    assert b.allow("kakaopay-kr") and not b.allow("kakaopay-kr")  # one probe at a time
    b.observe("kakaopay-kr", "credit", "unknown")  # the probe failed: open again, for open_s
    assert b.state("kakaopay-kr") is Circuit.OPEN
    clock.t += 10
    assert b.allow("kakaopay-kr")
    clock.t += 5  # the probe's outcome never came: its slot is free again
    assert b.allow("kakaopay-kr")
    b.observe("kakaopay-kr", "credit", "succeeded")
    assert b.state("kakaopay-kr") is Circuit.CLOSED and b.allow("kakaopay-kr") and b.allow("kakaopay-kr")


def test_open_circuit_falls_through_to_the_next_template_and_back() -> None:
    clock = Clock()
    b = CircuitBreaker(BreakerSettings(failures=1, open_s=30), clock)
    t = policy_table(breaker=b)
    qr = decode(samples.seoul())
    b.observe("kakaopay-kr", "credit", "unknown")
    d = t.evaluate(qr, "openwallet-sg", admit=True)
    assert [(c.identifier, c.reason) for c in d.candidates] == [("com.kakaopay", "circuit_open"),
                                                               ("com.alipay", "chosen")]
    clock.t += 30
    assert t.resolve(qr, "openwallet-sg").acquirer == "kakaopay-kr"  # preview: half-open would let it through
    assert t.resolve(qr, "openwallet-sg", admit=True).acquirer == "kakaopay-kr"  # the probe
    assert t.resolve(qr, "openwallet-sg", admit=True).acquirer == "alipay-cn"  # probe in flight: next template
    b.observe("kakaopay-kr", "credit", "succeeded")
    assert t.resolve(qr, "openwallet-sg", admit=True).acquirer == "kakaopay-kr"


def test_from_settings_matches_the_sandbox_topology(sandbox_env: object) -> None:
    table = RoutingTable.from_settings(sandbox_env.settings)  # type: ignore[attr-defined]
    assert table.entries == ENTRIES
    assert {k: (v.country, v.currency) for k, v in table.partners.items()} == {
        k: (v.country, v.currency) for k, v in PARTNERS.items()}


def test_unrouted_alipayplus_code_names_each_identifier() -> None:
    with pytest.raises(NoRoute) as info:
        RoutingTable({}, PARTNERS).resolve(decode(samples.alipayplus()), "kakaopay-kr")
    assert info.value.detail == ("no usable route for this code: alipayplus:qr.alipay.com: this identifier is not "
                                 "routed here; alipayplus: this identifier is not routed here; com.alipay: this "
                                 "identifier is not routed here")
