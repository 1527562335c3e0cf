"""Imports run one way: schemas <- fx <- adapters <- gateway; gateway.qr and gateway.signing are
self-contained (adapters may import gateway.signing, nothing else of gateway)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["schemas", "fx", "adapters", "gateway"]


def imports_of(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", LAYERS)
def test_a_lower_layer_never_imports_a_higher_one(package: str) -> None:
    higher = LAYERS[LAYERS.index(package) + 1 :]
    bad = []
    for path in files(package):
        for line, module in imports_of(path):
            top = module.split(".")[0]
            allowed_signing = package == "adapters" and module.startswith("gateway.signing")
            if top in higher and not allowed_signing:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert bad == []


@pytest.mark.parametrize("package", ["gateway/qr", "gateway/signing"])
def test_self_contained_packages_import_nothing_else_from_gateway(package: str) -> None:
    own = package.replace("/", ".")
    bad = []
    for path in files(package):
        for line, module in imports_of(path):
            if module.startswith("gateway") and not module.startswith(own) and module != "gateway":
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
            if module.split(".")[0] in {"fx", "adapters"}:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert bad == []
