"""The operators' store calls (created-time index, audit log) on memory, Redis and Redis Cluster,
and the [admin] config checks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from gateway.config import Settings
from gateway.testing.redis import StoreCase
from gateway.testing.settlement import T0, make_payment


async def test_recent_payments_newest_first_with_a_stable_cursor(store_case: StoreCase) -> None:
    st = store_case.store
    for i in range(7):
        await st.create_payment(make_payment(f"pay-{i}", wallet="alipay-cn", acquirer="kakaopay-kr",
                                             merchant_minor=1000 + i, at=T0 + timedelta(seconds=i)))
    first = await st.recent_payments(3)
    assert [pid for _, pid in first] == ["pay-6", "pay-5", "pay-4"]
    second = await st.recent_payments(3, before=first[-1])
    assert [pid for _, pid in second] == ["pay-3", "pay-2", "pay-1"]
    assert [pid for _, pid in await st.recent_payments(3, before=second[-1])] == ["pay-0"]
    since = (T0 + timedelta(seconds=5)).timestamp()
    assert [pid for _, pid in await st.recent_payments(10, since=since)] == ["pay-6", "pay-5"]


async def test_audit_log_is_append_only_newest_first_and_repeat_safe(store_case: StoreCase) -> None:
    st = store_case.store
    for i in range(5):
        await st.append_audit(f"a{i}", {"n": i})
    await st.append_audit("a4", {"n": 4})  # a repeat after a lost reply adds nothing
    page = await st.audit_page(2)
    assert [e["n"] for _, e in page] == [4, 3]
    rest = await st.audit_page(10, before=page[-1][0])
    assert [e["n"] for _, e in rest] == [2, 1, 0]
    assert await st.audit_page(10, before=rest[-1][0]) == []


def test_admin_config_refuses_shared_tokens_and_the_partner_port() -> None:
    op = {"name": "ana", "role": "viewer", "token_sha256": "a" * 64}
    with pytest.raises(ValidationError, match="share a token_sha256"):
        Settings.model_validate({"admin": {"operators": [op, {**op, "name": "bo"}]}})
    with pytest.raises(ValidationError, match="must not share the partner port"):
        Settings.model_validate({"admin": {"enabled": True, "port": 8080}, "server": {"port": 8080}})
    assert Settings.model_validate({"admin": {"enabled": True, "operators": [op]}}).admin.operators[0].name == "ana"
