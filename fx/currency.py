"""ISO 4217 currencies (alpha, numeric, minor-unit exponent) from the maintained ``iso4217`` package.

Every active currency of the published table is known. A currency without minor units in
ISO 4217 (metals, SDR, test codes: XAU, XDR, XTS ...) is *known* but not *payable*: money in it
cannot be expressed as integer minor units, so ``exponent`` refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import iso4217

from schemas.errors import FXError

__all__ = ["CurrencyInfo", "by_numeric", "currencies", "exponent", "info", "is_known", "is_payable"]


@dataclass(frozen=True, slots=True)
class CurrencyInfo:
    alpha: str
    numeric: str  # three digits, zero-padded ("036" for AUD), as in EMVCo tag 53
    exponent: int | None  # None: no minor unit (not payable)
    name: str


def _load() -> tuple[dict[str, CurrencyInfo], dict[str, str]]:
    by_alpha: dict[str, CurrencyInfo] = {}
    by_num: dict[str, str] = {}
    for cur in iso4217.Currency:
        ci = CurrencyInfo(cur.code, f"{cur.number:03d}", cur.exponent, cur.currency_name)
        by_alpha[ci.alpha] = ci
        by_num[ci.numeric] = ci.alpha
    return by_alpha, by_num


_BY_ALPHA, _BY_NUMERIC = _load()
CURRENCIES = MappingProxyType(_BY_ALPHA)
PUBLISHED = str(iso4217.__published__)  # date of the ISO table the package ships


def currencies() -> MappingProxyType[str, CurrencyInfo]:
    """Every known currency by alpha code (read-only)."""
    return CURRENCIES


def is_known(code: str) -> bool:
    return code in _BY_ALPHA


def is_payable(code: str) -> bool:
    ci = _BY_ALPHA.get(code)
    return ci is not None and ci.exponent is not None


def info(code: str) -> CurrencyInfo:
    """The currency ``code``; FXError ``CURRENCY_UNSUPPORTED`` when unknown."""
    ci = _BY_ALPHA.get(code)
    if ci is None:
        raise FXError(f"currency {code!r} is not an active ISO 4217 currency")
    return ci


def exponent(code: str) -> int:
    """Minor-unit exponent (KRW 0, USD 2, KWD 3); refuses unknown and non-payable currencies."""
    ci = info(code)
    if ci.exponent is None:
        raise FXError(f"currency {code} has no minor unit and is not payable")
    return ci.exponent


def by_numeric(num: str) -> str:
    """Alpha code of a numeric code (``"410"`` → ``"KRW"``); accepts unpadded digits."""
    key = num.strip().zfill(3)
    alpha = _BY_NUMERIC.get(key) if key.isdigit() and len(key) == 3 else None
    if alpha is None:
        raise FXError(f"numeric currency code {num!r} is not an active ISO 4217 currency")
    return alpha
