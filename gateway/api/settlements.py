"""``GET /v1/settlements/{date}`` (PROTOCOL.md §5, §9): the calling partner's settlement report
for one business day, signed like every response.

JSON by default; CSV with ``?format=csv`` or ``Accept: text/csv`` (the query wins over the
header). A day without activity answers an empty report, not 404: "nothing to settle" is an
answer a partner reconciles against. Layout: docs/settlement.md.
"""

from __future__ import annotations

from aiohttp import web

from gateway.appkeys import SETTINGS, STORE
from gateway.settlement import load_day, parse_day, partner_report, to_csv
from gateway.settlement.csvio import batch_csv
from gateway.settlement.fees import FeeSchedule
from schemas.errors import NotFound, ValidationFailed


def wants_csv(request: web.Request) -> bool:
    fmt = request.query.get("format")
    if fmt is not None:
        if fmt not in ("json", "csv"):
            raise ValidationFailed(f"format {fmt[:16]!r}: expected json or csv")
        return fmt == "csv"
    accept = request.headers.get("Accept", "")
    types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    return "text/csv" in types and "application/json" not in types


async def get_settlement(request: web.Request) -> web.Response:
    partner = str(request["partner_id"])
    day = parse_day(request.match_info["date"])
    as_csv = wants_csv(request)
    settings = request.app[SETTINGS]
    loaded = await load_day(request.app[STORE], day, FeeSchedule.from_settings(settings.settlement.fees))
    report = partner_report(loaded.items, partner, day, settings.business_day.zone,
                            settings.settlement.show_fx_margin)
    if as_csv:
        resp = web.Response(body=to_csv(report).encode(), content_type="text/csv", charset="utf-8")
        resp.headers["Content-Disposition"] = f'attachment; filename="settlement-{partner}-{day}.csv"'
        return resp
    return web.json_response(report)


async def get_window_batch(request: web.Request) -> web.Response:
    """``GET /v1/settlements/windows/{window_id}``: the caller's frozen batch of a closed window,
    exactly as frozen (its ``content_hash`` covers the body without that field); 404
    ``SETTLEMENT_NOT_FOUND`` while the window is open or when it has no batch for the caller."""
    partner = str(request["partner_id"])
    window_id = parse_day(request.match_info["window_id"])
    as_csv = wants_csv(request)
    batch = await request.app[STORE].get_batch(window_id, partner)
    if batch is None:
        raise NotFound(f"no closed settlement window {window_id} for this partner", code="SETTLEMENT_NOT_FOUND")
    if as_csv:
        body = batch_csv(batch)
        resp = web.Response(body=body.encode(), content_type="text/csv", charset="utf-8")
        resp.headers["Content-Disposition"] = f'attachment; filename="batch-{partner}-{window_id}.csv"'
        return resp
    return web.json_response(dict(batch))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/settlements/windows/{window_id}", get_window_batch)
    app.router.add_get("/v1/settlements/{date}", get_settlement)
