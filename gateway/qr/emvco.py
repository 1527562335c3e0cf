"""EMVCo merchant-presented mode: decode and encode (PROTOCOL.md §4, EMVCo QRCPS MPM v1.1).

One hand-written pass over the ``str`` (lengths count characters), then the CRC over the UTF-8
bytes (``binascii.crc_hqx`` is CRC-16/CCITT-FALSE with init 0xFFFF), then field checks. Errors
are ``QRError`` with the character ``offset`` of the offending data object and its ``tag_path``.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.qr._common import CURRENCIES, HEAD, build, crc16, fail
from gateway.qr._speedups import FAST_EMVCO
from gateway.qr.tree import finish
from schemas.errors import QRError
from schemas.qr import ADDITIONAL_DATA_NAMES, AdditionalData, LanguageTemplate, MerchantAccount, MerchantQR

_HEX = frozenset("0123456789ABCDEFabcdef")
_AMOUNT = re.compile(r"(?=.{1,13}\Z)(?=[^.]*[0-9])[0-9]*\.?[0-9]*\Z", re.ASCII)
_DIGITS = re.compile(r"[0-9]+\Z", re.ASCII)
_COUNTRY = re.compile(r"[A-Z]{2}\Z", re.ASCII)
_NAMES_BY_TAG = ADDITIONAL_DATA_NAMES
_TAGS_BY_NAME = {v: k for k, v in ADDITIONAL_DATA_NAMES.items()}
_LANG = {"00": "language_preference", "01": "merchant_name", "02": "merchant_city"}
# Top-level id -> what to do with it: 0 named field, 1 primitive account (02-25), 2 account template
# (26-51), 3 additional data (62), 4 language template (64), 5 unreserved (80-99), 6 kept verbatim.
_KIND: dict[str, int] = {
    f"{t:02d}": 0 if t in (0, 1, 63) or 52 <= t <= 61 else 1 if t <= 25 else 2 if t <= 51 else
    3 if t == 62 else 4 if t == 64 else 5 if t >= 80 else 6
    for t in range(100)
}
_POI = {"11": "static", "12": "dynamic"}
_SIMPLE = {
    "52": "mcc",
    "53": "currency",
    "54": "amount",
    "55": "tip_indicator",
    "56": "convenience_fee_fixed",
    "57": "convenience_fee_percentage",
    "58": "country",
    "59": "merchant_name",
    "60": "merchant_city",
    "61": "postal_code",
}


def scan(s: str, path: str) -> dict[str, str]:
    """The data objects of the template value ``s`` in order; ``path`` names it. Error offsets are
    relative to ``s``: callers add the template's position (see ``sub``)."""
    out: dict[str, str] = {}
    i, end = 0, len(s)
    while i < end:
        n = HEAD.get(s[i : i + 4])
        if n is None:
            raise fail("QR_MALFORMED", f"{path}: no data object (2-digit id, 2-digit length) where one starts",
                       i, path)
        j = i + 4 + n
        tag = s[i : i + 2]
        if j > end:
            raise fail("QR_MALFORMED", f"{path}.{tag}: length {n} runs past the end of {path}", i, f"{path}.{tag}")
        if tag in out:
            raise fail("QR_MALFORMED", f"{path}.{tag} appears twice", i, f"{path}.{tag}")
        out[tag] = s[i + 4 : j]
        i = j
    return out


def sub(p: str, tag: str, val: str) -> dict[str, str]:
    """``scan`` of the top-level template ``tag``, error offsets made absolute."""
    try:
        return scan(val, tag)
    except QRError as exc:
        exc.extra["offset"] += offsets(p)[tag] + 4
        raise


def _order(tags: list[str]) -> list[str] | None:
    return None if tags == sorted(tags) else tags


def to_minor(amount: str, exponent: int) -> int | None:
    """Minor units of a printed amount, or None when it is finer than the currency allows."""
    whole, _, frac = amount.partition(".")
    if len(frac) > exponent:
        if frac[exponent:].strip("0"):
            return None
        frac = frac[:exponent]
    scale: int = 10**exponent
    return int(whole or "0") * scale + int(frac.ljust(exponent, "0") or "0")


def offsets(p: str) -> dict[str, int]:
    """Offsets of the top-level data objects of a structurally valid payload (error paths only)."""
    out: dict[str, int] = {}
    i = 0
    while i < len(p):
        out[p[i : i + 2]] = i
        i += 4 + HEAD[p[i : i + 4]]
    return out


def decode_emvco(p: str) -> MerchantQR:
    """Decode an EMVCo MPM payload (it starts with ``00``) or raise ``QRError``."""
    if FAST_EMVCO is not None:
        qr: MerchantQR | None = FAST_EMVCO(p)
        if qr is not None:
            return qr
    return decode_checked(p)


def decode_checked(p: str) -> MerchantQR:
    """The reference decoder: every check in order, and the exact error of the first that fails.

    The compiled fast path (``_scan``, see ``_speedups``) accepts only payloads this accepts, with
    an equal model; anything else it hands here."""
    objs: dict[str, str] = {}
    i, end = 0, len(p)
    head = HEAD.get
    while i < end:  # the hot loop: one lookup validates id and length, offsets only on error paths
        n = head(p[i : i + 4])
        if n is None:
            raise fail("QR_MALFORMED", f"no data object (2-digit id, 2-digit length) at offset {i}", i)
        j = i + 4 + n
        tag = p[i : i + 2]
        if j > end:
            raise fail("QR_MALFORMED", f"data object {tag}: length {n} runs past the end of the payload", i, tag)
        if tag in objs:
            raise fail("QR_MALFORMED", f"data object {tag} appears twice", i, tag)
        objs[tag] = p[i + 4 : j]
        i = j
    crc = objs.pop("63", None)
    if crc is None:
        raise fail("QR_MISSING_FIELD", "CRC (tag 63) is missing", end, "63")
    at = end - 8
    if p[at : at + 2] != "63" or len(crc) != 4:
        offs = offsets(p)
        if len(crc) != 4:
            raise fail("QR_INVALID_FIELD", "CRC (tag 63) must be four hexadecimal digits", offs["63"], "63")
        after = next(t for t, o in offs.items() if o > offs["63"])
        raise fail("QR_MALFORMED", f"data object {after} follows the CRC (63), which must come last",
                   offs[after], after)
    if not _HEX.issuperset(crc):
        raise fail("QR_INVALID_FIELD", "CRC (tag 63) must be four hexadecimal digits", at, "63")
    try:
        expected = crc16(p[: at + 4])
    except UnicodeEncodeError as exc:
        raise fail("QR_MALFORMED", f"character at offset {exc.start} cannot be encoded", exc.start) from None
    if crc != expected and crc.upper() != expected:
        raise fail("QR_CRC_MISMATCH", f"CRC is {crc}, the payload's is {expected}", at + 4, "63")
    return finish(_fields(p, objs, crc))  # the derived tree, profiles and warnings (gateway.qr.tree)


def _fields(p: str, objs: dict[str, str], crc: str) -> MerchantQR:
    pfi = objs["00"]
    if pfi != "01":
        code = "QR_UNSUPPORTED_FORMAT" if len(pfi) == 2 and _DIGITS.match(pfi) else "QR_INVALID_FIELD"
        raise fail(code, f"payload format indicator is {pfi!r}, this decoder reads version 01", 0, "00")
    raw_poi = objs.get("01")
    poi = None
    if raw_poi is not None:
        poi = _POI.get(raw_poi)
        if poi is None:
            raise fail("QR_INVALID_FIELD", f"point of initiation must be 11 or 12, not {raw_poi!r}",
                       offsets(p)["01"], "01")
    accounts: list[MerchantAccount] = []
    unreserved: dict[str, str] = {}
    other: dict[str, str] = {}
    additional = language = None
    for tag, val in objs.items():
        kind = _KIND[tag]
        if kind == 0:  # named above or below
            continue
        if kind == 1:
            accounts.append(build(MerchantAccount, {"tag": tag, "value": val, "fields": None}))
        elif kind == 2:
            fields = sub(p, tag, val)
            if "00" not in fields:
                raise fail("QR_MISSING_FIELD", f"template {tag} has no globally unique identifier (00)",
                           offsets(p)[tag], f"{tag}.00")
            accounts.append(build(MerchantAccount, {"tag": tag, "value": None, "fields": fields}))
        elif kind == 3:
            additional = _additional(p, val)
        elif kind == 4:
            language = _language(p, val)
        elif kind == 5:
            unreserved[tag] = val
        else:
            other[tag] = val
    get = objs.get
    mcc, cur, amount, country = get("52"), get("53"), get("54"), get("58")
    name, city = get("59"), get("60")
    if not (cur and country and accounts):
        raise _missing(p, objs)
    assert cur is not None and country is not None
    # 3 digits: a known QRIS deviation, tolerated with a warning (it cannot change payee or amount).
    if mcc is not None and (len(mcc) not in (3, 4) or not _DIGITS.match(mcc)):
        raise fail("QR_INVALID_FIELD", "merchant category code (52) must be 4 digits", offsets(p)["52"], "52")
    currency = CURRENCIES.get(cur)
    if currency is None:
        raise fail("QR_INVALID_FIELD", f"currency (53) {cur!r} is not an ISO 4217 numeric code",
                   offsets(p)["53"], "53")
    minor = None
    if amount is not None:
        minor = to_minor(amount, currency[1]) if _AMOUNT.match(amount) else -1
        if minor is None or minor < 0:
            raise fail("QR_INVALID_FIELD", f"amount (54) must be 1-13 characters of digits and one '.', "
                       f"no finer than {currency[0]}'s {currency[1]} decimals", offsets(p)["54"], "54")
    tip, fixed, pct = get("55"), get("56"), get("57")
    if tip is not None or fixed is not None or pct is not None:
        _tip(p, tip, fixed, pct)
    if len(country) != 2 or not _COUNTRY.match(country):
        raise fail("QR_INVALID_FIELD", "country code (58) must be ISO 3166 alpha-2", offsets(p)["58"], "58")
    tags = list(objs)
    return build(MerchantQR, {
        "format": "emvco", "payload_format_indicator": pfi, "point_of_initiation": poi,
        "merchant_accounts": accounts, "mcc": mcc, "currency": cur, "currency_alpha": currency[0],
        "amount": amount, "amount_minor": minor, "tip_indicator": tip, "convenience_fee_fixed": fixed,
        "convenience_fee_percentage": pct, "country": country, "merchant_name": name, "merchant_city": city,
        "postal_code": get("61"), "additional_data": additional, "language": language,
        "unreserved": unreserved, "other": other, "crc": crc, "order": None if tags == sorted(tags) else tags,
    })


def _missing(p: str, objs: dict[str, str]) -> QRError:
    for tag, what in (("53", "transaction currency"), ("58", "country code")):
        if not objs.get(tag):
            return fail("QR_MISSING_FIELD", f"{what} (tag {tag}) is missing", offsets(p).get(tag, len(p)), tag)
    return fail("QR_MISSING_FIELD", "no merchant account information (tags 02-51)", offsets(p)["53"], "02")


def _tip(p: str, tip: str | None, fixed: str | None, pct: str | None) -> None:
    if tip is not None:
        if tip not in ("01", "02", "03"):
            raise fail("QR_INVALID_FIELD", "tip or convenience indicator (55) must be 01, 02 or 03",
                       offsets(p)["55"], "55")
        if tip == "02" and fixed is None:
            raise fail("QR_MISSING_FIELD", "indicator 55=02 needs the fixed fee (56)", offsets(p)["55"], "56")
        if tip == "03" and pct is None:
            raise fail("QR_MISSING_FIELD", "indicator 55=03 needs the percentage fee (57)", offsets(p)["55"], "57")
    for tag, val in (("56", fixed), ("57", pct)):
        if val is not None and not _AMOUNT.match(val):
            raise fail("QR_INVALID_FIELD", f"convenience fee ({tag}) must be digits and one '.'", offsets(p)[tag], tag)


def _additional(p: str, val: str) -> AdditionalData:
    fields = sub(p, "62", val)
    d: dict[str, Any] = dict.fromkeys(_TAGS_BY_NAME)
    other: dict[str, str] = {}
    for tag, v in fields.items():
        name = _NAMES_BY_TAG.get(tag)
        if name is None:
            other[tag] = v
        else:
            d[name] = v
    d["other"], d["order"] = other, _order(list(fields))
    return build(AdditionalData, d)


def _language(p: str, val: str) -> LanguageTemplate:
    fields = sub(p, "64", val)
    for tag in ("00", "01"):
        if not fields.get(tag):
            raise fail("QR_MISSING_FIELD", f"language template (64) needs sub-tag {tag}", offsets(p)["64"], f"64.{tag}")
    d: dict[str, Any] = {"language_preference": None, "merchant_name": None, "merchant_city": None}
    other: dict[str, str] = {}
    for tag, v in fields.items():
        name = _LANG.get(tag)
        if name is None:
            other[tag] = v
        else:
            d[name] = v
    d["other"], d["order"] = other, _order(list(fields))
    return build(LanguageTemplate, d)


# --- encoding -----------------------------------------------------------------------------------------
def tlv(tag: str, value: str, path: str) -> str:
    n = len(value)
    if n > 99:
        raise fail("QR_INVALID_FIELD", f"{path}: value of {n} characters (at most 99)", 0, path)
    return f"{tag}{n:02d}{value}"


def _join(items: dict[str, str], order: list[str] | None, path: str) -> str:
    tags = order if order is not None else sorted(items)
    if sorted(tags) != sorted(items):
        raise fail("QR_INVALID_FIELD", f"{path}: order {tags} does not list exactly the tags present", 0, path)
    prefix = f"{path}." if path else ""
    return "".join(tlv(t, items[t], prefix + t) for t in tags)


def _sub(fields: dict[str, str], path: str) -> str:
    return "".join(tlv(t, v, f"{path}.{t}") for t, v in fields.items())


def encode_emvco(qr: MerchantQR) -> str:
    """The payload of ``qr``: in ``qr.order`` (else ascending tags), with its CRC; checked by decoding."""
    items: dict[str, str] = {"00": qr.payload_format_indicator}
    if qr.point_of_initiation is not None:
        items["01"] = "12" if qr.point_of_initiation == "dynamic" else "11"
    for acct in qr.merchant_accounts:
        items[acct.tag] = _sub(acct.fields, acct.tag) if acct.fields is not None else (acct.value or "")
    for tag, name in _SIMPLE.items():
        val = getattr(qr, name)
        if val is not None:
            items[tag] = val
    ad = qr.additional_data
    if ad is not None:
        sub = {t: getattr(ad, n) for t, n in _NAMES_BY_TAG.items() if getattr(ad, n) is not None}
        items["62"] = _join({**sub, **ad.other}, ad.order, "62")
    lang = qr.language
    if lang is not None:
        sub = {t: getattr(lang, n) for t, n in _LANG.items() if getattr(lang, n) is not None}
        items["64"] = _join({**sub, **lang.other}, lang.order, "64")
    items.update(qr.unreserved)
    items.update(qr.other)
    items.pop("63", None)
    body = _join(items, qr.order, "") + "6304"
    try:
        crc = crc16(body)
    except UnicodeEncodeError as exc:
        raise fail("QR_INVALID_FIELD", "a value holds a character UTF-8 cannot encode", exc.start) from None
    out = body + (qr.crc if qr.crc is not None and qr.crc.upper() == crc else crc)
    try:
        decode_emvco(out)
    except QRError as exc:
        raise QRError(f"cannot encode: {exc.detail}", code=exc.code, **exc.extra) from None
    return out
