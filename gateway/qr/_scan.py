"""The fast path of EMVCo decoding: accept a well-formed payload and build its model, or say "not sure".

``Scanner.emvco(p)`` returns the decoded ``MerchantQR`` of a payload that ``emvco.decode_checked`` would
accept, equal to what that returns, or ``None`` for anything else (including odd-but-valid payloads it
does not bother with, e.g. a CRC object that is not the last one); the caller then runs the reference
decoder, which raises the exact ``QRError``. So error codes, offsets and tag paths come from one place,
and this module only has to be right about what it accepts (tests/test_qr_speedups.py compares both).

Plain typed Python that mypyc compiles when the build can (setup.py; ``QRGW_NO_MYPYC=1`` opts out): it
imports nothing but ``binascii``, so the model classes and the ISO 4217 table are handed to ``Scanner``.
"""

from __future__ import annotations

from binascii import crc_hqx
from typing import Any, Final

# Tag number -> its two-digit id: dict keys without slicing them out of the payload.
TAGS: Final[tuple[str, ...]] = tuple(f"{t:02d}" for t in range(100))
# Sub-tags of 62 (EMVCo MPM §4.8) and 64 -> the model's field names (same as schemas.qr).
ADDITIONAL: Final[dict[str, str]] = {
    "01": "bill_number", "02": "mobile_number", "03": "store_label", "04": "loyalty_number",
    "05": "reference_label", "06": "customer_label", "07": "terminal_label", "08": "purpose_of_transaction",
    "09": "consumer_data_request",
}
LANGUAGE: Final[dict[str, str]] = {"00": "language_preference", "01": "merchant_name", "02": "merchant_city"}

_new: Final = object.__new__


def head(p: str, i: int, end: int) -> int:
    """The header at ``i`` (2-digit id, 2-digit length) as ``id * 100 + length``, or -1."""
    if i + 4 > end:
        return -1
    a = ord(p[i]) - 48
    b = ord(p[i + 1]) - 48
    c = ord(p[i + 2]) - 48
    d = ord(p[i + 3]) - 48
    if a < 0 or a > 9 or b < 0 or b > 9 or c < 0 or c > 9 or d < 0 or d > 9:
        return -1
    return a * 1000 + b * 100 + c * 10 + d


def scan(p: str, i: int, end: int) -> dict[str, str] | None:
    """The data objects of the template value ``p[i:end]`` in printed order, or None if malformed."""
    out: dict[str, str] = {}
    tags = TAGS
    while i < end:
        h = head(p, i, end)
        j = i + 4 + h % 100
        if h < 0 or j > end:
            return None
        tag = tags[h // 100]
        if tag in out:
            return None
        out[tag] = p[i + 4 : j]
        i = j
    return out


def top_ids(p: str) -> list[str]:
    """The ids of a well-formed payload's data objects in printed order."""
    out: list[str] = []
    i = 0
    end = len(p)
    while i < end:
        h = head(p, i, end)
        out.append(TAGS[h // 100])
        i += 4 + h % 100
    return out


def hexval(c: int) -> int:
    """The value of the hexadecimal digit with code point ``c`` (either case), or -1."""
    if 48 <= c <= 57:
        return c - 48
    if 65 <= c <= 70:
        return c - 55
    if 97 <= c <= 102:
        return c - 87
    return -1


def digits(s: str, start: int, end: int) -> bool:
    """``s[start:end]`` is one or more ASCII digits."""
    if start >= end:
        return False
    for k in range(start, end):
        c = ord(s[k])
        if c < 48 or c > 57:
            return False
    return True


def amount_ok(a: str) -> bool:
    """emvco._AMOUNT: at most 13 characters, ASCII digits, then optionally '.' and ASCII digits."""
    n = len(a)
    if n > 13:
        return False
    dot = a.find(".")
    if dot < 0:
        return digits(a, 0, n)
    return digits(a, 0, dot) and (dot + 1 == n or digits(a, dot + 1, n))


def minor_units(amount: str, exponent: int) -> int:
    """Minor units of an ``amount_ok`` amount, or -1 when it is finer than the currency allows."""
    value = 0
    frac = -1  # decimals taken after the '.'
    for k in range(len(amount)):
        c = ord(amount[k])
        if c == 46:
            frac = 0
        elif frac < 0:
            value = value * 10 + c - 48
        elif frac < exponent:
            value = value * 10 + c - 48
            frac += 1
        elif c != 48:  # a non-zero decimal beyond the currency's exponent
            return -1
    scale: int = 10 ** (exponent - max(frac, 0))
    return value * scale


def _model(cls: Any, d: dict[str, Any], fields_set: frozenset[str]) -> Any:
    """An instance of pydantic model ``cls`` holding ``d`` as is (the caller validated it)."""
    obj = _new(cls)
    object.__setattr__(obj, "__dict__", d)
    object.__setattr__(obj, "__pydantic_fields_set__", set(fields_set))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


def _named(fields: dict[str, str], d: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """Fill ``d`` from a template's sub-tags: named ones by name, the rest kept in ``other``, and
    ``order`` recorded only when the sub-tags were printed out of ascending order."""
    other: dict[str, str] = {}
    prev = ""
    asc = True
    for tag, v in fields.items():
        name = names.get(tag)
        if name is None:
            other[tag] = v
        else:
            d[name] = v
        if tag < prev:
            asc = False
        prev = tag
    d["other"] = other
    d["order"] = None if asc else list(fields)
    return d


class Scanner:
    """Decodes well-formed EMVCo payloads into the given pydantic model classes (built without
    re-validation: the same ``__dict__`` and fields-set that ``_common.build`` gives)."""

    def __init__(self, qr: Any, account: Any, additional: Any, language: Any,
                 currencies: dict[str, tuple[str, int]]) -> None:
        self.qr = qr
        self.account = account
        self.additional = additional
        self.language = language
        self.currencies = currencies
        self.qr_fields = frozenset(qr.model_fields)
        self.account_fields = frozenset(account.model_fields)
        self.additional_fields = frozenset(additional.model_fields)
        self.language_fields = frozenset(language.model_fields)

    def emvco(self, payload: object) -> Any:
        """The ``MerchantQR`` of ``payload``, or None when the reference decoder must decide (anything
        but a ``str`` that starts with tag 00 included: ``decode`` calls this first)."""
        if not isinstance(payload, str):
            return None
        p: str = payload
        tags = TAGS
        pfi: str | None = None
        poi: str | None = None
        mcc: str | None = None
        cur: str | None = None
        amount: str | None = None
        tip: str | None = None
        fixed: str | None = None
        pct: str | None = None
        country: str | None = None
        name: str | None = None
        city: str | None = None
        postal: str | None = None
        crc: str | None = None
        accounts: list[Any] = []
        unreserved: dict[str, str] = {}
        other: dict[str, str] = {}
        additional: Any = None
        language: Any = None
        seen_lo = 0  # bit t: id t (0-49) seen; duplicates are for the reference to report
        seen_hi = 0  # bit t - 50: id t (50-99) seen
        prev = -1
        asc = True  # ids ascending so far
        asc_before = True  # ... before the last one (the CRC, which ``order`` leaves out)
        at = 0  # where the last object starts
        end = len(p)
        i = 0
        while i < end:
            h = head(p, i, end)
            j = i + 4 + h % 100
            if h < 0 or j > end:
                return None
            t = h // 100
            if t < 50:
                if seen_lo >> t & 1:
                    return None
                seen_lo |= 1 << t
            else:
                if seen_hi >> (t - 50) & 1:
                    return None
                seen_hi |= 1 << (t - 50)
            tag = tags[t]
            asc_before = asc
            if t < prev:
                asc = False
            elif prev < 0 and t != 0:  # decode reads only payloads that start with 00
                return None
            prev = t
            at = i
            if t <= 1:
                if t == 0:
                    pfi = p[i + 4 : j]
                else:
                    poi = p[i + 4 : j]
            elif t <= 25:
                accounts.append(self._account(tag, p[i + 4 : j], None))
            elif t <= 51:
                fields = scan(p, i + 4, j)
                if fields is None or "00" not in fields:
                    return None
                accounts.append(self._account(tag, None, fields))
            elif t <= 61:
                v = p[i + 4 : j]
                if t == 52:
                    mcc = v
                elif t == 53:
                    cur = v
                elif t == 54:
                    amount = v
                elif t == 55:
                    tip = v
                elif t == 56:
                    fixed = v
                elif t == 57:
                    pct = v
                elif t == 58:
                    country = v
                elif t == 59:
                    name = v
                elif t == 60:
                    city = v
                else:
                    postal = v
            elif t == 62:
                additional = self._additional(p, i + 4, j)
                if additional is None:
                    return None
            elif t == 63:
                crc = p[i + 4 : j]
            elif t == 64:
                language = self._language(p, i + 4, j)
                if language is None:
                    return None
            elif t >= 80:
                unreserved[tag] = p[i + 4 : j]
            else:
                other[tag] = p[i + 4 : j]
            i = j
        # The CRC must be the last object, 6304 + 4 hex digits (other shapes: the reference decides).
        if prev != 63 or at != end - 8 or crc is None:
            return None
        given = 0
        for k in range(end - 4, end):
            v16 = hexval(ord(p[k]))
            if v16 < 0:
                return None
            given = given * 16 + v16
        try:
            if crc_hqx(p[: end - 4].encode(), 0xFFFF) != given:
                return None
        except UnicodeEncodeError:
            return None
        if pfi != "01":
            return None
        if poi is not None:
            if poi == "12":
                poi = "dynamic"
            elif poi == "11":
                poi = "static"
            else:
                return None
        if not cur or not country or not accounts:
            return None
        if len(country) != 2 or not (65 <= ord(country[0]) <= 90 and 65 <= ord(country[1]) <= 90):
            return None
        if mcc is not None and not (len(mcc) == 4 and digits(mcc, 0, 4)):
            return None
        currency = self.currencies.get(cur)
        if currency is None:
            return None
        minor: int | None = None
        if amount is not None:
            if not amount_ok(amount):
                return None
            minor = minor_units(amount, currency[1])
            if minor < 0:
                return None
        if tip is not None or fixed is not None or pct is not None:
            if tip is not None and not (tip == "01" or (tip == "02" and fixed is not None)
                                        or (tip == "03" and pct is not None)):
                return None
            if (fixed is not None and not amount_ok(fixed)) or (pct is not None and not amount_ok(pct)):
                return None
        return _model(self.qr, {
            "format": "emvco", "payload_format_indicator": "01", "point_of_initiation": poi,
            "merchant_accounts": accounts, "mcc": mcc, "currency": cur, "currency_alpha": currency[0],
            "amount": amount, "amount_minor": minor, "tip_indicator": tip, "convenience_fee_fixed": fixed,
            "convenience_fee_percentage": pct, "country": country, "merchant_name": name,
            "merchant_city": city, "postal_code": postal, "additional_data": additional,
            "language": language, "unreserved": unreserved, "other": other, "crc": crc,
            "order": None if asc_before else top_ids(p)[:-1],  # without the CRC
        }, self.qr_fields)

    def _account(self, tag: str, value: str | None, fields: dict[str, str] | None) -> Any:
        return _model(self.account, {"tag": tag, "value": value, "fields": fields}, self.account_fields)

    def _additional(self, p: str, i: int, end: int) -> Any:
        fields = scan(p, i, end)
        if fields is None:
            return None
        d: dict[str, Any] = {
            "bill_number": None, "mobile_number": None, "store_label": None, "loyalty_number": None,
            "reference_label": None, "customer_label": None, "terminal_label": None,
            "purpose_of_transaction": None, "consumer_data_request": None,
        }
        return _model(self.additional, _named(fields, d, ADDITIONAL), self.additional_fields)

    def _language(self, p: str, i: int, end: int) -> Any:
        fields = scan(p, i, end)
        if fields is None or not fields.get("00") or not fields.get("01"):
            return None
        d: dict[str, Any] = {"language_preference": None, "merchant_name": None, "merchant_city": None}
        return _model(self.language, _named(fields, d, LANGUAGE), self.language_fields)
