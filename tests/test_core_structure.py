"""The core's layout: one clock, named errors in paperradar.errors, no import cycle between the digest and
the recommender, and library / accounts / recommend not depending on the digest module."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import pytest

from paperradar import clock, digest, errors, mail

CORE = Path(__file__).parent.parent / "paperradar"


def imported_by(module: str) -> set[str]:
    """The paperradar modules a fresh interpreter has loaded after importing ``module``."""
    code = f"import sys, {module}; print(' '.join(m for m in sys.modules if m.startswith('paperradar')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("module", ["paperradar.recommend", "paperradar.library", "paperradar.accounts"])
def test_the_digest_is_not_a_dependency_of(module):
    assert "paperradar.digest" not in imported_by(module)


def test_the_digest_imports_the_recommender_at_the_top():
    assert re.search(r"^from \.recommend import Recommender$", (CORE / "digest.py").read_text(), re.M)


def test_one_clock():
    """The core asks paperradar.clock for the time: no module computes "now" its own way."""
    own_ways = re.compile(r"datetime\.now\(|time\.time\(\)|time\.gmtime\(|utcnow\(")
    files = [CORE / f"{name}.py" for name in ("accounts", "digest", "library", "recommend", "mail",
                                                "trending",
                                                "search", "jobs")]
    files += sorted((CORE / "store").glob("*.py"))
    assert {f.name: own_ways.findall(f.read_text()) for f in files if own_ways.search(f.read_text())} == {}


def test_clock():
    when = dt.datetime(2026, 6, 11, 10, 30, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert clock.utc(when) == dt.datetime(2026, 6, 11, 8, 30, 5, tzinfo=dt.UTC)
    assert clock.utc(dt.datetime(2026, 6, 11, 8, 30, 5)) == dt.datetime(2026, 6, 11, 8, 30, 5, tzinfo=dt.UTC)
    assert clock.stamp(when) == "2026-06-11T08:30:05Z" and clock.day(when) == "2026-06-11"
    assert clock.seconds(when) == when.timestamp()
    before = dt.datetime.now(dt.UTC)
    assert before <= clock.utc() <= dt.datetime.now(dt.UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", clock.stamp())


def test_named_errors_and_templates_have_one_home():
    assert errors.RateLimited.http_status == 429 and issubclass(errors.RateLimited, errors.PaperradarError)
    assert digest.RateLimited is errors.RateLimited  # still importable from the digest by the web layer
    assert digest.stamp is clock.stamp and digest.utc is clock.utc
    assert {"signin.txt", "signin.html", "confirm.txt", "digest.html"} <= set(mail.TEMPLATES.list_templates())
