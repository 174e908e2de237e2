"""The schedule `serve` runs: the web app's own job syncs (over real HTTP, from a local server replaying the
recorded feeds of tests/feeds.py), indexes with the server's engine, and the pages and the status see it —
with no other command. Real clock (the job uses it), so the recorded listing days are last week's."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from feeds import RecordedFeeds, listing_days, serve

from paperradar.search import SearchEngine
from paperradar.store import Store
from paperradar.web.app import create_app


@pytest.mark.slow
def test_the_served_app_keeps_itself_current(tmp_path, embedder):
    today = dt.datetime.now(dt.UTC).date()
    feeds = RecordedFeeds(listing_days(today - dt.timedelta(days=9), 5), page_size=500)
    feeds.today = today
    with serve(feeds) as base:
        env = {"PAPERRADAR_RATE_LIMIT": "0", "PAPERRADAR_ARXIV_OAI_URL": base + "/oai",
               "PAPERRADAR_HF_API_URL": base + "/api/daily_papers", "PAPERRADAR_SYNC_CATEGORIES": "cs.CV",
               "PAPERRADAR_SYNC_FIRST_DAYS": "14", "PAPERRADAR_SYNC_HF_REFRESH_DAYS": "14"}
        store = Store(tmp_path / "paperradar.sqlite3")
        engine = SearchEngine(store, embedder=embedder, embed_threads=1)
        app = create_app(tmp_path, env=env, engine=engine, schedule=True)
        try:
            with TestClient(app) as client:
                assert client.get("/api/v1/stats").json()["papers"] == 0
                counts = app.state.sync_job.run_once()  # what the job's thread does every minute
                assert counts["arxiv added"] == len(feeds.in_set("cs:cs:CV"))
                assert counts["hf added"] + counts.get("hf updated", 0) > 0
                assert feeds.counts["arxiv"] >= 1 and feeds.counts["hf"] == 14

                stats = client.get("/api/v1/stats").json()
                assert stats["papers"] == store.count() > 0
                assert stats["index_pending"] == {"lexical": 0, "vectors": 0}  # indexed by the same job
                one = store.get(feeds.in_set("cs:cs:CV")[0])
                hits = client.get("/api/v1/search", params={"q": one.title, "limit": 3}).json()["hits"]
                assert one.arxiv_id in [h["arxiv_id"] for h in hits]

                status = client.get("/api/v1/status").json()
                by_name = {f["name"]: f for f in status["feeds"]}
                assert by_name["arxiv"]["current"] and by_name["hf"]["current"], status["summary"]
                assert "last_error" not in by_name["arxiv"]  # public view

                again = app.state.sync_job.run_once()  # a minute later: nothing is due
                assert again == {} and feeds.counts["hf"] == 14
        finally:
            engine.close()
            store.close()
