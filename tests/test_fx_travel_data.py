"""Travel-rule data after the policy accepted it: masked in every log line, written in full in
the regulatory extract (with the fields the policy required)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

from gateway.logging import configure_logging, get_logger, mask_payer
from gateway.settlement.fxreport import fx_report_csv
from gateway.testing.settlement import make_payment
from schemas.payment import Payer

PAYER = Payer(
    id="cn-88121", residency="non-resident", country="CN", name="Wang Fang", account="6222-0210-8812",
    address="1 Century Ave, Shanghai", date_of_birth=date(1990, 5, 4), national_id_hash="d" * 64,
)
REQUIRED = ["name", "account", "address|date_of_birth|national_id_hash"]


def test_travel_rule_data_is_masked_in_logs_wherever_it_appears() -> None:
    buf = io.StringIO()
    configure_logging("DEBUG", "json", stream=buf)
    payer = PAYER.model_dump(mode="json")
    get_logger("t").info("payment", payer=payer, record={"payer": payer}, payer_name="Wang Fang")
    out = buf.getvalue()
    for leaked in ("Wang Fang", "6222-0210-8812", "Century", "1990-05-04", "d" * 64, "cn-88121"):
        assert leaked not in out, leaked
    (line,) = [json.loads(x) for x in out.splitlines()]
    assert line["payer"]["name"] == mask_payer("Wang Fang") == line["record"]["payer"]["name"]
    assert line["payer"]["country"] == "CN" and line["payer"]["residency"] == "non-resident"


def test_the_regulatory_extract_carries_the_travel_rule_data() -> None:
    rec = make_payment(
        "pay-1", wallet="alipay-cn", acquirer="kakaopay-kr", merchant_minor=15_000_000, day="2026-03-02",
        flags=["travel_rule", "cdd_required", "report"], payer=PAYER,
        reservation={"travel_rule": REQUIRED, "usd_equivalent": {"currency": "USD", "value": "1500000"}},
    )
    (row,) = csv.DictReader(io.StringIO(fx_report_csv([rec], "2026-03-02", {})))
    assert (row["payer_name"], row["payer_account"], row["payer_address"]) == (
        "Wang Fang", "6222-0210-8812", "1 Century Ave, Shanghai"
    )
    assert row["payer_date_of_birth"] == "1990-05-04" and row["payer_national_id_hash"] == "d" * 64
    assert row["travel_rule_fields"] == " ".join(REQUIRED) and row["usd_source"] == "policy"
    # an account the wallet did not name is its payer id (the wallet's reference of the account)
    bare = PAYER.model_copy(update={"account": None})
    rec2 = rec.model_copy(update={"payer": bare})
    (row2,) = csv.DictReader(io.StringIO(fx_report_csv([rec2], "2026-03-02", {})))
    assert row2["payer_account"] == "cn-88121"
