"""The EMVCo fast path (gateway/qr/_scan.py, interpreted and, when built, mypyc-compiled) against the reference.

For every payload: whatever the fast path accepts, the reference decoder accepts with an identical model
(same ``__dict__`` in the same key order, same fields-set, nested models too); whatever it returns None for
goes to the reference, so errors always come from the reference. The compiled module, when this install built
one, must give exactly what the interpreted source gives. And ``decode`` answers what the reference answers.
"""

from __future__ import annotations

import os
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from gateway.qr import _speedups, crc16, decode, samples
from gateway.qr.emvco import decode_checked
from schemas.errors import QRError
from schemas.qr import MerchantQR

PURE = _speedups.scanner_of(_speedups.pure_scan())
_COMPILED_MODULE, _ = _speedups.compiled_scan()
COMPILED = _speedups.scanner_of(_COMPILED_MODULE) if _COMPILED_MODULE is not None else None

VALID = [
    samples.seoul(), samples.seoul("15000"), samples.seoul("15000", korean=True, reference="T-0001"),
    samples.shanghai(), samples.shanghai("15.05", reference="INV-7"), samples.singapore("4.50"),
    *(p for p in samples.PUBLIC_EXAMPLES.values() if p.startswith("00")),
]


def snapshot(v: Any) -> Any:
    """Everything that makes two decoded values the same, model internals included."""
    if isinstance(v, BaseModel):
        return (type(v), [(k, snapshot(x)) for k, x in v.__dict__.items()], sorted(v.__pydantic_fields_set__),
                v.__pydantic_extra__, v.__pydantic_private__)
    if isinstance(v, list):
        return [snapshot(x) for x in v]
    if isinstance(v, dict):
        return [(k, snapshot(x)) for k, x in v.items()]
    return v


def reference(p: str) -> Any:
    try:
        return snapshot(decode_checked(p))
    except QRError as exc:
        return ("QRError", exc.code, exc.detail, exc.extra)
    except KeyError:  # no tag 00 at all: decode never hands such a payload to the EMVCo decoder
        return "KeyError"


def public(p: str) -> Any:
    try:
        return snapshot(decode(p))
    except QRError as exc:
        return ("QRError", exc.code, exc.detail, exc.extra)


def check(p: str) -> bool:
    """Asserts the fast paths agree with the reference on ``p``, and ``decode`` with both; True when the pure
    fast path accepted it."""
    ref = reference(p)
    fast = PURE.emvco(p)
    if fast is not None:
        assert snapshot(fast) == ref, p
    if COMPILED is not None:
        compiled = COMPILED.emvco(p)
        assert (compiled is None) == (fast is None), p
        if compiled is not None:
            assert snapshot(compiled) == snapshot(fast), p
    if p[:2] == "00":  # what decode sends to the EMVCo decoder
        got = public(p)
        if got != ref:  # only a payload malformed as characters that reads whole as UTF-8 bytes (docs/qr.md)
            qr = decode(p)
            assert ref[:2] == ("QRError", "QR_MALFORMED"), p
            assert isinstance(qr, MerchantQR) and [w.code for w in qr.warnings][-1] == "LENGTH_IN_BYTES", p
    return fast is not None


@pytest.mark.parametrize("p", VALID)
def test_every_conforming_corpus_payload_takes_the_fast_path_with_the_reference_model(p: str) -> None:
    assert check(p)
    low = p[:-4] + p[-4:].lower()  # a lower-case CRC is kept as printed
    assert check(low)


def test_out_of_order_and_unusual_shapes_agree() -> None:
    base = "000201010211" + "26160012com.kakaopay" + "52045812530341058" + "02KR5905SHOP16005SEOUL"
    shapes = [
        base, base + "62060105AB", base + "64140002ZH0104商店", base + "6208" + "0704T001",
        "000201" + "5802KR" + "010212" + "26160012com.kakaopay" + "5303410",  # printed out of order
        base + "5406.50000", base + "54031.5", base + "54045.00", base + "550201", base + "5502025603500",
        base + "550203570110", base + "55020256031.5", base + "8005hello" + "7003abc" + "0204" + "1234",
        base + "6208" + "0504REF1" + "6203" + "0101X",  # duplicate top-level 62
        base + tlv("64", "0002ZH"), base + tlv("64", "0002ZH0100"), base + tlv("64", "0104SHOP"),
        base + tlv("64", "0104SHOP0002ZH"),  # 64: missing or empty 00/01, printed out of order
        base + tlv("62", "0504REF10104BILL"), base + tlv("62", "5004abcd0104BILL"),  # 62 out of order
        base + tlv("27", "0X120103ABC"), base + tlv("27", "0003ABC0003ABD"), base + tlv("62", "0101A0101B"),
        base + tlv("62", "01"), base + tlv("27", "0003ABC01"),  # malformed sub-objects
    ]
    late = "5802KR" + base + "6304"  # tag 00 not first: decode does not read it as EMVCo at all
    check(late + crc16(late))
    with pytest.raises(QRError) as info:
        decode(late + crc16(late))
    assert info.value.code == "QR_UNSUPPORTED_FORMAT"
    assert PURE.emvco(b"000201") is None and PURE.emvco(None) is None
    mid = base + "6304ABCD" + "9904"  # a CRC object that is not the last one, the payload's CRC at the end
    check(mid + crc16(mid))
    for body in shapes:
        for p in (body + "6304" + crc16(body + "6304"), body + "6304" + crc16(body + "6304").lower(),
                  body + "6304ABCD", body + "6304" + crc16(body + "6304") + "0100", body):
            check(p)


ALPHABET = "0123456789ABCDEFabcdef.- 한"
VALUES = st.text(ALPHABET, max_size=12)
TAGS = st.sampled_from([f"{t:02d}" for t in [1, 2, 15, 26, 27, 38, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61,
                                             62, 64, 65, 79, 80, 99]])
# Per tag: values the decoder accepts, then values it refuses (some only for some currencies).
GOOD = {"00": ["01"], "01": ["11", "12"], "52": ["5812", "0000"], "53": ["410", "156", "986", "048"],
        "54": ["15000", "15.05", "5.", "7.00", "0.001", "1234567890.12"], "55": ["01", "02", "03"],
        "56": ["500", "1.5"], "57": ["3", "0.5"], "58": ["KR", "CN"]}
BAD = {"00": ["02", "1", "0x"], "01": ["13", "1"], "52": ["581", "58a2", "٥٨١٢"], "53": ["000", "41"],
       "54": [".5", "1.2.3", "12345678901234", "١", "", "5-"], "55": ["04", "2"], "56": ["x", ".1"],
       "57": ["1..2", ""], "58": ["kr", "kR", "Kr", "K1", "KRW"]}


def tlv(tag: str, value: str) -> str:
    return f"{tag}{len(value):02d}{value}"


@st.composite
def templates(draw: st.DrawFn, tag: str, good: bool) -> str:
    """Sub-objects of template ``tag``: well formed (with 00, and 01 for 64) or possibly not."""
    subs = draw(st.lists(st.tuples(st.sampled_from(["00", "01", "02", "05", "07", "10", "99"]), VALUES),
                         max_size=4, unique_by=(lambda s: s[0]) if good else None))
    if good:
        subs = [("00", draw(VALUES.filter(bool))), *(s for s in subs if s[0] != "00")]
        if tag == "64":
            subs = [("01", draw(VALUES.filter(bool))), *(s for s in subs if s[0] != "01")]
        subs = draw(st.permutations(subs))
    return "".join(tlv(t, v) for t, v in subs) + ("" if good else draw(st.sampled_from(["", "", "9", "01"])))


@st.composite
def payloads(draw: st.DrawFn) -> str:
    """Mostly decodable payloads in any order, each sometimes spoilt in one way: a refused value, a
    malformed template, a duplicate, a missing mandatory object, a bad or misplaced CRC."""
    spoil = draw(st.sampled_from(["none", "none", "none", "value", "template", "duplicate", "missing", "crc"]))
    tags = draw(st.lists(TAGS, max_size=8, unique=True))
    objs = [(t, "") for t in tags if t not in ("53", "58")] + [("53", ""), ("58", "")]
    if not any(26 <= int(t) <= 51 for t, _ in objs):
        objs.append(("26", ""))
    if spoil == "missing":
        objs.pop(draw(st.integers(0, len(objs) - 1)))
    bad_value = draw(st.sampled_from(["00", *(t for t, _ in objs if t in BAD)])) if spoil == "value" else None
    bad_template = draw(st.sampled_from([t for t, _ in objs])) if spoil == "template" else None
    filled = []
    for tag, _ in objs:
        if tag in GOOD:
            value = draw(st.sampled_from(BAD[tag] if tag == bad_value else GOOD[tag]))
        elif 26 <= int(tag) <= 51 or tag in ("62", "64"):
            value = draw(templates(tag, tag != bad_template))
        else:
            value = draw(VALUES)
        filled.append((tag, value))
    if spoil == "duplicate":
        filled.append(draw(st.sampled_from(filled)))
    pfi = draw(st.sampled_from(BAD["00"])) if bad_value == "00" else "01"
    body = tlv("00", pfi) + "".join(tlv(t, v) for t, v in draw(st.permutations(filled))) + "6304"
    crc = crc16(body)
    if spoil == "crc":
        return body + draw(st.sampled_from(["ABCD", crc + "0100", crc[:3], "+" + crc[1:], crc[::-1]]))
    return body + draw(st.sampled_from([crc, crc.lower()]))


@pytest.mark.parametrize("tag", sorted(GOOD))
def test_every_accepted_and_refused_value_of_each_field_agrees(tag: str) -> None:
    core = {"00": "01", "26": "0012com.kakaopay", "53": "410", "58": "KR"}
    for value in GOOD[tag] + BAD[tag]:
        for cur in ("410", "986", "048"):  # exponents 0, 2 and 3
            objs = {**core, "53": cur, "55": "01", tag: value}
            if tag == "55":
                objs |= {"56": "500", "57": "3"} if value != "04" else {}
            body = "".join(tlv(t, v) for t, v in sorted(objs.items())) + "6304"
            check(body + crc16(body))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads())
def test_generated_payloads_agree(p: str) -> None:
    check(p)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VALID), st.integers(0, 400), st.integers(0, 3), st.characters(max_codepoint=0x10FFFF))
def test_mutated_and_truncated_payloads_agree(seed: str, pos: int, op: int, ch: str) -> None:
    k = pos % (len(seed) + 1)
    check([seed[:k], seed[:k] + ch + seed[k + 1 :], seed[:k] + seed[k + 1 :], seed[:k] + ch + seed[k:]][op])


def test_the_path_in_use_is_named() -> None:
    assert _speedups.PATH == ("compiled" if _speedups.FAST_EMVCO is not None else "pure")
    assert _speedups.REASON
    if COMPILED is not None and not os.environ.get("QRGW_NO_MYPYC"):
        assert _speedups.PATH == "compiled" and "mypyc" in _speedups.REASON


def test_disabled_or_stale_builds_are_not_loaded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QRGW_NO_MYPYC", "1")
    assert _speedups.compiled_scan() == (None, "QRGW_NO_MYPYC is set")
    monkeypatch.delenv("QRGW_NO_MYPYC")
    source = tmp_path / "_scan.py"
    source.write_text("")
    monkeypatch.setattr(_speedups, "SOURCE", source)
    assert _speedups.compiled_scan()[0] is None  # nothing built next to it
    built = tmp_path / f"_scan{EXTENSION_SUFFIXES[0]}"
    built.write_bytes(b"")
    os.utime(built, (source.stat().st_mtime - 60, source.stat().st_mtime - 60))
    module, reason = _speedups.compiled_scan()
    assert module is None and "older than _scan.py" in reason
