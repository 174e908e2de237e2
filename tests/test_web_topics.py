"""Topics, the map's API and trends through the real app (test client) over the session corpus with its
topics built: pages, JSON and binary answers, the topic feed and subscription, the search page's chart,
and hostile or mistaken requests (never a 500)."""

from __future__ import annotations

import shutil

import feedparser
import numpy as np
import pytest
from fastapi.testclient import TestClient

from paperradar.search import SearchEngine
from paperradar.store import Store
from paperradar.web.app import create_app

pytestmark = pytest.mark.slow  # the topics are built (t-SNE) once for the module: seconds


@pytest.fixture(scope="module")
def topics_dir(tmp_path_factory, web_data, embedder):
    dst = tmp_path_factory.mktemp("webtopics") / "data"
    shutil.copytree(web_data, dst, ignore=shutil.ignore_patterns("models"))
    store = Store(dst / "paperradar.sqlite3")
    engine = SearchEngine(store, embedder=embedder)
    engine.update_topics(rebuild=True)
    engine.close()
    store.close()
    return dst


@pytest.fixture(scope="module")
def client(topics_dir, shared_engine):
    store = Store(topics_dir / "paperradar.sqlite3")
    engine = SearchEngine(store, embedder=shared_engine.embedder, embed_threads=1)
    app = create_app(topics_dir, env={"PAPERRADAR_RATE_LIMIT": "0"}, engine=engine, warm=False)
    with TestClient(app) as c:
        yield c
    engine.close()
    store.close()


@pytest.fixture(scope="module")
def index(client):
    return client.app.state.services.engine.topics


def test_the_topics_api_lists_every_topic(client, index):
    r = client.get("/api/v1/topics")
    assert r.status_code == 200
    body = r.json()
    assert body["papers"] == len(index) and body["version"] == index.version
    levels = {t["level"] for t in body["topics"]}
    assert levels == {"broad", "fine"}
    assert len(body["topics"]) == len(index.topics)
    assert all(t["label"] and t["terms"] and t["central"] for t in body["topics"])
    broad = client.get("/api/v1/topics?level=broad").json()["topics"]
    assert {t["level"] for t in broad} == {"broad"}


def test_a_topic_has_its_numbers_feed_and_search(client, index):
    t = max(index.levels("fine"), key=lambda t: t.size)
    body = client.get(f"/api/v1/topics/{t.id}").json()
    assert body["id"] == t.id and body["parent"] == t.parent and body["size"] == t.size
    assert sum(m["papers"] for m in body["per_month"]) <= t.size
    assert [p["id"] for p in body["central_papers"]] == t.central
    feed = client.get(body["feed"])
    assert feed.status_code == 200
    parsed = feedparser.parse(feed.content)
    assert not parsed.bozo and 0 < len(parsed.entries) <= t.size
    keys = {p.arxiv_id for p in client.app.state.services.store.get_many(index.members(t.id).tolist())}
    assert {e.link.rsplit("/", 1)[1] for e in parsed.entries} <= keys
    members = set(index.members(t.id).tolist())
    api = client.get("/api/v1/search", params={"q": body["search"], "limit": 100}).json()
    assert {h["id"] for h in api["hits"]} == members


def test_the_topic_pages(client, index):
    page = client.get("/topics")
    assert page.status_code == 200
    for b in index.levels("broad"):
        assert f'href="/topics/{b.id}"' in page.text
    t = max(index.levels("fine"), key=lambda t: t.size)
    page = client.get(f"/topics/{t.id}")
    assert page.status_code == 200
    assert f"/subscribe?q=topic%3A{t.id}" in page.text and f"/feeds/search.atom?q=topic%3A{t.id}" in page.text
    assert '<svg class="bars"' in page.text and "Papers per month" in page.text
    for p in client.app.state.services.store.get_many(t.central[:3]):
        assert p.title[:30] in page.text or (p.arxiv_id or p.key) in page.text
    assert client.get(f"/topics/{t.parent}").status_code == 200
    for months in (1, 3, 6):
        assert client.get(f"/topics?months={months}").status_code == 200


def test_subscribing_to_a_topic_starts_from_its_query(client, index):
    t = index.levels("fine")[0]
    page = client.get(f"/subscribe?q=topic%3A{t.id}")
    assert page.status_code == 200 and f"topic:{t.id}" in page.text


def test_rising_topics_api(client):
    for months in (1, 3, 6):
        body = client.get("/api/v1/topics/rising", params={"months": months}).json()
        assert body["months"] == months and body["until"]
        growths = [r["growth"] for r in body["topics"]]
        assert growths == sorted(growths, reverse=True) and all(g > 0 for g in growths)
        for r in body["topics"]:
            assert r["papers"] >= 5


def test_papers_per_month_of_a_search(client):
    body = client.get("/api/v1/trend", params={"q": "language models"}).json()
    assert body["matches"] > 0 and body["pool"] == 1000
    assert sum(m["papers"] for m in body["months"]) + body["undated"] == body["matches"]
    months = [m["month"] for m in body["months"]]
    assert months == sorted(months)
    last = client.get("/api/v1/trend", params={"q": "language models", "months": 2}).json()
    assert last["months"] == body["months"][-2:]
    page = client.get("/search", params={"q": "language models"})
    assert "Papers per month among the best" in page.text and "/map?q=language%20models" in page.text


def test_the_map_api_and_its_binary_points(client, index):
    meta = client.get("/api/v1/map").json()
    assert meta["count"] == len(index) and meta["points"] == f"/api/v1/map/points?v={index.version}"
    r = client.get(meta["points"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert "immutable" in r.headers["cache-control"] and len(r.content) == 18 * len(index)
    ids = np.frombuffer(r.content, "<u4", len(index), 8 * len(index))
    assert np.array_equal(ids, np.asarray(index.ids))
    stale = client.get("/api/v1/map/points?v=old", follow_redirects=False)
    assert stale.status_code == 307 and stale.headers["location"] == meta["points"]
    assert "immutable" not in client.get("/api/v1/map/points").headers["cache-control"]
    hits = client.get("/api/v1/map/hits", params={"q": "graph neural networks", "limit": 20}).json()
    assert len(hits["ids"]) == 20 and set(hits["ids"]) <= set(np.asarray(index.ids).tolist())
    assert client.get("/api/v1/map/library").status_code == 401
    assert client.get("/map").status_code == 200


@pytest.mark.parametrize("path", [
    "/topics/99999999", "/api/v1/topics/99999999", "/topics/-1", "/topics/abc", "/api/v1/topics/1e9",
    "/topics?months=0", "/topics?months=99", "/api/v1/topics/rising?months=0", "/api/v1/topics?level=x",
    "/api/v1/trend", "/api/v1/trend?q=", "/api/v1/trend?q=topic:abc", "/api/v1/trend?q=topic:99999",
    "/api/v1/trend?q=" + "x" * 1001, "/api/v1/map/hits?q=%00", "/api/v1/map/hits?q=a&limit=0",
    "/api/v1/map/points?v=" + "v" * 200, "/map?q=" + "q" * 1001, "/search?q=topic:42424242",
    "/feeds/search.atom?q=topic:42424242", "/topics/99999999999999999999999",
    "/api/v1/map/papers/99999999999999999999999", "/api/v1/map/papers/0", "/api/v1/map/papers/x",
    "/api/v1/map/papers/424242",
])
def test_mistakes_get_a_clear_answer_not_a_500(client, path):
    r = client.get(path, follow_redirects=False)
    assert r.status_code in (200, 307, 400, 404, 422), (path, r.status_code)
    if r.status_code >= 400 and path.startswith("/api/"):
        assert r.json()["error"]["message"]


def test_without_topics_the_pages_say_why_and_the_api_answers_404(data, shared_engine):
    from webclient import close, make_client

    with make_client(data, shared_engine, {}) as c:
        page = c.get("/topics")
        assert page.status_code == 200 and "no topics yet" in page.text
        assert c.get("/map").status_code == 200
        for path in ("/api/v1/topics", "/api/v1/map", "/api/v1/map/points", "/api/v1/topics/rising"):
            r = c.get(path)
            assert r.status_code == 404 and "paperradar index" in r.json()["error"]["hint"], path
        assert c.get("/api/v1/trend", params={"q": "graph"}).status_code == 200  # needs no topics
        assert c.get("/search", params={"q": "topic:3"}).status_code == 400
    close(c)
