"""Trending windows and votes over a real SQLite file; the store's per-thread reads and time limit."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paperradar import trending
from paperradar.models import Paper
from paperradar.query import QueryError, compose, parse_query
from paperradar.store import QueryTimeout, Store


def paper(n: int, day: str, votes: int | None = None, **kw) -> Paper:
    return Paper(title=f"Paper number {n}", source="hf" if votes is not None else "arxiv",
                 arxiv_id=f"2606.{n:05d}", announced=day, upvotes=votes, **kw)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "p.sqlite3")
    s.upsert_papers([
        paper(1, "2026-06-10", 5), paper(2, "2026-06-10", 50), paper(3, "2026-06-09", 400),
        paper(4, "2026-06-04", 1000), paper(5, "2026-06-10"), paper(6, "2026-05-13", 9999),
        Paper(title="Only a submission date", source="arxiv", arxiv_id="2606.00007",
              submitted="2026-06-10T11:00:00Z"),
    ])
    yield s
    s.close()


NOW = dt.datetime(2026, 6, 10, 18, 0, tzinfo=dt.UTC)


def keys(page) -> list[str]:
    return [i.paper.key for i in page.items]


def test_day_ranks_the_latest_listing_day_by_votes(store):
    page = trending.trending(store, "day", now=NOW)
    assert (page.since, page.until, page.total) == ("2026-06-10", "2026-06-10", 4)
    assert keys(page) == ["2606.00002", "2606.00001", "2606.00005", "2606.00007"]  # 0-vote ties: by id
    assert [i.votes for i in page.items] == [50, 5, 0, 0]


def test_week_decays_votes_with_age(store):
    page = trending.trending(store, "week", now=NOW)
    assert page.since == "2026-06-04"
    # 400 votes a day old beat 50 from today; 1,000 votes six days old lose to both
    assert keys(page)[:4] == ["2606.00003", "2606.00002", "2606.00004", "2606.00001"]
    assert "2606.00006" not in keys(page)
    month = keys(trending.trending(store, "month", now=NOW))
    assert month[0] == "2606.00003"
    assert month.index("2606.00006") > month.index("2606.00004")  # 9,999 votes, but 40 days old


def test_window_ends_at_the_last_listing_day_not_in_the_future(store):
    later = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)  # nothing listed since June: show June's last day
    page = trending.trending(store, "day", now=later)
    assert page.until == "2026-06-10" and page.total == 4
    earlier = dt.datetime(2026, 6, 9, 12, tzinfo=dt.UTC)  # papers "from the future" are left out
    assert trending.trending(store, "day", now=earlier).until == "2026-06-09"


def test_local_votes_add_to_imported_ones(store):
    pid = store.get("2606.00001").id
    for user in range(100):
        assert store.add_vote(pid, f"user:{user}")
    assert not store.add_vote(pid, "user:7")
    assert store.vote_totals([pid]) == {pid: 105}
    assert keys(trending.trending(store, "day", now=NOW))[0] == "2606.00001"
    assert store.remove_vote(pid, "user:7") and not store.remove_vote(pid, "user:7")
    assert store.vote_totals([pid]) == {pid: 104}


def test_empty_store_and_bad_period(tmp_path):
    with Store(tmp_path / "e.sqlite3") as s:
        page = trending.trending(s, "week")
        assert (page.since, page.until, page.total, page.items) == (None, None, 0, [])
        with pytest.raises(QueryError, match="unknown period"):
            trending.trending(s, "fortnight")


def test_paging_is_stable(store):
    whole = keys(trending.trending(store, "month", now=NOW, limit=100))
    pages = [keys(trending.trending(store, "month", now=NOW, limit=2, offset=o)) for o in (0, 2, 4, 6)]
    assert sum(pages, []) == whole


def test_age_hours():
    assert trending.age_hours("2026-06-10", NOW) == 18
    assert trending.age_hours("2026-06-10T05:00:00Z", NOW) == 18  # the day counts, not the time
    assert trending.age_hours(None, NOW) == trending.age_hours("garbage", NOW) == 1e6
    assert trending.age_hours("2026-06-11", NOW) == 0


def test_newest(store):
    assert [p.key for p in store.newest(limit=3)] == ["2606.00005", "2606.00002", "2606.00001"]


def test_reads_from_other_threads_use_their_own_connection(store):
    seen = {}

    def read():
        seen["count"] = store.count()
        seen["conn"] = store._r

    t = threading.Thread(target=read)
    t.start()
    t.join()
    assert seen["count"] == 7 and seen["conn"] is not store.db


def test_time_limit_interrupts_a_long_read(store):
    slow = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n"
    with pytest.raises(QueryTimeout, match="longer than 50 ms"), store.time_limit(50):
        store._r.execute(slow).fetchone()
    assert store.count() == 7  # the connection is still usable, without the limit


@pytest.mark.parametrize("fields, expected", [
    ({"text": "graph"}, "graph"),
    ({"text": " graph ", "category": "cs.LG, cs.AI"}, "graph cat:cs.LG cat:cs.AI"),
    ({"author": 'Yann "the" LeCun'}, 'au:"Yann the LeCun"'),
    ({"text": "x", "since": "2024-01", "until": " 2025 "}, "x since:2024-01 until:2025"),
])
def test_compose(fields, expected):
    assert compose(**fields) == expected


@given(st.text(max_size=30), st.text(max_size=30), st.text(max_size=30), st.text(max_size=12),
       st.text(max_size=12))
def test_composed_queries_parse_or_fail_clearly(text, category, author, since, until):
    q = compose(text, category=category, author=author, since=since, until=until)
    try:
        parse_query(q)
    except QueryError as e:
        assert str(e)
