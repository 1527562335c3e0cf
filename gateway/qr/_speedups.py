"""Which EMVCo fast path runs: the mypyc-compiled ``_scan`` when the install built it, else none.

``setup.py`` compiles ``gateway/qr/_scan.py`` with mypyc when it can (a C compiler, and
``QRGW_NO_MYPYC`` unset). The compiled scanner decodes well-formed payloads about four times faster
than the reference decoder; interpreted, the same code is slower than the reference (it is written
for mypyc: ``ord`` per character, many locals), so a pure install decodes with the reference alone.

``PATH`` says which one runs ("compiled" or "pure") and ``REASON`` why; ``pure_scan()`` loads the
interpreted ``_scan.py`` whatever was built, so tests can compare both on the same payloads.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from types import ModuleType
from typing import Any

from gateway.qr._common import CURRENCIES
from gateway.qr.tree import finish
from schemas.qr import AdditionalData, LanguageTemplate, MerchantAccount, MerchantQR

SOURCE = Path(__file__).with_name("_scan.py")
# A compiled module older than its source (edited since the build) would silently run old code.
_STALE_AFTER = 2.0  # seconds: a wheel install writes both files within this


class Finishing:
    """A ``Scanner`` whose accepted models get the derived tree (``gateway.qr.tree.finish``) that the
    reference decoder adds too: the compiled scan stays a pure structure reader."""

    def __init__(self, scanner: Any) -> None:
        self.scanner = scanner

    def emvco(self, payload: object) -> MerchantQR | None:
        qr: MerchantQR | None = self.scanner.emvco(payload)
        return finish(qr) if qr is not None else None


def scanner_of(module: ModuleType) -> Finishing:
    """A ``Scanner`` of ``module`` bound to the codec's models and ISO 4217 table, finishing its models."""
    return Finishing(module.Scanner(MerchantQR, MerchantAccount, AdditionalData, LanguageTemplate, CURRENCIES))


def pure_scan() -> ModuleType:
    """``_scan.py`` interpreted, under its own name (never the compiled module)."""
    spec = importlib.util.spec_from_file_location("gateway.qr._scan_pure", SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compiled_scan() -> tuple[ModuleType | None, str]:
    """The compiled ``_scan`` module if one is built, current and enabled, and why (not)."""
    if os.environ.get("QRGW_NO_MYPYC"):
        return None, "QRGW_NO_MYPYC is set"
    built = [p for p in (SOURCE.with_name(f"_scan{s}") for s in EXTENSION_SUFFIXES) if p.exists()]
    if not built:
        return None, "no compiled gateway/qr/_scan (pip install -e . builds it when a C compiler is present)"
    if SOURCE.exists() and SOURCE.stat().st_mtime > built[0].stat().st_mtime + _STALE_AFTER:
        return None, f"{built[0].name} is older than _scan.py (rebuild: pip install -e .)"
    try:
        module = importlib.import_module("gateway.qr._scan")
    except ImportError as exc:
        return None, f"compiled gateway/qr/_scan does not load: {exc}"
    if not str(module.__file__).endswith(tuple(EXTENSION_SUFFIXES)):
        return None, "gateway.qr._scan was imported from source"
    return module, f"mypyc-compiled {Path(str(module.__file__)).name}"


def _fast_path() -> tuple[Callable[[str], Any] | None, str, str]:
    module, reason = compiled_scan()
    if module is None:
        return None, "pure", reason
    return scanner_of(module).emvco, "compiled", reason


FAST_EMVCO, PATH, REASON = _fast_path()
