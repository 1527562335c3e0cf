"""ORIS-style national limit registry over HTTP: the ``fx.ports.LimitRegistry`` adapter.

Wire (JSON; amounts are money objects in USD, PROTOCOL.md §3):

* ``GET  {url}/v1/allowances/{person}?year=YYYY`` → ``{"limit", "used", "remaining"}``
* ``PUT  {url}/v1/reports/{report_id}`` ``{"person", "year", "amount", "late"}`` → ``200``
  ``{"accepted": true, ...allowance}`` or ``409`` ``{"accepted": false, ...allowance}``; a repeat of
  a report id counts nothing new.
* ``POST {url}/v1/reports/{report_id}/release`` ``{"amount": money | null}`` → ``200``.

No answer, a 5xx or an answer that is not the shape above is ``RegistryUnavailable``: the
caller does not know what the registry did, and its fallback decides (fx.registry).
``person`` is the payer's national id hash when the wallet sent one, else the gateway's
wallet-scoped holder key (the registry then cannot join channels; docs/fx.md).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp

from fx.ports import Allowance
from schemas.errors import RegistryUnavailable

__all__ = ["OrisRegistry"]


def _usd(value: int) -> dict[str, str]:
    return {"currency": "USD", "value": str(value)}


def _cents(m: Any) -> int:
    if not isinstance(m, dict) or m.get("currency") != "USD" or not str(m.get("value", "")).isdigit():
        raise ValueError(f"not a USD money object: {m!r}")
    return int(m["value"])


class OrisRegistry:
    def __init__(self, url: str, timeout_s: float = 2.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None,
                    params: dict[str, str] | None = None, ok: tuple[int, ...] = (200,)) -> dict[str, Any]:
        try:
            async with self._http().request(method, self.url + path, json=body, params=params) as resp:
                if resp.status not in ok:
                    raise RegistryUnavailable(f"registry answered {resp.status} to {method} {path.split('/')[2]}")
                data = await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise RegistryUnavailable(f"registry unreachable: {type(exc).__name__}") from exc
        if not isinstance(data, dict):
            raise RegistryUnavailable("registry answer is not a JSON object")
        return data

    @staticmethod
    def _allowance(data: dict[str, Any], accepted: bool = True) -> Allowance:
        try:
            return Allowance(limit=_cents(data["limit"]), used=_cents(data["used"]), accepted=accepted)
        except (KeyError, ValueError) as exc:
            raise RegistryUnavailable(f"registry answer malformed: {exc}") from exc

    async def allowance(self, person: str, year: int) -> Allowance:
        data = await self._call("GET", f"/v1/allowances/{quote(person, safe='')}", params={"year": str(year)})
        return self._allowance(data)

    async def report(self, person: str, report_id: str, year: int, amount: int, *, late: bool = False) -> Allowance:
        body = {"person": person, "year": year, "amount": _usd(amount), "late": late}
        data = await self._call("PUT", f"/v1/reports/{quote(report_id, safe='')}", body, ok=(200, 409))
        return self._allowance(data, accepted=data.get("accepted") is True)

    async def release(self, person: str, report_id: str, amount: int | None) -> None:
        body = {"person": person, "amount": None if amount is None else _usd(amount)}
        await self._call("POST", f"/v1/reports/{quote(report_id, safe='')}/release", body)
