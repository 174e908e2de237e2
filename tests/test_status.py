"""The radar's status: status.report() over a real store with sync runs at chosen moments (30 days of papers
with the empty days, failures in a row, lag, when arXiv's feed counts as current), what the public sees and
what only the operator sees, and /status and /api/v1/status through the real app."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from webclient import close, make_client

from paperradar import alerts, config, status
from paperradar.accounts import Accounts
from paperradar.clock import stamp, utc
from paperradar.models import Paper
from paperradar.store import Store
from paperradar.web.app import create_app
from paperradar.web.deps import SESSION_COOKIE

# Thursday 11 June 2026, 12:00 UTC: arXiv announced at 00:00 UTC (Wednesday 20:00 US Eastern)
NOW = dt.datetime(2026, 6, 11, 12, 0, tzinfo=dt.UTC)
SECRET_ERROR = "HTTP 503 from https://oaipmh.arxiv.org/oai?token=s3cr3t at /srv/paperradar"
TOP_KEYS = {"now", "current", "summary", "detail", "feeds", "arxiv", "index", "outbox", "alerts"}


def run(store: Store, source: str, started: dt.datetime, status_: str = "ok", added: int = 0,
        error: str | None = None, minutes: int = 5) -> None:
    run_id = store.sync.start(source, stamp(started))
    store.sync.finish(run_id, stamp(started + dt.timedelta(minutes=minutes)), status_,
                      {"added": added, "updated": 1, "unchanged": 2, "rejected": 0}, error)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "paperradar.sqlite3")
    yield s
    s.close()


@pytest.fixture
def settings(tmp_path):
    return config.load({}, tmp_path)


def feed(report: dict, name: str) -> dict:
    return next(f for f in report["feeds"] if f["name"] == name)


# -- the core ------------------------------------------------------------------------------------------------
def test_papers_per_day_cover_thirty_days_with_the_empty_ones(store, settings):
    run(store, "arxiv", NOW - dt.timedelta(days=31), added=999)  # before the window
    run(store, "arxiv", NOW - dt.timedelta(days=29, hours=11), added=7)  # the window's first day
    run(store, "arxiv", NOW - dt.timedelta(days=3), added=40)
    run(store, "arxiv", NOW - dt.timedelta(days=3, hours=-1), added=2)  # same day: summed
    run(store, "hf", NOW - dt.timedelta(hours=1), added=5)
    r = status.report(store, settings, now=NOW)
    days = feed(r, "arxiv")["per_day"]
    assert len(days) == status.DAYS == 30
    assert days[0] == {"day": "2026-05-13", "added": 7} and days[-1]["day"] == "2026-06-11"
    assert [d["day"] for d in days] == sorted({d["day"] for d in days})  # each day once, in order
    assert {d["day"]: d["added"] for d in days}["2026-06-08"] == 42
    assert sum(1 for d in days if d["added"] == 0) == 28
    assert feed(r, "arxiv")["added_30d"] == 49
    assert feed(r, "hf")["per_day"][-1] == {"day": "2026-06-11", "added": 5}
    assert sum(d["added"] for d in feed(r, "hf")["per_day"]) == 5


def test_current_feeds_say_how_long_ago_they_synced(store, settings):
    run(store, "arxiv", NOW - dt.timedelta(hours=2), added=120)  # after 00:00 + 3 h settling
    run(store, "hf", NOW - dt.timedelta(minutes=20), added=3)
    r = status.report(store, settings, now=NOW)
    assert r["current"] is True
    assert r["summary"] == "current: arXiv synced 2 h ago, Hugging Face 20 min ago"
    arxiv = feed(r, "arxiv")
    assert arxiv["state"] == "current" and arxiv["lag_s"] == 7200 and arxiv["consecutive_failures"] == 0
    assert arxiv["last_success"]["added"] == 120 and arxiv["last_run"]["status"] == "ok"
    assert arxiv["followed"] and arxiv["categories"] == ["cs.AI", "cs.CL", "cs.CV", "cs.LG", "stat.ML"]
    assert feed(r, "hf")["lag_s"] == 1200 and feed(r, "hf")["categories"] is None
    assert r["arxiv"] == {"last_announcement": "2026-06-11T00:00:00Z",
                          "next_announcement": "2026-06-12T00:00:00Z"}


def test_arxiv_is_behind_when_the_latest_listing_was_not_synced(store, settings):
    run(store, "arxiv", NOW - dt.timedelta(days=2))  # Tuesday noon: before two announcements
    run(store, "hf", NOW - dt.timedelta(minutes=20))
    r = status.report(store, settings, now=NOW)
    assert feed(r, "arxiv")["state"] == "behind" and not feed(r, "arxiv")["current"]
    assert r["current"] is False and r["summary"].startswith("not current: arXiv synced 2 days ago")
    # just after an announcement, before it has settled, the previous listing is enough
    r = status.report(store, settings, now=dt.datetime(2026, 6, 10, 1, 0, tzinfo=dt.UTC))
    assert feed(r, "arxiv")["current"] is True


def test_hf_falls_behind_after_two_intervals(store, settings):
    run(store, "arxiv", NOW - dt.timedelta(hours=2))
    run(store, "hf", NOW - dt.timedelta(hours=3))  # sync_interval_min is 60
    r = status.report(store, settings, now=NOW)
    assert feed(r, "hf")["state"] == "behind" and r["current"] is False
    assert "Hugging Face 3 h ago" in r["summary"]


def test_failures_in_a_row_and_failing_since(store, settings):
    run(store, "arxiv", NOW - dt.timedelta(hours=30), added=10)
    first = NOW - dt.timedelta(hours=1)
    for n in range(3):
        run(store, "arxiv", first + dt.timedelta(minutes=10 * n), "failed", error=f"{SECRET_ERROR} #{n}")
    r = status.report(store, settings, now=NOW, detail=True)
    arxiv = feed(r, "arxiv")
    assert arxiv["consecutive_failures"] == 3 and arxiv["failing_since"] == stamp(first)
    assert arxiv["state"] == "failing" and r["current"] is False
    assert arxiv["last_success"]["started"] == stamp(NOW - dt.timedelta(hours=30))
    assert arxiv["lag_s"] == 30 * 3600 and arxiv["last_run"]["status"] == "failed"
    assert arxiv["last_error"] == f"{SECRET_ERROR} #2"
    # the third failure ended at 11:25; the fourth try waits 40 minutes, then it is due
    assert not arxiv["due"]
    assert arxiv["pending"] == "failing (3 runs in a row); next try at 2026-06-11T12:05:00Z"
    assert feed(status.report(store, settings, now=NOW + dt.timedelta(minutes=5)), "arxiv")["due"]
    assert r["summary"].startswith(f"not current: arXiv failing since {stamp(first)}")
    # one success ends the streak
    run(store, "arxiv", NOW - dt.timedelta(minutes=10))
    arxiv = feed(status.report(store, settings, now=NOW, detail=True), "arxiv")
    assert arxiv["consecutive_failures"] == 0 and arxiv["failing_since"] is None
    assert arxiv["last_error"] is None and arxiv["state"] == "current"


def test_errors_alert_messages_and_disk_are_for_the_operator_only(store, settings):
    for n in range(3):
        run(store, "arxiv", NOW - dt.timedelta(hours=4 - n), "failed", error=SECRET_ERROR)
    alerts.check(store, settings, NOW)  # opens a "failing" alert quoting the error (no mail configured)
    public = status.report(store, settings, now=NOW)
    operator = status.report(store, settings, now=NOW, detail=True)
    assert set(public) == TOP_KEYS and set(operator) == TOP_KEYS | {"disk"}
    assert "s3cr3t" not in json.dumps(public) and "last_error" not in feed(public, "arxiv")
    assert public["alerts"] == [{"source": "arxiv", "kind": "failing", "since": stamp(NOW),
                                 "message": "arXiv: sync runs failing"}]
    assert feed(operator, "arxiv")["last_error"] == SECRET_ERROR
    assert SECRET_ERROR in operator["alerts"][0]["message"]
    disk = operator["disk"]
    assert disk["database"] >= store.path.stat().st_size > 0 and disk["index"] == 0 and disk["free"] > 0
    assert "s3cr3t" not in status.format_text(public) and SECRET_ERROR in status.format_text(operator)


def test_index_lag_and_outbox_without_an_engine(store, settings, tmp_path):
    store.upsert_papers([Paper(title=f"Paper number {n} on graphs", source="jsonl", arxiv_id=f"2606.0000{n}",
                               abstract="About graphs.", categories=["cs.LG"], announced="2026-06-10")
                         for n in range(3)])
    r = status.report(store, settings, now=NOW)
    assert r["index"] == {"lexical": 3, "vectors": 3, "error": None}  # no index yet: all of it pending
    assert r["outbox"] == {"queued": 0, "sending": 0, "sent": 0, "failed": 0}
    # a damaged index is shown, not raised; its details are the operator's
    (tmp_path / "index" / "vectors").mkdir(parents=True)
    (tmp_path / "index" / "vectors" / "meta.json").write_text('{"last_seq": "x"}')
    public = status.report(store, settings, now=NOW)
    assert public["index"] == {"lexical": None, "vectors": None, "error": "the search index cannot be read"}
    assert "meta.json" in status.report(store, settings, now=NOW, detail=True)["index"]["error"]


def test_an_empty_store_reports_never_synced(store, settings):
    r = status.report(store, settings)
    assert r["current"] is False
    assert r["summary"] == "not current: arXiv never synced, Hugging Face never synced"
    assert all(f["due"] and f["last_success"] is None and f["lag"] == "never" for f in r["feeds"])
    hf_days = feed(r, "hf")["per_day"]
    assert len(hf_days) == 30 and hf_days[-1]["day"] == utc().date().isoformat()
    text = status.format_text(r)
    assert "last success  never" in text and "next run      due now" in text
    # Hugging Face not followed: listed, but not part of "current"
    r = status.report(store, settings.replace(sync_hf=False))
    assert not feed(r, "hf")["followed"] and r["summary"] == "not current: arXiv never synced"


# -- the web ------------------------------------------------------------------------------------------------
OPERATOR_ENV = {"PAPERRADAR_ADMIN_TOKEN": "t0ken-for-tests", "PAPERRADAR_OPERATOR_EMAIL": " Ops@Example.ORG "}


@pytest.fixture
def web(data, shared_engine):
    """The app over a copy of the web corpus with a failing arXiv feed and a current Hugging Face one."""
    with make_client(data, shared_engine, OPERATOR_ENV) as c:
        s = c.app.state.services.store
        now = utc()
        run(s, "arxiv", now - dt.timedelta(days=1), added=30)
        for n in range(3):  # sync_alert_after: failing
            run(s, "arxiv", now - dt.timedelta(hours=3 - n), "failed", error=SECRET_ERROR)
        run(s, "hf", now - dt.timedelta(minutes=20), added=4)
        yield c
    close(c)


def sign_in(client, email: str) -> None:
    svc = client.app.state.services
    user = svc.store.accounts.ensure_user(email, "2026-06-01T00:00:00Z")
    client.cookies.set(SESSION_COOKIE, Accounts(svc.store, svc.settings).start_session(user))


def test_status_api_public_and_operator(web):
    r = web.get("/api/v1/status")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    public = r.json()
    assert set(public) == TOP_KEYS and public["detail"] is False
    assert "s3cr3t" not in r.text and "disk" not in public
    arxiv = feed(public, "arxiv")
    assert arxiv["consecutive_failures"] == 3 and arxiv["state"] == "failing" and public["current"] is False
    assert arxiv["last_run"]["status"] == "failed"
    assert public["summary"].startswith("not current: arXiv failing since")
    assert len(arxiv["per_day"]) == 30 and arxiv["added_30d"] == 30
    assert public["index"] == {"lexical": 0, "vectors": 0, "error": None}  # the corpus is fully indexed
    assert set(public["outbox"]) == {"queued", "sending", "sent", "failed"}

    operator = web.get("/api/v1/status", headers={"Authorization": "Bearer t0ken-for-tests"}).json()
    assert operator["detail"] is True and feed(operator, "arxiv")["last_error"] == SECRET_ERROR
    assert operator["disk"]["database"] > 0 and operator["disk"]["index"] > 0

    wrong = web.get("/api/v1/status", headers={"Authorization": "Bearer t0ken-for-tesTs"})
    assert wrong.status_code == 403 and "s3cr3t" not in wrong.text
    assert web.get("/api/v1/status", headers={"Authorization": "Basic eDp5"}).status_code == 401


def test_the_operators_session_sees_the_details_and_nobody_elses(web):
    sign_in(web, "ada@example.org")
    assert web.get("/api/v1/status").json()["detail"] is False
    assert "s3cr3t" not in web.get("/status").text
    sign_in(web, "ops@example.org")  # operator_email is " Ops@Example.ORG ": the same address
    assert web.get("/api/v1/status").json()["detail"] is True
    page = web.get("/status").text
    assert SECRET_ERROR.replace("&", "&amp;") in page and "Disk" in page


def test_status_page_shows_feeds_chart_and_footer_link(web):
    r = web.get("/status")
    assert r.status_code == 200, r.text[:500]
    page = r.text
    assert "not current: arXiv failing since" in page and "Hugging Face" in page
    assert "s3cr3t" not in page and "<h2>Disk</h2>" not in page
    charts = re.findall(r'<svg class="bars".*?</svg>', page, re.S)
    assert len(charts) == 2
    assert 'role="img"' in charts[0] and 'aria-labelledby="chart-arxiv-title"' in charts[0]
    assert charts[0].count("<rect") == 30 and charts[0].count("<title") == 31
    assert f"{utc().date().isoformat()}: 0 papers" in charts[0]  # a day of the 30 without papers
    assert "30 in all" in charts[0]
    assert 'href="/status"' in web.get("/").text and 'href="/status"' in page
    assert " style=" not in page and "<script>" not in page  # the CSP allows neither inline
    assert "style-src 'self'" in r.headers["content-security-policy"]


def test_a_damaged_index_is_shown_not_a_500(web, data):
    (data / "index" / "vectors" / "meta.json").write_text("not json")
    r = web.get("/status")
    assert r.status_code == 200 and "the search index cannot be read" in r.text
    r = web.get("/api/v1/status", headers={"Authorization": "Bearer t0ken-for-tests"})
    assert r.status_code == 200 and "meta.json" in r.json()["index"]["error"]


def test_an_empty_store_is_no_500(tmp_path):
    app = create_app(tmp_path, env={"PAPERRADAR_RATE_LIMIT": "0"}, warm=False, catch_up=False)
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        page = c.get("/status")
        assert page.status_code == 200 and "never synced" in page.text and page.text.count("<rect") == 60
        r = c.get("/api/v1/status")
        assert r.status_code == 200 and r.json()["current"] is False
        assert r.json()["index"] == {"lexical": 0, "vectors": 0, "error": None}
        no_token_set = c.get("/api/v1/status", headers={"Authorization": "Bearer x"})
        assert no_token_set.status_code == 403
    app.state.services.engine.close()
    app.state.services.store.close()
