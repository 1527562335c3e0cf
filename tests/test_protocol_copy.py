"""docs/PROTOCOL.md is a verbatim copy of the shared wire contract (partners read either)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPY = ROOT / "docs" / "PROTOCOL.md"
SHARED = ROOT.parent / "shared" / "PROTOCOL.md"


def test_the_copy_is_the_shared_contract_when_it_stands_beside_us() -> None:
    text = COPY.read_text(encoding="utf-8")
    assert text.startswith("# qrgw partner protocol, version 1")
    if SHARED.is_file():  # CI and developers have shared/ beside the clone; a lone clone keeps the copy
        assert text == SHARED.read_text(encoding="utf-8"), "docs/PROTOCOL.md drifted from shared/PROTOCOL.md"
