"""``qrgw qr``: decode (argument, stdin, image), encode (options, JSON file), render; one subprocess run."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.qr import decode, samples


def test_decode_json_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["qr", "decode", "--json", samples.shanghai("15.05")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["amount"] == "15.05" and out["amount_minor"] == 1505 and out["currency_alpha"] == "CNY"
    assert main(["qr", "decode", samples.seoul()]) == 0
    table = capsys.readouterr().out
    assert "HANGANG BBQ" in table and "com.kakaopay" in table and "KRW (410)" in table


def test_decode_stdin_one_per_line_and_problem_json(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{samples.seoul()}\n0002010102\n{samples.alipayplus()}\n"))
    assert main(["qr", "decode", "--json", "-"]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line.get("format", line.get("code")) for line in lines] == ["emvco", "QR_MALFORMED", "alipayplus"]
    assert lines[1] == {"code": "QR_MALFORMED", "detail": lines[1]["detail"], "offset": 6, "tag_path": "01"}


def test_encode_from_options_and_json_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["qr", "encode", "--template", "com.kakaopay,01=KP-M-HANGANG-0001",
                 "--template", "com.alipay,01=ALIKR-HANGANG-0001", "--mcc", "5812", "--currency", "KRW",
                 "--country", "KR", "--name", "HANGANG BBQ", "--city", "SEOUL"]) == 0
    assert capsys.readouterr().out.strip() == samples.seoul()
    src = tmp_path / "code.json"
    src.write_text(decode(samples.shanghai("15.05", reference="INV-7")).model_dump_json(), encoding="utf-8")
    assert main(["qr", "encode", "--json", str(src)]) == 0
    assert capsys.readouterr().out.strip() == samples.shanghai("15.05", reference="INV-7")
    assert main(["qr", "encode", "--template", "x", "--currency", "410", "--country", "KR", "--name", "N",
                 "--city", "C", "--mcc", "58"]) == 1
    assert json.loads(capsys.readouterr().out)["tag_path"] == "52"


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_render_and_read_back_the_image(tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]) -> None:
    payload = samples.seoul("15000", korean=True)
    out = tmp_path / f"code{suffix}"
    assert main(["qr", "render", payload, "--out", str(out)]) == 0
    assert out.stat().st_size > 0
    if suffix == ".png":
        capsys.readouterr()
        assert main(["qr", "decode", "--json", "--image", str(out)]) == 0
        assert json.loads(capsys.readouterr().out)["merchant_name"] == "한강 바베큐"


def test_installed_command_in_a_subprocess() -> None:
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "qr", "decode", "--json", "-"],
                          input="hello\n", capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert json.loads(done.stdout)["code"] == "QR_UNSUPPORTED_FORMAT"
