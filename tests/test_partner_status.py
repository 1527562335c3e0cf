"""Paused partners: the store-backed PartnerStatus shared by every gateway process (memory and Redis)."""

from __future__ import annotations

import pytest

from gateway.partner_status import StoreStatus
from gateway.qr import decode, samples
from gateway.routing import PartnerInfo, RoutingTable
from gateway.testing.redis import StoreCase

PARTNERS = ["kakaopay-kr", "alipay-cn"]


@pytest.mark.parametrize("store_case", ["memory", "redis"], indirect=True)
async def test_a_pause_set_by_one_process_reaches_the_others_on_refresh(store_case: StoreCase) -> None:
    admin = StoreStatus(store_case.store, PARTNERS)
    other = StoreStatus(store_case.store, PARTNERS, config_paused=["alipay-cn"])
    await other.refresh()
    assert not other.paused("kakaopay-kr") and other.paused("alipay-cn")  # config flag
    await admin.set_paused("kakaopay-kr", True, reason="acquirer maintenance")
    assert admin.paused("kakaopay-kr") and not other.paused("kakaopay-kr")  # until its next refresh
    await other.refresh()
    assert other.paused("kakaopay-kr")
    table = RoutingTable({"com.kakaopay": "kakaopay-kr"}, {"kakaopay-kr": PartnerInfo("KR", "KRW")}, status=other)
    d = table.evaluate(decode(samples.seoul()), "alipay-cn")
    assert d.route is None and [c.reason for c in d.candidates] == ["paused", "not_routed"]
    await admin.set_paused("kakaopay-kr", False)
    await admin.set_paused("alipay-cn", False)  # the store cannot lift a pause the config sets
    await other.refresh()
    assert not other.paused("kakaopay-kr") and other.paused("alipay-cn")
    assert table.resolve(decode(samples.seoul()), "alipay-cn").acquirer == "kakaopay-kr"
