"""Keeping the radar current (paperradar.sync), day after simulated day, against recorded real responses
(tests/feeds.py: arXiv OAI-PMH and Hugging Face daily papers served through httpx's MockTransport, or a real
local HTTP server for the `paperradar sync` subprocess). The clock is always a parameter: nothing waits.

The simulated week is Monday 2025-03-17 to Friday 2025-03-21: arXiv announces Sunday to Thursday at 20:00
US Eastern, which (daylight saving time) is midnight UTC, so each listing day's papers are there from 00:00
UTC and the morning's cycle at 08:00 UTC brings them, before the 08:00 digests.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from feeds import HF_URL, OAI_URL, FakeTime, RecordedFeeds, client_factory, listing_days, serve, wait_until
from mailsink import text_of

from paperradar import alerts, config, sync, trending
from paperradar.clock import stamp
from paperradar.digest import Digests, Preferences
from paperradar.store import Store

DAYS = listing_days(dt.date(2025, 3, 17), 5)  # Monday to Friday
HOUR = dt.timedelta(hours=1)
OPERATOR = "ops@example.org"
READER = "reader@example.org"
PAPERRADAR = [sys.executable, "-c", "from paperradar.cli import main; main()"]


def at(day: dt.date, hour: int = 8, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC)


class Radar:
    """A store in ``tmp``, settings pointing at the recorded feeds and the mail sink, and a cycle runner."""

    def __init__(self, tmp: Path, sink, categories: str = "cs.CV,cs.CL", engine_factory=None,
                 days: list[dt.date] = DAYS, **settings):
        self.feeds = RecordedFeeds(days, page_size=25)
        self.fake = FakeTime()
        self.sink = sink
        env = {**sink.env, "PAPERRADAR_BASE_URL": "http://radar.test"}
        self.settings = config.load(env=env, data_dir=tmp).replace(
            sync_categories=categories, arxiv_oai_url=OAI_URL, hf_api_url=HF_URL, sync_first_days=7,
            sync_hf_refresh_days=3, sync_alert_after=2, operator_email=OPERATOR, **settings)
        self.store = Store(tmp / "paperradar.sqlite3")
        self.engine = engine_factory(self.store) if engine_factory else None

    def cycle(self, now: dt.datetime, **kw) -> dict:
        self.feeds.today = now.date()  # a listing is served from midnight UTC of its day
        return sync.cycle(self.store, self.settings, self.engine, now,
                          client_factory=client_factory(self.feeds, self.fake), **kw)

    def subscribe(self, confirmed: dt.datetime, **prefs) -> int:
        d = Digests(self.store, self.engine, self.settings)
        p = Preferences(**prefs).validate()
        sub = d.subs.upsert(READER, trending=p.trending, searches=p.searches, max_papers=p.max_papers,
                            hour=p.hour, tz=p.tz, nonce="n0nce", now=stamp(confirmed))
        d.subs.set_status(sub.id, "active", now=stamp(confirmed))
        return sub.id

    def expected_ids(self, until: dt.date) -> set[str]:
        """Every paper the radar should hold once synced through ``until``: the followed sets' papers and
        every HF-listed paper."""
        ids = set()
        for cat in self.settings.sync_categories.split(","):
            ids |= set(self.feeds.in_set(sync.oai_set(cat), until))
        for day in DAYS:
            if day <= until:
                ids |= set(self.feeds.hf_ids(day))
        return ids

    def stored_ids(self) -> Counter:
        rows = self.store._r.execute("SELECT arxiv_id FROM papers").fetchall()
        return Counter(r[0] for r in rows)

    def close(self):
        if self.engine is not None:
            self.engine.close()
        self.store.close()


@pytest.fixture
def radar(tmp_path, mailbox):
    made = []

    def make(**kw) -> Radar:
        r = Radar(tmp_path / f"data{len(made)}", mailbox, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture
def engine_factory(embedder):
    from paperradar.search import SearchEngine

    return lambda store: SearchEngine(store, embedder=embedder, embed_threads=1)


def runs_of(store: Store, feed: str) -> list:
    return list(reversed(store.sync.runs(feed, limit=200)))


def mails_to(sink, address: str) -> list:
    return sink.to(address)


# -- a week of mornings -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_week_of_mornings_brings_each_listing_into_index_digest_and_trending(radar, engine_factory):
    r = radar(engine_factory=engine_factory)
    r.subscribe(at(DAYS[0], 0) - dt.timedelta(days=1), trending=True, searches=["vision"], max_papers=10)
    for n, day in enumerate(DAYS, 1):
        done = r.cycle(at(day))
        assert [run["status"] for run in done["sync"]["runs"]] == ["ok", "ok"], done
        assert done["indexed"]["vectors"] > 0  # the new papers were embedded
        assert done["digests"]["sent"] == 1
        digest = mails_to(r.sink, READER)[-1]
        assert len(mails_to(r.sink, READER)) == n
        text = text_of(digest)
        assert f"== Trending ({day.isoformat()}) ==" in text
        trending_part, _, search_part = text.partition("== Your search: vision ==")
        # the day's Hugging Face listing tops trending; nothing from the days before is repeated
        for pid in r.feeds.hf_ids(day):
            assert f"/{pid}" in trending_part, (day, pid)
        shown = {p for p in r.feeds.listed() if f"/{p}" in text}
        assert shown and shown <= set(r.feeds.on_day(day)) | set(r.feeds.hf_ids(day)), (day, shown)
        assert "/paper/" in search_part and "No new paper matches" not in search_part
    # the store holds every listed paper of the followed categories once, and the runs say so
    stored = r.stored_ids()
    assert set(stored) == r.expected_ids(DAYS[-1]) and max(stored.values()) == 1
    assert sum(run.added for feed in ("arxiv", "hf") for run in runs_of(r.store, feed)) == r.store.count()
    # the last day's papers are searchable: each of the last day's arXiv titles finds its paper
    for pid in r.feeds.on_day(DAYS[-1])[:3]:
        title = r.feeds.papers[pid]["title"]
        hits = r.engine.search(title, limit=3).hits
        assert hits and hits[0].paper.arxiv_id == pid, (title, [h.paper.arxiv_id for h in hits])
    # refreshed votes: on Monday slot 0 (most votes, never growing) led slot 1; by Friday slot 1 leads
    lead, climber = r.feeds.hf_ids(DAYS[0])[:2]
    assert r.feeds.upvotes(DAYS[0], 0, DAYS[0]) > r.feeds.upvotes(DAYS[0], 1, DAYS[0])
    page = trending.trending(r.store, "week", limit=1000, now=at(DAYS[-1]))
    order = [item.paper.arxiv_id for item in page.items]
    assert order.index(climber) < order.index(lead)
    # Monday's votes were refreshed while Monday was within sync_hf_refresh_days (3): last on Wednesday
    votes = {item.paper.arxiv_id: item.votes for item in page.items}
    assert votes[climber] == r.feeds.upvotes(DAYS[0], 1, DAYS[2]) < r.feeds.upvotes(DAYS[0], 1, DAYS[-1])


def test_first_morning_trending_follows_votes_then_refresh_reorders(radar):
    """Without an index: Monday's ranking puts slot 0 first; two days of refreshed votes let slot 1 pass."""
    r = radar(categories="cs.CL")
    r.cycle(at(DAYS[0]), digests=False)
    lead, climber = r.feeds.hf_ids(DAYS[0])[:2]

    def order(now):
        page = trending.trending(r.store, "week", limit=50, now=now)
        return [item.paper.arxiv_id for item in page.items]

    first = order(at(DAYS[0]))
    assert first.index(lead) < first.index(climber)
    r.cycle(at(DAYS[2]), digests=False)
    later = order(at(DAYS[2]))
    assert later.index(climber) < later.index(lead)
    assert r.store.find(arxiv_id=climber).upvotes == r.feeds.upvotes(DAYS[0], 1, DAYS[2])


def test_arxiv_is_not_asked_between_thursday_night_and_sunday_night(radar):
    r = radar(categories="cs.CL")
    r.cycle(at(DAYS[-1], 4), digests=False)  # Friday 04:00 UTC: Thursday's announcement, settled
    asked = r.feeds.counts["arxiv"]
    assert asked > 0
    saturday, sunday, monday = (DAYS[-1] + dt.timedelta(days=k) for k in (1, 2, 3))
    # Friday evening (US Eastern) to Sunday afternoon: hourly cycles never ask arXiv; HF keeps its interval
    moment = at(DAYS[-1], 5)
    while moment < at(monday, 0):
        done = r.cycle(moment, digests=False)
        arxiv_run = done["sync"]["runs"][0]
        assert arxiv_run["status"] == "skipped" and arxiv_run["feed"] == "arxiv", (moment, arxiv_run)
        moment += HOUR
    assert r.feeds.counts["arxiv"] == asked
    assert r.feeds.counts["hf"] > 40  # the other feed was not held back
    # Sunday 20:00 EDT is Monday 00:00 UTC: the next run after the announcement asks arXiv again
    r.cycle(at(monday, 0, 30), digests=False)
    assert r.feeds.counts["arxiv"] > asked
    assert sync.next_announcement(at(saturday, 12)) == at(monday, 0)
    assert sync.last_announcement(at(sunday, 12)) == at(DAYS[-1], 0)


# -- outages ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("feed,how", [("arxiv", "503"), ("hf", "connect")])
def test_a_source_down_for_two_days_fails_backs_off_alerts_once_and_catches_up(radar, feed, how):
    r = radar()
    r.subscribe(at(DAYS[0], 0) - dt.timedelta(days=1), trending=True, max_papers=10)
    assert [x["status"] for x in r.cycle(at(DAYS[0]))["sync"]["runs"]] == ["ok", "ok"]
    other = "hf" if feed == "arxiv" else "arxiv"
    # down from Tuesday 00:00 to Thursday 02:00 UTC: two listing days missed
    r.feeds.down[feed] = how
    moment = at(DAYS[1], 0)
    while moment < at(DAYS[3], 2):
        r.cycle(moment)
        moment += HOUR
    failed = [x for x in runs_of(r.store, feed) if x.status == "failed"]
    assert len(failed) >= 4
    assert all(x.error and ("503" in x.error if how == "503" else "ConnectError" in x.error) for x in failed)
    # each retry waited at least sync.retry_after(failures so far), and the waits grew
    starts = [dt.datetime.fromisoformat(x.started.replace("Z", "+00:00")) for x in failed]
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    for k, gap in enumerate(gaps, 1):
        assert gap >= sync.retry_after(k), (k, gap)
    assert gaps == sorted(gaps) and gaps[-1] > gaps[0]
    assert len(failed) < 48 // 2  # not hammered once an hour
    # the other feed went on as usual
    assert all(x.status == "ok" for x in runs_of(r.store, other))
    # the alert is open, the operator mailed exactly once, the digests carried the note
    (alert,) = alerts.open_alerts(r.store)
    assert (alert["source"], alert["kind"]) == (feed, "failing") and alert["mailed"]
    assert len(mails_to(r.sink, OPERATOR)) == 1
    assert f"[paperradar] {feed}: failing" == mails_to(r.sink, OPERATOR)[0]["Subject"]
    digests = mails_to(r.sink, READER)
    assert len(digests) == 3  # Monday, Tuesday, Wednesday
    name = {"arxiv": "arXiv", "hf": "Hugging Face"}[feed]
    for message in digests[1:]:
        assert f"{name} could not be reached" in " ".join(text_of(message).split())
    assert "could not be reached" not in text_of(digests[0])
    assert any(sync.problems(r.store, at(DAYS[2], 9)))
    # recovery: the next run after the backoff succeeds, the alert closes with one more mail
    r.feeds.down.clear()
    moment = at(DAYS[3], 2)
    while not runs_of(r.store, feed)[-1].status == "ok":
        r.cycle(moment)
        moment += HOUR
        assert moment < at(DAYS[3], 12), "no successful run within the backoff"
    assert alerts.open_alerts(r.store) == []
    operator = mails_to(r.sink, OPERATOR)
    assert [m["Subject"] for m in operator] == [f"[paperradar] {feed}: failing",
                                                f"[paperradar] {feed}: recovered"]
    r.cycle(moment + HOUR)
    assert len(mails_to(r.sink, OPERATOR)) == 2
    # every paper of the missed days is in the store, each once; the runs' counts add up to the store's
    stored = r.stored_ids()
    assert set(stored) == r.expected_ids(DAYS[3]) and max(stored.values()) == 1
    assert sum(x.added for f in ("arxiv", "hf") for x in runs_of(r.store, f)) == r.store.count()
    assert sync.problems(r.store, at(DAYS[3], 9)) == []


def test_hf_refresh_of_votes_only_embeds_nothing(radar, engine_factory):
    r = radar(categories="cs.CL", engine_factory=engine_factory, days=DAYS[:1])  # one listing: Monday's
    first = r.cycle(at(DAYS[0]), digests=False)
    assert first["indexed"]["vectors"] == r.store.count() > 0
    hf_ids = r.feeds.hf_ids(DAYS[0])
    before = {pid: r.store.find(arxiv_id=pid).upvotes for pid in hf_ids}
    # Wednesday, with no listing since Monday: only Monday's votes and comments have grown
    wednesday = DAYS[2]
    done = r.cycle(at(wednesday, 12), only=["hf"], digests=False)
    (hf,) = done["sync"]["runs"]
    assert hf["status"] == "ok" and hf["added"] == 0 and hf["updated"] == len(hf_ids)
    after = {pid: r.store.find(arxiv_id=pid).upvotes for pid in hf_ids}
    assert after[hf_ids[0]] == before[hf_ids[0]]  # slot 0's votes do not grow (its comments do)
    assert after[hf_ids[1]] == r.feeds.upvotes(DAYS[0], 1, wednesday) > before[hf_ids[1]]
    assert done["indexed"]["vectors"] == 0
    assert done["indexed"]["lexical"] > 0  # the lexical index did see the change
    assert r.engine.pending() == {"lexical": 0, "vectors": 0}


# -- killed mid-harvest -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_sync_killed_mid_harvest_resumes_from_its_token(tmp_path):
    today = dt.datetime.now(dt.UTC).date()
    days = listing_days(today - dt.timedelta(days=6), 4)
    feeds = RecordedFeeds([d for d in days if d <= today], page_size=60)
    feeds.today = today
    total = feeds.in_set("cs:cs:CV")
    assert len(total) > 2 * feeds.page_size  # three pages at least
    feeds.block_at = 3  # the third page
    data = tmp_path / "data"
    with serve(feeds) as base:
        env = {**os.environ, "PAPERRADAR_DATA_DIR": str(data), "PAPERRADAR_ARXIV_OAI_URL": base + "/oai",
               "PAPERRADAR_HF_API_URL": base + "/api/daily_papers", "PAPERRADAR_SYNC_CATEGORIES": "cs.CV",
               "PAPERRADAR_SYNC_FIRST_DAYS": "10"}
        cmd = [*PAPERRADAR, "sync", "--only", "arxiv", "--no-index", "--no-digests", "--json"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert feeds.blocked.wait(60), "the sync never reached its third page"
            # meanwhile the store answers readers
            store = Store(data / "paperradar.sqlite3")
            assert wait_until(lambda: store.count() == 2 * feeds.page_size, timeout=10)
            assert store.find(arxiv_id=total[0]) is not None
            (running,) = store.sync.runs("arxiv")
            assert running.status == "running" and running.added == 2 * feeds.page_size
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        feeds.unblock.set()
        feeds.block_at = None
        seen = len(feeds.log)
        rerun = subprocess.run(cmd, env=env, capture_output=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr.decode()
    # the rerun went on from the saved token: its first request is the third page's token, not a new list
    resumed = [params for endpoint, params in feeds.log[seen:] if endpoint == "arxiv"]
    assert set(resumed[0]) == {"verb", "resumptionToken"}
    assert resumed[0]["resumptionToken"] == feeds.log[2][1].get("resumptionToken")
    assert all("metadataPrefix" not in p for p in resumed)
    stored = Counter(r[0] for r in store._r.execute("SELECT arxiv_id FROM papers"))
    assert set(stored) == set(total) and max(stored.values()) == 1
    runs = list(reversed(store.sync.runs("arxiv")))
    assert [x.status for x in runs] == ["interrupted", "ok"]
    assert runs[0].added + runs[1].added == len(total) == store.count()
    store.close()


@pytest.mark.slow
def test_a_paper_only_arxiv_lists_reaches_the_digest_of_a_saved_search(radar, engine_factory):
    r = radar(categories="cs.CL", engine_factory=engine_factory)
    tuesday = DAYS[1]
    (pid,) = [p for p in r.feeds.in_set("cs:cs:CL", tuesday) if r.feeds.day_of[p] == tuesday
              and p not in r.feeds.hf_ids(tuesday)][:1]
    title = r.feeds.papers[pid]["title"]
    r.subscribe(at(DAYS[0], 0) - dt.timedelta(days=1), trending=False, searches=[f'"{title}"'], max_papers=10)
    for day in DAYS:
        r.cycle(at(day))
    assert r.store.find(arxiv_id=pid) is not None
    assert r.engine.search(title, limit=1).hits[0].paper.arxiv_id == pid  # the index has it
    texts = [text_of(m) for m in mails_to(r.sink, READER)]
    assert len(texts) == len(DAYS)
    assert any(f"/paper/{pid}" in t for t in texts), "listed on Tuesday, in no digest of the week"
