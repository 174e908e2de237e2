"""When the radar expects what: arXiv's announcement schedule (US Eastern, across daylight-saving changes),
OAI set names, the backoff of a failing feed, when each feed is due, and a digest that waits for the morning's
listing and then says what is missing. The clock is a parameter; nothing here touches the network."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from paperradar import alerts, config, sync
from paperradar.clock import stamp
from paperradar.digest import Digests
from paperradar.store import Store

UTC = dt.UTC


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("now", "last", "next_"), [
    # Thursday 2026-06-11 20:00 EDT = Friday 00:00 UTC; the next is Sunday 20:00 EDT = Monday 00:00 UTC.
    (at(2026, 6, 12, 12), at(2026, 6, 12, 0), at(2026, 6, 15, 0)),
    (at(2026, 6, 13, 23), at(2026, 6, 12, 0), at(2026, 6, 15, 0)),  # Saturday: nothing is announced
    (at(2026, 6, 15, 0), at(2026, 6, 15, 0), at(2026, 6, 16, 0)),  # at the very moment: it has happened
    (at(2026, 6, 14, 23, 59), at(2026, 6, 12, 0), at(2026, 6, 15, 0)),
    # Winter (EST, UTC-5): Monday 2026-11-30 20:00 EST = Tuesday 01:00 UTC.
    (at(2026, 12, 1, 12), at(2026, 12, 1, 1), at(2026, 12, 2, 1)),
    # Across the change to EST (Sunday 2026-11-01): Thursday 10-29 20:00 EDT, then Sunday 11-01 20:00 EST.
    (at(2026, 10, 31, 12), at(2026, 10, 30, 0), at(2026, 11, 2, 1)),
])
def test_arxiv_announces_sunday_to_thursday_at_eight_pm_eastern(now, last, next_):
    assert sync.last_announcement(now) == last
    assert sync.next_announcement(now) == next_


def test_every_announcement_of_a_year_is_on_an_announcing_weekday_at_eight_eastern():
    now, seen = at(2026, 1, 1), []
    while now < at(2027, 1, 1):
        now = sync.next_announcement(now)
        local = now.astimezone(sync.EASTERN)
        seen.append(local)
        assert local.weekday() in sync.ANNOUNCE_WEEKDAYS and (local.hour, local.minute) == (20, 0)
        assert sync.last_announcement(now) == now
    # Wednesday 2025-12-31 20:00 EST (01:00 UTC on New Year's Day) to Wednesday 2026-12-30: 52 weeks of
    # five, and that last Wednesday; the loop's final step (2027-01-01 01:00 UTC) is past the year.
    assert len([t for t in seen if t < at(2027, 1, 1)]) == 52 * 5 + 1


@pytest.mark.parametrize(("category", "set_spec"), [
    ("cs.CL", "cs:cs:CL"), ("stat.ML", "stat:stat:ML"), ("math.AG", "math:math:AG"), ("cs", "cs"),
    ("hep-th", "physics:hep-th"), ("quant-ph", "physics:quant-ph"), ("astro-ph.CO", "physics:astro-ph:CO"),
    ("physics:hep-th", "physics:hep-th"), ("cs:cs:AI", "cs:cs:AI"), (" eess.SP ", "eess:eess:SP"),
])
def test_oai_sets_of_categories(category, set_spec):
    assert sync.oai_set(category) == set_spec


def test_a_failing_feed_waits_longer_after_each_failure_up_to_six_hours():
    waits = [sync.retry_after(n) for n in range(1, 10)]
    assert waits[:4] == [dt.timedelta(minutes=m) for m in (10, 20, 40, 80)]
    assert waits == sorted(waits) and waits[-1] == dt.timedelta(hours=6)


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "p.sqlite3") as s:
        yield s


def settings(tmp_path: Path, **changes) -> config.Settings:
    return config.load(env={}, data_dir=tmp_path).replace(**changes)


def ran(store: Store, source: str, started: dt.datetime, status: str = "ok", added: int = 0,
        error: str | None = None) -> None:
    run = store.sync.start(source, stamp(started))
    store.sync.finish(run, stamp(started + dt.timedelta(minutes=1)), status, {"added": added}, error)


def test_arxiv_is_due_after_an_announcement_until_a_run_after_the_settling_time(store, tmp_path):
    s = settings(tmp_path, sync_categories="cs.CL", sync_interval_min=60)
    feed = sync.ArxivFeed(s)
    store.set_state("oai:arXiv:cs:cs:CL", {"last_datestamp": "2026-06-11"})
    assert feed.pending(store, at(2026, 6, 12, 1)) is None  # never synced by the feed
    ran(store, "arxiv", at(2026, 6, 12, 0, 30), added=40)  # right after Thursday's announcement
    assert "next try" in feed.pending(store, at(2026, 6, 12, 1))  # within the interval
    assert feed.pending(store, at(2026, 6, 12, 1, 31)) is None  # the OAI side may have caught up since
    ran(store, "arxiv", at(2026, 6, 12, 3, 30))  # after announcement + SETTLE: complete
    why = feed.pending(store, at(2026, 6, 13, 12))  # Saturday
    assert why.startswith("up to date") and "2026-06-15T00:00:00Z" in why
    assert feed.pending(store, at(2026, 6, 15, 0, 5)) is None  # Sunday's announcement


def test_a_new_category_is_due_at_once(store, tmp_path):
    s = settings(tmp_path, sync_categories="cs.CL, cs.IR")
    store.set_state("oai:arXiv:cs:cs:CL", {"last_datestamp": "2026-06-11"})
    ran(store, "arxiv", at(2026, 6, 12, 3, 30))
    assert sync.ArxivFeed(s).pending(store, at(2026, 6, 13)) is None  # cs:cs:IR was never harvested


def test_hugging_face_is_due_every_interval(store, tmp_path):
    feed = sync.HFFeed(settings(tmp_path, sync_interval_min=30))
    ran(store, "hf", at(2026, 6, 12, 8))
    assert feed.pending(store, at(2026, 6, 12, 8, 29)) is not None
    assert feed.pending(store, at(2026, 6, 12, 8, 30)) is None


def test_hugging_face_days_cover_the_gap_and_the_refresh_window(store, tmp_path):
    feed = sync.HFFeed(settings(tmp_path, sync_hf_refresh_days=3, sync_first_days=2))
    now = at(2026, 6, 12, 9)
    assert feed.days(store, now, None) == ["2026-06-10", "2026-06-11", "2026-06-12"]  # refresh ⊇ first days
    store.set_state(feed.STATE, {"last_day": "2026-06-01"})  # down for ten days: every day since
    days = feed.days(store, now, None)
    assert days[0] == "2026-06-01" and days[-1] == "2026-06-12" and len(days) == 12
    assert feed.days(store, now, "2026-05-01")[0] == "2026-05-01"  # a backfill


def test_followed_categories_come_from_the_setting_the_store_or_the_defaults(store, tmp_path):
    from paperradar.models import Paper

    assert sync.followed_categories(store, settings(tmp_path)) == list(sync.DEFAULT_CATEGORIES)
    papers = [Paper(title=f"Paper number {i}", source="jsonl", arxiv_id=f"2606.{i:05d}",
                    categories=["cs.CL" if i % 3 else "hep-th", "cs.LG"]) for i in range(1, 61)]
    papers.append(Paper(title="A lonely one", source="jsonl", arxiv_id="2606.09999", categories=["q-fin.ST"]))
    store.upsert_papers(papers)
    assert sync.followed_categories(store, settings(tmp_path)) == ["cs.CL", "hep-th"]  # < 2 %: q-fin.ST
    assert sync.followed_categories(store, settings(tmp_path, sync_categories="stat.ML; cs")) == ["stat.ML",
                                                                                                   "cs"]


def test_the_schedule_skips_a_feed_in_backoff_and_tries_it_when_the_wait_is_over(store, tmp_path):
    s = settings(tmp_path, sync_hf=True, sync_categories="cs.CL")
    store.set_state("oai:arXiv:cs:cs:CL", {"last_datestamp": "2026-06-11"})
    ran(store, "arxiv", at(2026, 6, 12, 3, 30))
    ran(store, "hf", at(2026, 6, 12, 8), "failed", error="HTTP 503")
    ran(store, "hf", at(2026, 6, 12, 8, 15), "failed", error="HTTP 503")

    def refuse(interval):  # any request would be a bug here
        raise AssertionError("no feed is due, nothing may be requested")

    report = sync.sync(store, s, at(2026, 6, 12, 8, 30), only_due=True, client_factory=refuse)
    hf = next(r for r in report.runs if r.feed == "hf")
    assert hf.status == "skipped" and "failing (2 runs in a row); next try at 2026-06-12T08:36:00Z" in hf.note
    assert [r.status for r in report.runs] == ["skipped", "skipped"]


# -- digests that wait for the listing, and say what is missing ----------------------------------------------
@pytest.fixture
def digests(data, mailbox):
    s = config.load(env={"PAPERRADAR_SMTP_HOST": "127.0.0.1", "PAPERRADAR_SMTP_PORT": str(mailbox.port),
                         "PAPERRADAR_MAIL_FROM": "digest@paperradar.test", "PAPERRADAR_SECRET_KEY": "k" * 32,
                         "PAPERRADAR_DIGEST_WAIT_MIN": "90"}, data_dir=data)
    with Store(data / "paperradar.sqlite3") as st:
        yield Digests(st, None, s)


def test_a_digest_waits_for_the_mornings_listing_then_goes_saying_it_is_missing(digests, mailbox):
    store = digests.store
    sub = store.subscriptions.upsert("ada@example.org", trending=True, searches=[], max_papers=5, hour=8,
                                     tz="UTC", nonce="n", now="2026-06-01T00:00:00Z")
    store.subscriptions.set_status(sub.id, "active", now="2026-06-01T00:00:00Z")
    # arXiv has synced before (the radar follows it) but not since Thursday's announcement (Fri 00:00 UTC).
    ran(store, "arxiv", at(2026, 6, 11, 12), added=30)
    friday = at(2026, 6, 12, 8)
    assert sync.listings_in(store, friday) is False
    assert digests.compose_due(friday) == 0  # its hour has come: it waits
    assert digests.compose_due(friday + dt.timedelta(minutes=89)) == 0
    assert digests.compose_due(friday + dt.timedelta(minutes=90)) == 1  # the limit: it goes
    digests.send_due(friday + dt.timedelta(minutes=90))
    (raw,) = mailbox.raw
    assert b"had not arrived when this digest was composed" in raw.replace(b"=\r\n", b"")


def test_a_digest_goes_at_its_hour_once_the_listing_is_in(digests):
    store = digests.store
    sub = store.subscriptions.upsert("bo@example.org", trending=True, searches=[], max_papers=5, hour=8,
                                     tz="UTC", nonce="n", now="2026-06-01T00:00:00Z")
    store.subscriptions.set_status(sub.id, "active", now="2026-06-01T00:00:00Z")
    ran(store, "arxiv", at(2026, 6, 12, 0, 30), added=12)  # papers came in after the announcement
    assert sync.listings_in(store, at(2026, 6, 12, 8)) is True
    assert digests.compose_due(at(2026, 6, 12, 8)) == 1


def test_without_arxiv_sync_digests_never_wait(digests):
    store = digests.store
    sub = store.subscriptions.upsert("cy@example.org", trending=True, searches=[], max_papers=5, hour=8,
                                     tz="UTC", nonce="n", now="2026-06-01T00:00:00Z")
    store.subscriptions.set_status(sub.id, "active", now="2026-06-01T00:00:00Z")
    assert sync.listings_in(store, at(2026, 6, 12, 8)) is None  # papers come by hand here
    assert digests.compose_due(at(2026, 6, 12, 8)) == 1


def test_no_listings_on_an_announcing_weekday_is_an_alert_that_closes_when_papers_come(store, tmp_path):
    s = settings(tmp_path, sync_categories="cs.CL", sync_hf=False)
    ran(store, "arxiv", at(2026, 6, 11, 12), added=30)
    ran(store, "arxiv", at(2026, 6, 12, 4))  # 4 h after Thursday's announcement: nothing came
    assert alerts.check(store, s, at(2026, 6, 12, 4, 5))["opened"] == 1
    (alert,) = alerts.open_alerts(store)
    assert alert["kind"] == "no_listings" and alert["source"] == "arxiv" and alert["mailed"] is None
    assert alerts.check(store, s, at(2026, 6, 12, 5))["opened"] == 0  # still open: not opened twice
    ran(store, "arxiv", at(2026, 6, 12, 6), added=25)
    assert alerts.check(store, s, at(2026, 6, 12, 6, 5))["closed"] == 1
    assert alerts.open_alerts(store) == []
