"""``qrgw qr``: decode, encode and render merchant QR codes.

    qrgw qr decode PAYLOAD | -  [--json]     # '-' reads stdin, one payload per line
    qrgw qr decode --image FILE [--json]     # reads the QR symbol(s) in an image (zxing-cpp)
    qrgw qr encode --template com.kakaopay,01=KP-M-1 --mcc 5812 --currency KRW --country KR \\
                   --name "HANGANG BBQ" --city SEOUL [--amount 15000] | --json FILE
    qrgw qr render PAYLOAD --out code.png|code.svg

An invalid payload prints its problem JSON (code, detail, offset, tag_path) on stdout and the
command exits 1 (after handling every line of the input).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gateway.qr import decode, encode
from schemas.errors import QRError, ValidationFailed
from schemas.qr import ADDITIONAL_DATA_NAMES, AdditionalData, AlipayPlusQR, MerchantAccount, MerchantQR


def register(sub: Any) -> None:
    p = sub.add_parser("qr", help="decode, encode and render merchant QR codes", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    qsub = p.add_subparsers(dest="qr_command", metavar="ACTION", required=True)

    d = qsub.add_parser("decode", help="decode payloads (or an image) and print them")
    d.add_argument("payload", nargs="?", help="the payload, or - to read one per line from stdin")
    d.add_argument("--image", type=Path, help="read the payload(s) from a QR image instead")
    d.add_argument("--json", action="store_true", help="one JSON object per line")
    d.set_defaults(func=run_decode)

    e = qsub.add_parser("encode", help="build a payload (EMVCo MPM) with its CRC")
    e.add_argument("--json", dest="json_file", type=Path, help="a decoded code (as `decode --json` prints) to encode")
    e.add_argument("--template", action="append", default=[], metavar="GUID[,SUB=VALUE...]",
                   help="a merchant account template (tags 26, 27, ... in the order given)")
    e.add_argument("--mcc", default="0000", help="merchant category code (default 0000)")
    e.add_argument("--currency", help="ISO 4217 numeric (410) or alpha-3 (KRW)")
    e.add_argument("--amount", help="amount as printed, in major units (15000, 15.05): makes the code dynamic")
    e.add_argument("--country", help="ISO 3166 alpha-2")
    e.add_argument("--name", help="merchant name")
    e.add_argument("--city", help="merchant city")
    e.add_argument("--postal-code")
    for name in ADDITIONAL_DATA_NAMES.values():
        e.add_argument(f"--{name.replace('_', '-')}", dest=name, help="additional data (tag 62)")
    e.set_defaults(func=run_encode)

    r = qsub.add_parser("render", help="draw the QR symbol of a payload (PNG or SVG)")
    r.add_argument("payload")
    r.add_argument("--out", type=Path, required=True, help="output file: .png or .svg")
    r.add_argument("--scale", type=int, default=8, help="pixels per module (default 8)")
    r.set_defaults(func=run_render)


def problem(exc: QRError) -> dict[str, Any]:
    return {"code": exc.code, "detail": exc.detail, "offset": exc.offset, "tag_path": exc.tag_path}


def table(qr: MerchantQR | AlipayPlusQR) -> str:
    """A readable two-column view of a decoded code."""
    rows: list[tuple[str, str]] = []
    if isinstance(qr, AlipayPlusQR):
        rows += [("format", "Alipay+ MPM"), ("domain", qr.domain), ("version", qr.version)]
        for o in qr.objects:
            rows.append((o.id, o.value if o.fields is None else "  ".join(f"{k}={v}" for k, v in o.fields.items())))
    else:
        rows += [("format", "EMVCo MPM"), ("initiation", qr.point_of_initiation or "-")]
        for a in qr.merchant_accounts:
            shown = a.value if a.fields is None else "  ".join(f"{k}={v}" for k, v in a.fields.items())
            rows.append((f"account {a.tag}", shown or ""))
        amount = f"{qr.amount} {qr.currency_alpha}" if qr.amount is not None else f"(payer enters) {qr.currency_alpha}"
        rows += [("merchant", qr.merchant_name or "-"), ("city", qr.merchant_city or "-"), ("country", qr.country),
                 ("mcc", qr.mcc or "-"), ("currency", f"{qr.currency_alpha} ({qr.currency})"), ("amount", amount)]
        if qr.additional_data is not None:
            for key, val in qr.additional_data.model_dump(exclude_none=True, exclude={"order"}).items():
                if val:
                    rows.append((f"62 {key}", str(val)))
        if qr.language is not None:
            rows.append(("language", f"{qr.language.language_preference}: {qr.language.merchant_name}"))
        for tag, val in {**qr.unreserved, **qr.other}.items():
            rows.append((f"tag {tag}", val))
        rows.append(("crc", qr.crc or ""))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def _payloads(args: argparse.Namespace) -> list[str]:
    if args.image is not None:
        import zxingcpp
        from PIL import Image

        with Image.open(args.image) as img:
            found = [str(b.text) for b in zxingcpp.read_barcodes(img)]
        if not found:
            raise ValidationFailed(f"no QR code found in {args.image}")
        return found
    if args.payload is None:
        raise ValidationFailed("give a PAYLOAD, - for stdin, or --image FILE")
    if args.payload == "-":
        return [line.rstrip("\r\n") for line in sys.stdin if line.strip()]
    return [args.payload]


def run_decode(args: argparse.Namespace) -> int:
    status = 0
    for i, payload in enumerate(_payloads(args)):
        try:
            qr = decode(payload)
        except QRError as exc:
            print(json.dumps(problem(exc), ensure_ascii=False))
            status = 1
            continue
        if args.json:
            print(json.dumps(qr.model_dump(mode="json"), ensure_ascii=False))
        else:
            print(("\n" if i else "") + table(qr))
    return status


def _currency(code: str | None) -> str:
    from iso4217 import Currency

    if code is None:
        raise ValidationFailed("--currency is required")
    if code.isdigit():
        return code.zfill(3)
    try:
        return f"{int(Currency(code.upper()).number):03d}"
    except (ValueError, TypeError) as exc:
        raise ValidationFailed(f"--currency: unknown ISO 4217 code {code!r}") from exc


def _from_options(args: argparse.Namespace) -> MerchantQR:
    missing = [o for o in ("country", "name", "city") if getattr(args, o) is None]
    if missing or not args.template:
        raise ValidationFailed(f"missing --{', --'.join(missing or ['template'])} (or give --json FILE)")
    accounts = []
    for n, spec in enumerate(args.template):
        guid, *subs = spec.split(",")
        fields = {"00": guid}
        for s in subs:
            key, sep, val = s.partition("=")
            if not sep:
                raise ValidationFailed(f"--template {spec!r}: sub-tags are written SUB=VALUE")
            fields[key] = val
        accounts.append(MerchantAccount(tag=str(26 + n), fields=fields))
    extra = {k: getattr(args, k) for k in ADDITIONAL_DATA_NAMES.values() if getattr(args, k) is not None}
    return MerchantQR(
        point_of_initiation="dynamic" if args.amount is not None else "static",
        merchant_accounts=accounts, mcc=args.mcc, currency=_currency(args.currency), amount=args.amount,
        country=args.country.upper(), merchant_name=args.name, merchant_city=args.city,
        postal_code=args.postal_code, additional_data=AdditionalData(**extra) if extra else None,
    )


def run_encode(args: argparse.Namespace) -> int:
    from pydantic import TypeAdapter, ValidationError

    from schemas.qr import DecodedQR

    if args.json_file is not None:
        try:
            qr: MerchantQR | AlipayPlusQR = TypeAdapter(DecodedQR).validate_json(args.json_file.read_bytes())
        except (OSError, ValidationError) as exc:
            raise ValidationFailed(f"{args.json_file}: {exc}") from exc
    else:
        qr = _from_options(args)
    try:
        print(encode(qr))
    except QRError as exc:
        print(json.dumps(problem(exc), ensure_ascii=False))
        return 1
    return 0


def run_render(args: argparse.Namespace) -> int:
    import segno

    try:
        decode(args.payload)
    except QRError as exc:
        print(json.dumps(problem(exc), ensure_ascii=False))
        return 1
    if args.out.suffix.lower() not in (".png", ".svg"):
        raise ValidationFailed("--out must end in .png or .svg")
    # Error correction M (15 %) is what EMVCo recommends for merchant-presented codes.
    segno.make(args.payload, error="m", micro=False).save(str(args.out), scale=args.scale)
    print(args.out)
    return 0
