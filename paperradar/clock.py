"""The one clock of the core: what "now" is, and how a moment is written in the store.

Every core function that depends on the time takes ``now`` (an aware datetime, or None for the real
clock) and passes it through :func:`utc`, so `paperradar digest send --at` and the tests can run any
morning. The store keeps moments as ``YYYY-MM-DDTHH:MM:SSZ`` strings (:func:`stamp`), which sort as
they compare; days are ``YYYY-MM-DD`` (:func:`day`).
"""

from __future__ import annotations

import datetime as dt

STAMP = "%Y-%m-%dT%H:%M:%SZ"


def utc(now: dt.datetime | None = None) -> dt.datetime:
    """``now`` in UTC (a naive datetime is taken to be UTC already), or the real time when None."""
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        return now.replace(tzinfo=dt.UTC)
    return now.astimezone(dt.UTC)


def stamp(now: dt.datetime | None = None) -> str:
    """A moment as the store writes it: ``2026-06-11T08:00:00Z`` (the real time when None)."""
    return utc(now).strftime(STAMP)


def day(now: dt.datetime | None = None) -> str:
    """The UTC day of a moment: ``2026-06-11``."""
    return utc(now).date().isoformat()


def seconds(now: dt.datetime | None = None) -> float:
    """A moment as seconds since the epoch (what signed links carry as their expiry)."""
    return utc(now).timestamp()
