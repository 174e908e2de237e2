"""Forms: the digest preferences form (subscribe, manage, settings) as the pages show and read it.

Turning form fields into core values is all this does; validation is the core's (Preferences.validate).
"""

from __future__ import annotations

from zoneinfo import available_timezones

from ..digest import Preferences, SubscribeError
from ..store import Subscriber

ZONES = sorted(available_timezones())


def _number(value: str, what: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise SubscribeError(f"{what} must be a whole number") from None


def preferences(trending: bool, searches: str, max_papers: str, hour: str, tz: str) -> Preferences:
    """Form fields as Preferences (not yet validated): one saved search per line."""
    return Preferences(trending=trending, searches=searches.splitlines(),
                       max_papers=_number(max_papers, "papers per section"),
                       hour=_number(hour, "the hour of delivery"), tz=tz.strip() or "UTC")


def form(email="", trending=True, searches="", max_papers=10, hour=8, tz="UTC") -> dict:
    """The values a preferences form shows."""
    return {"email": email, "trending": trending, "searches": searches, "max_papers": max_papers,
            "hour": hour, "tz": tz}


def form_of(sub: Subscriber) -> dict:
    return form(sub.email, sub.trending, "\n".join(sub.searches), sub.max_papers, sub.hour, sub.tz)
