"""Screening of the payer and the merchant before any money moves: clear, review or hit.

``ListScreener`` matches names against a list (TOML ``[[entries]]`` with ``name``, optional
``country`` and ``action`` = ``hit`` | ``review``) after normalising case, accents and
punctuation: the whole name equal to an entry's is that entry's action; every word of an
entry found in the name (a partial match) is a ``review``. A party whose country is in
``review_countries`` is a ``review``. The worst verdict over both parties wins. A payer without
a name is screened by country only. The verdict's ``reason`` is for the operator's log, never
for the partner (no tipping-off).
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from schemas.errors import ConfigError

__all__ = ["ListScreener", "Party", "Screener", "Verdict", "normalise"]

Outcome = Literal["clear", "review", "hit"]
_RANK: dict[str, int] = {"clear": 0, "review": 1, "hit": 2}


@dataclass(frozen=True, slots=True)
class Party:
    role: Literal["payer", "merchant"]
    name: str | None
    country: str


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    reason: str = ""


class Screener(Protocol):
    async def screen(self, parties: Sequence[Party]) -> Verdict: ...


def normalise(name: str) -> str:
    """Lower case, accents stripped, punctuation to spaces, single spaces."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode() or name
    return " ".join(re.sub(r"[^\w]+", " ", plain.casefold()).split())


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    words: frozenset[str]
    country: str | None
    action: Outcome


class ListScreener:
    def __init__(
        self, entries: Sequence[tuple[str, str | None, Outcome]], review_countries: Sequence[str] = ()
    ) -> None:
        self.entries = [_Entry(normalise(n), frozenset(normalise(n).split()), c, a) for n, c, a in entries]
        self.review_countries = frozenset(review_countries)

    @classmethod
    def from_file(cls, path: Path, review_countries: Sequence[str] = ()) -> ListScreener:
        try:
            raw = tomllib.loads(path.read_text())
            entries: list[tuple[str, str | None, Outcome]] = []
            for e in raw.get("entries", []):
                action = str(e.get("action", "hit"))
                if action not in ("hit", "review") or not str(e.get("name", "")).strip():
                    raise ValueError(f"entry {e!r}: needs a name and action hit or review")
                entries.append((str(e["name"]), e.get("country"), "hit" if action == "hit" else "review"))
        except (OSError, tomllib.TOMLDecodeError, ValueError) as exc:
            raise ConfigError(f"fx.screening.list_file {path}: {exc}") from exc
        return cls(entries, [*review_countries, *raw.get("review_countries", [])])

    def _one(self, p: Party) -> Verdict:
        worst = Verdict("clear")
        if p.country in self.review_countries:
            worst = Verdict("review", f"{p.role} country {p.country} is on the review list")
        if not p.name:
            return worst
        name = normalise(p.name)
        words = frozenset(name.split())
        for e in self.entries:
            if e.country is not None and e.country != p.country:
                continue
            if name == e.name:
                v = Verdict(e.action, f"{p.role} name matches list entry {e.name!r}")
            elif e.words and e.words <= words:
                v = Verdict("review", f"{p.role} name partly matches list entry {e.name!r}")
            else:
                continue
            if _RANK[v.outcome] > _RANK[worst.outcome]:
                worst = v
        return worst

    async def screen(self, parties: Sequence[Party]) -> Verdict:
        worst = Verdict("clear")
        for p in parties:
            v = self._one(p)
            if _RANK[v.outcome] > _RANK[worst.outcome]:
                worst = v
        return worst
