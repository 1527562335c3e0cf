"""Scheme profiles: what the nested structures of known national schemes mean (docs/qr.md names the
public source of each). A profile only names what is printed; it never changes the raw decode.

``profiles_of(qr)`` lists every profile the code matches, in this order: VietQR, KHQR, Pix, PromptPay,
PayNow, SGQR, DuitNow, QRIS, UPI (a shared SGQR code, say, is both PayNow and SGQR).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

from schemas.qr import MerchantAccount, MerchantQR, SchemeProfile

SGT = timezone(timedelta(hours=8))  # PayNow expiry dates are Singapore dates


def _named(fields: dict[str, str], names: dict[str, str]) -> dict[str, str]:
    return {names[t]: v for t, v in fields.items() if t in names}


def _by_guid(qr: MerchantQR, match: Callable[[str], bool]) -> MerchantAccount | None:
    return next((a for a in sorted(qr.templates(), key=lambda a: a.tag) if a.guid and match(a.guid)), None)


def _ms(value: str | None) -> str | None:
    """A 13-digit millisecond epoch timestamp (KHQR tag 99) as ISO 8601 UTC, or None."""
    if value is None or not value.isascii() or not value.isdigit():
        return None
    try:
        at = datetime.fromtimestamp(int(value) / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def vietqr(qr: MerchantQR) -> SchemeProfile | None:
    """NAPAS VietQR: template 38, GUID A000000727; sub-tag 01 is itself TLV (00 acquirer BIN, 01 account
    or card number); 02 the service code (QRIBFTTA to an account, QRIBFTTC to a card)."""
    t = _by_guid(qr, lambda g: g.upper() == "A000000727")
    if t is None or t.fields is None:
        return None
    from gateway.qr.tree import template

    fields = {"service_code": t.fields.get("02", "")}
    beneficiary = template(t.fields.get("01", "")) or {}
    fields |= _named(beneficiary, {"00": "acquirer_bin", "01": "account"})
    return SchemeProfile(scheme="vietqr", template=t.tag, fields={k: v for k, v in fields.items() if v})


def khqr(qr: MerchantQR) -> SchemeProfile | None:
    """NBC Bakong KHQR: 29 (individual) or 30 (merchant) whose sub-tag 00 is the Bakong account id;
    tag 99 holds the creation (00) and expiry (01) timestamps in milliseconds."""
    if qr.country != "KH":
        return None
    t = next((a for a in sorted(qr.templates(), key=lambda a: a.tag) if a.tag in ("29", "30")), None)
    if t is None or t.fields is None:
        return None
    names = {"00": "bakong_account_id", "01": "account_information" if t.tag == "29" else "merchant_id",
             "02": "acquiring_bank"}
    fields = {"account_type": "individual" if t.tag == "29" else "merchant", **_named(t.fields, names)}
    stamps = qr.unreserved_templates.get("99", {})
    return SchemeProfile(scheme="khqr", template=t.tag, fields=fields, created_at=_ms(stamps.get("00")),
                         expires_at=_ms(stamps.get("01")))


def pix(qr: MerchantQR) -> SchemeProfile | None:
    """BCB Pix (Manual de Padrões para Iniciação do Pix): template 26, GUID br.gov.bcb.pix (any case);
    01 the key (static), 02 free text, 25 the payload URL (dynamic); 62.05 the txid."""
    t = _by_guid(qr, lambda g: g.lower() == "br.gov.bcb.pix")
    if t is None or t.fields is None:
        return None
    fields = _named(t.fields, {"01": "key", "02": "info", "25": "url"})
    if qr.additional_data is not None and qr.additional_data.reference_label:
        fields["txid"] = qr.additional_data.reference_label
    return SchemeProfile(scheme="pix", template=t.tag, fields=fields)


def promptpay(qr: MerchantQR) -> SchemeProfile | None:
    """Thai QR Payment (Bank of Thailand): A000000677010111 credit transfer (01 mobile, 02 national or
    tax id, 03 e-wallet id, 04 bank account); A000000677010112 bill payment (01 biller id, 02/03 refs)."""
    t = _by_guid(qr, lambda g: g.upper() in ("A000000677010111", "A000000677010112"))
    if t is None or t.fields is None or t.guid is None:
        return None
    if t.guid.upper().endswith("11"):
        names = {"01": "mobile", "02": "national_id", "03": "ewallet_id", "04": "bank_account"}
    else:
        names = {"01": "biller_id", "02": "reference_1", "03": "reference_2"}
    return SchemeProfile(scheme="promptpay", template=t.tag, fields=_named(t.fields, names))


def paynow(qr: MerchantQR) -> SchemeProfile | None:
    """PayNow (ABS/MAS SGQR): GUID SG.PAYNOW; 01 proxy type (0 mobile, 2 UEN), 02 proxy, 03 amount
    editable (1) or not (0), 04 expiry date YYYYMMDD (end of that day, Singapore time)."""
    t = _by_guid(qr, lambda g: g.upper() == "SG.PAYNOW")
    if t is None or t.fields is None:
        return None
    fields = _named(t.fields, {"01": "proxy_type", "02": "proxy", "03": "editable", "04": "expiry_date"})
    return SchemeProfile(scheme="paynow", template=t.tag, fields=fields,
                         expires_at=_paynow_expiry(fields.get("expiry_date", "")))


def _paynow_expiry(raw: str) -> str | None:
    """YYYYMMDD (the end of that day), or YYMMDDhhmmss as some dynamic generators print, Singapore time."""
    if not (raw.isascii() and raw.isdigit()):
        return None
    try:
        if len(raw) == 8:
            end = datetime(int(raw[:4]), int(raw[4:6]), int(raw[6:]), tzinfo=SGT) + timedelta(days=1)
        elif len(raw) == 12:
            end = datetime.strptime(raw, "%y%m%d%H%M%S").replace(tzinfo=SGT)
        else:
            return None
    except ValueError:
        return None
    return end.astimezone(UTC).isoformat().replace("+00:00", "Z")


def sgqr(qr: MerchantQR) -> SchemeProfile | None:
    """SGQR identity template 51 (GUID SG.SGQR): 01 SGQR id, 02 version, 03 postal code, 04 level,
    05 unit, 06 miscellaneous, 07 revision date."""
    t = _by_guid(qr, lambda g: g.upper() == "SG.SGQR")
    if t is None or t.fields is None:
        return None
    names = {"01": "sgqr_id", "02": "version", "03": "postal_code", "04": "level", "05": "unit", "06": "misc",
             "07": "revision_date"}
    return SchemeProfile(scheme="sgqr", template=t.tag, fields=_named(t.fields, names))


def duitnow(qr: MerchantQR) -> SchemeProfile | None:
    """PayNet DuitNow QR: GUID A0000006150001; 01 the participant (acquirer)
    code, 02 the merchant id, as real codes show."""
    t = _by_guid(qr, lambda g: g.upper() == "A0000006150001")
    if t is None or t.fields is None:
        return None
    return SchemeProfile(scheme="duitnow", template=t.tag, fields=_named(t.fields, {"01": "participant",
                                                                                    "02": "merchant_id"}))


def qris(qr: MerchantQR) -> SchemeProfile | None:
    """Bank Indonesia QRIS (country ID): an issuer template 26-45 with its reverse-domain GUID (ID.DANA.WWW,
    COM.GO-JEK.WWW ...: 01 merchant PAN, 02 merchant id, 03 criteria UMI/UKE/UME/UBE/URE) and template 51
    ID.CO.QRIS.WWW (02 the national merchant id NMID, 03 criteria)."""
    if qr.country != "ID":
        return None
    nat = _by_guid(qr, lambda g: g.upper() == "ID.CO.QRIS.WWW")
    issuer = next((a for a in sorted(qr.templates(), key=lambda a: a.tag)
                   if a.tag <= "45" and (a.guid or "").upper() != "ID.CO.QRIS.WWW"), None)
    if nat is None and issuer is None:
        return None
    fields: dict[str, str] = {}
    if issuer is not None and issuer.fields is not None:
        fields |= {"issuer": issuer.guid or ""} | _named(issuer.fields, {"01": "merchant_pan", "02": "merchant_id",
                                                                         "03": "criteria"})
    if nat is not None and nat.fields is not None:
        fields |= _named(nat.fields, {"02": "nmid", "03": "criteria"})
    return SchemeProfile(scheme="qris", template=None, fields=fields)


def upi(qr: MerchantQR) -> SchemeProfile | None:
    """NPCI BharatQR with UPI: templates with GUID A000000524 (the RuPay RID): in 26 the VPA (01) and a
    minimum amount (02); in 27 the transaction reference (01) and a reference URL (02)."""
    ts = [a for a in sorted(qr.templates(), key=lambda a: a.tag) if (a.guid or "").upper() == "A000000524"]
    if not ts:
        return None
    fields: dict[str, str] = {}
    for t in ts:
        names = ({"01": "vpa", "02": "minimum_amount"} if t.tag == "26"
                 else {"01": "transaction_reference", "02": "reference_url"})
        fields |= _named(t.fields or {}, names)
    return SchemeProfile(scheme="upi", template=None, fields=fields)


Reader = Callable[[MerchantQR], SchemeProfile | None]
PROFILES: tuple[Reader, ...] = (vietqr, khqr, pix, promptpay, paynow, sgqr, duitnow, qris, upi)
# What makes each reader look at all (decode runs this for every code: a code of no known scheme costs
# one dict lookup per template): an upper-case GUID, or the country.
_BY_GUID: dict[str, Reader] = {
    "A000000727": vietqr, "BR.GOV.BCB.PIX": pix, "A000000677010111": promptpay, "A000000677010112": promptpay,
    "SG.PAYNOW": paynow, "SG.SGQR": sgqr, "A0000006150001": duitnow, "A000000524": upi,
}
_BY_COUNTRY: dict[str, Reader] = {"KH": khqr, "ID": qris}


def profiles_of(qr: MerchantQR) -> list[SchemeProfile]:
    hit: set[Reader] = set()
    for a in qr.merchant_accounts:
        if a.fields is not None and (read := _BY_GUID.get(a.fields.get("00", "").upper())) is not None:
            hit.add(read)
    if (read := _BY_COUNTRY.get(qr.country)) is not None:
        hit.add(read)
    if not hit:
        return []
    return [p for read in PROFILES if read in hit and (p := read(qr)) is not None]
