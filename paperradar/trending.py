"""Trending papers: the papers of the last day, week or month of listings, ranked by time-decayed votes.

Votes are a paper's imported count (Hugging Face upvotes) plus its local votes (the store's ``votes``
table). The ranking is :func:`paperradar.rank.trending_score`, a pure function of votes and age.

Windows end at the most recent listing day in the store that is not in the future, so a store that was
last updated a while ago (or the bundled demo corpus) still shows its last day instead of an empty page;
ages are measured from the end of that day when it is in the past.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from dataclasses import dataclass
from typing import Literal

from . import clock, rank
from .query import QueryError
from .store import Store, StoredPaper

PERIODS = {"day": 1, "week": 7, "month": 30}
Period = Literal["day", "week", "month"]


@dataclass
class TrendingItem:
    paper: StoredPaper
    votes: int
    score: float

    def to_dict(self) -> dict:
        return {"votes": self.votes, "trending_score": round(self.score, 6), **self.paper.to_dict()}


@dataclass
class TrendingPage:
    period: str
    since: str | None  # first listing day of the window (YYYY-MM-DD), None for an empty store
    until: str | None  # last listing day of the window
    total: int  # papers in the window
    items: list[TrendingItem]


@functools.lru_cache(maxsize=4096)
def _day_start(day: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def age_hours(day: str | None, now: dt.datetime) -> float:
    """Hours from the start of listing day ``day`` (UTC) to ``now``; very old when unknown."""
    start = _day_start((day or "")[:10])
    if start is None:
        return 1e6
    return max(0.0, (now - start).total_seconds() / 3600)


def window(store: Store, period: str, now: dt.datetime | None = None) -> tuple[str, str, dt.datetime] | None:
    """(first day, last day, effective now) of the trending window, or None when nothing is listed."""
    if period not in PERIODS:
        raise QueryError(f"unknown period {period!r}; choose one of {', '.join(PERIODS)}")
    now = clock.utc(now)
    last = store.latest_day(now.strftime("%Y-%m-%d"))
    if last is None:
        return None
    last_day = dt.date.fromisoformat(last)
    end_of_last = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    first = last_day - dt.timedelta(days=PERIODS[period] - 1)
    return first.isoformat(), last, min(now, end_of_last)


class RankingCache:
    """Keeps each period's whole ranking for ``ttl`` seconds, so a busy server ranks a window once, not
    on every page view; new votes and papers show up within ``ttl``. Thread-safe enough: a race only
    ranks twice."""

    def __init__(self, ttl: float = 30.0, clock=time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[tuple, tuple[float, tuple]] = {}

    def get(self, key: tuple, compute):
        now = self.clock()
        hit = self._entries.get(key)
        if hit and now - hit[0] < self.ttl:
            return hit[1]
        value = compute()
        self._entries[key] = (now, value)
        return value


def ranking(store: Store, period: str, now: dt.datetime | None = None,
            gravity: float = 1.8) -> tuple[str | None, str | None, list[tuple[float, int, int]]]:
    """(first day, last day, [(score, paper id, votes)] best first) for a period; ties by paper id."""
    w = window(store, period, now)
    if w is None:
        return None, None, []
    since, until, effective_now = w
    scored = sorted(((rank.trending_score(votes, age_hours(day, effective_now), gravity), pid, votes)
                     for pid, votes, day in store.trending_candidates(since, until)),
                    key=lambda t: (-t[0], t[1]))
    return since, until, scored


def trending(store: Store, period: str = "day", limit: int = 20, offset: int = 0,
             now: dt.datetime | None = None, gravity: float = 1.8,
             cache: RankingCache | None = None) -> TrendingPage:
    """A page of trending papers. ``cache`` (live rankings only, ``now`` unset) reuses a recent ranking."""
    if period not in PERIODS:
        raise QueryError(f"unknown period {period!r}; choose one of {', '.join(PERIODS)}")
    if cache is not None and now is None:
        since, until, scored = cache.get((period, gravity), lambda: ranking(store, period, None, gravity))
    else:
        since, until, scored = ranking(store, period, now, gravity)
    page = scored[offset:offset + limit]
    papers = {p.id: p for p in store.get_many(pid for _, pid, _ in page)}
    items = [TrendingItem(papers[pid], votes, score) for score, pid, votes in page if pid in papers]
    return TrendingPage(period, since, until, len(scored), items)
