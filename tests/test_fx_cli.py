"""``qrgw fx quote`` / ``qrgw fx policy`` through their own argparse registration."""

from __future__ import annotations

import argparse
import json

import pytest

from gateway.cli import fx as fx_cli
from schemas.errors import ValidationFailed


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="qrgw")
    fx_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_quote_prints_what_the_payer_sees(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["fx", "quote", "--from", "KRW", "--to", "CNY", "--amount", "15000"]) == 0
    out = capsys.readouterr().out
    assert "Merchant amount : 15000 KRW" in out and "You pay         : 78.40 CNY" in out
    assert "spread 80 bps" in out and "Valid until" in out


def test_quote_json_is_the_wire_form(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["fx", "quote", "--from", "CNY", "--to", "KRW", "--amount", "15.05", "--json"]) == 0
    wire = json.loads(capsys.readouterr().out)
    # direct CNY/KRW 192.85 x 1.008 = 194.3928; 15.05 x 194.3928 = 2925.61... -> 2926 KRW
    assert wire["rate"] == "194.3928" and wire["payer_amount"] == {"currency": "KRW", "value": "2926"}


def test_amount_finer_than_the_minor_unit_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="minor unit"):
        run(["fx", "quote", "--from", "CNY", "--to", "KRW", "--amount", "15.055"])


def test_policy_prints_the_rules_in_force(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["fx", "policy", "--date", "2025-12-31"]) == 0
    old = capsys.readouterr().out
    assert run(["fx", "policy", "--date", "2026-01-01"]) == 0
    new = capsys.readouterr().out
    assert "50,000" in old and "100,000" not in old and "100,000" in new


def test_policy_shows_sources_assumed_values_and_the_time_before_any_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["fx", "policy", "--date", "2026-03-01"]) == 0
    out = capsys.readouterr().out
    assert "FX policy of KR" in out and "FX policy of CN" in out
    assert "source: FETA" in out and "[ASSUMED]" in out
    assert run(["fx", "policy", "--date", "2023-12-31"]) == 0
    assert "KR: no rule set in force yet; the first takes effect on 2024-01-01" in capsys.readouterr().out
