"""The JSON API through the real app (FastAPI TestClient over the real store, indexes and model)."""

from __future__ import annotations

import gzip
import json
import shutil
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperradar.store import Store
from paperradar.web.app import create_app

NO_LIMIT = {"PAPERRADAR_RATE_LIMIT": "0"}


@pytest.fixture(scope="module")
def client(web_data, shared_engine):
    with TestClient(create_app(web_data, engine=shared_engine, env=NO_LIMIT)) as c:
        yield c


@pytest.fixture
def writable(tmp_path, web_data):
    """A private copy of the web corpus, for tests that write."""
    data = tmp_path / "data"
    shutil.copytree(web_data, data)
    return data


def error_of(r) -> dict:
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()["error"]
    assert body["status"] == r.status_code and body["message"]
    return body


# -- search --------------------------------------------------------------------------------------------
def test_search_returns_ranked_hits_with_highlights(client):
    r = client.get("/api/v1/search", params={"q": "graph neural networks molecules", "limit": 5})
    assert r.status_code == 200
    body = r.json()
    assert body["mode"] == "hybrid" and body["sort"] == "relevance" and len(body["hits"]) == 5
    top = body["hits"][0]
    assert top["key"] == "2606.99002"
    assert {"title", "abstract", "authors", "categories", "score", "highlights"} <= top.keys()
    start, end = top["highlights"]["title"][0]
    assert top["title"][start:end].lower() in {"graph", "neural", "networks", "molecular"}
    scores = [h["score"] for h in body["hits"]]
    assert scores == sorted(scores, reverse=True)


def test_filters_are_query_parameters_and_compose_with_the_query_language(client):
    r = client.get("/api/v1/search", params={"q": "graph networks", "au": "Marie Curie", "limit": 20})
    keys = {h["key"] for h in r.json()["hits"]}
    assert keys == {"2606.99002", "2606.99003"}
    r = client.get("/api/v1/search", params={"q": "graph networks", "au": "Marie Curie", "cat": "cond-mat"})
    assert [h["key"] for h in r.json()["hits"]] == ["2606.99003"]
    r = client.get("/api/v1/search", params={"q": "graph networks au:curie", "since": "2026-06-05"})
    assert [h["key"] for h in r.json()["hits"]] == ["2606.99002"]
    assert r.json()["query"] == "graph networks au:curie since:2026-06-05"


def test_sort_newest_and_paging(client):
    r = client.get("/api/v1/search", params={"q": "language models", "sort": "newest", "limit": 10})
    days = [(h["announced"] or h["submitted"])[:10] for h in r.json()["hits"]]
    assert len(days) == 10 and days == sorted(days, reverse=True)
    first = client.get("/api/v1/search", params={"q": "language models", "limit": 10}).json()["hits"]
    second = client.get("/api/v1/search", params={"q": "language models", "limit": 5, "offset": 5}).json()
    assert [h["key"] for h in second["hits"]] == [h["key"] for h in first[5:10]]


@pytest.mark.parametrize("params, fragment", [
    ({"q": ""}, "q is empty"),
    ({"q": "since:2024-02-30"}, "no such day"),
    ({"q": "x", "since": "2025", "until": "2024"}, "date range is empty"),
    ({"q": "x", "sort": "loudest"}, "sort"),
    ({"q": "x", "mode": "psychic"}, "mode"),
    ({"q": "x", "limit": 1000}, "limit"),
    ({"q": "x", "offset": -1}, "offset"),
    ({"q": "x" * 1001}, "q"),
])
def test_bad_queries_and_filters_are_400_with_a_message(client, params, fragment):
    r = client.get("/api/v1/search", params=params)
    assert r.status_code == 400
    assert fragment in error_of(r)["message"]


# -- papers, related, like ----------------------------------------------------------------------------
def test_paper_by_any_id_form_and_404(client):
    for ref in ("2606.13681", "2606.13681v2", "arXiv:2606.13681"):
        r = client.get(f"/api/v1/papers/{ref}")
        assert r.status_code == 200 and r.json()["key"] == "2606.13681"
    assert r.json()["votes"] == 118
    r = client.get("/api/v1/papers/9999.99999")
    assert r.status_code == 404 and "9999.99999" in error_of(r)["message"]


def test_related_leaves_the_paper_out_and_finds_its_neighbour(client):
    r = client.get("/api/v1/papers/2606.99002/related", params={"limit": 5})
    keys = [h["key"] for h in r.json()["hits"]]
    assert "2606.99002" not in keys and "2606.99003" in keys[:3]


def test_like_text(client):
    r = client.post("/api/v1/like", json={"text": "message passing over atoms predicts energies of crystals",
                                          "limit": 3})
    assert r.status_code == 200 and r.json()["hits"][0]["key"] == "2606.99003"
    assert client.post("/api/v1/like", json={"text": "   "}).status_code == 400
    assert client.post("/api/v1/like", json={"limit": 3}).status_code == 400
    assert client.post("/api/v1/like", content=b"{not json", headers={"content-type": "application/json"}
                       ).status_code == 400


# -- trending and stats -----------------------------------------------------------------------------------
def test_trending_ranks_voted_papers_of_the_window(client):
    week = client.get("/api/v1/trending", params={"period": "week", "limit": 5}).json()
    assert week["until"] == "2026-06-11" and week["since"] == "2026-06-05"
    assert week["papers"][0]["key"] == "2606.13681" and week["papers"][0]["votes"] == 118
    scores = [p["trending_score"] for p in week["papers"]]
    assert scores == sorted(scores, reverse=True)
    month = client.get("/api/v1/trending", params={"period": "month", "limit": 100}).json()
    assert month["total"] > week["total"]
    assert all(month["since"] <= (p["announced"] or p["submitted"])[:10] <= month["until"]
               for p in month["papers"])
    assert client.get("/api/v1/trending", params={"period": "year"}).status_code == 400


def test_local_votes_count_in_trending(writable):
    with Store(writable / "paperradar.sqlite3") as store:
        pid = store.get("2606.13392").id  # 103 imported upvotes, second in the week
        for user in range(20):
            assert store.add_vote(pid, f"user:{user}")
        assert not store.add_vote(pid, "user:0")  # one vote per voter
    with TestClient(create_app(writable, env=NO_LIMIT, warm=False)) as c:
        top = c.get("/api/v1/trending", params={"period": "week", "limit": 1}).json()["papers"][0]
        assert (top["key"], top["votes"]) == ("2606.13392", 123)


def test_stats_hide_server_paths(client):
    s = client.get("/api/v1/stats").json()
    assert s["papers"] > 200 and s["index_pending"] == {"lexical": 0, "vectors": 0}
    assert "database" not in s


def test_openapi_schema_lists_the_versioned_endpoints(client):
    schema = client.get("/api/v1/openapi.json").json()
    paths = set(schema["paths"])
    assert {"/api/v1/search", "/api/v1/papers/{ref}", "/api/v1/papers/{ref}/related", "/api/v1/trending",
            "/api/v1/stats", "/api/v1/like", "/api/v1/admin/ingest", "/api/v1/admin/reindex"} <= paths
    assert not any(p.startswith(("/search", "/paper/", "/feeds")) for p in paths)  # pages are not API


# -- write API: admin token -------------------------------------------------------------------------------
def jsonl(*records) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records).encode() + b"\n"


NEW = {"id": "2607.00001",
       "title": "Sparse autoencoders find interpretable features in protein language models",
       "abstract": "We train sparse autoencoders on protein model activations.", "authors": "Ada Lovelace",
       "categories": "q-bio.BM cs.LG", "update_date": "2026-07-01"}


def test_admin_endpoints_need_the_token(writable):
    body = jsonl(NEW)
    with TestClient(create_app(writable, env=NO_LIMIT, warm=False)) as off:
        r = off.post("/api/v1/admin/reindex", headers={"Authorization": "Bearer anything"})
        assert r.status_code == 403 and "PAPERRADAR_ADMIN_TOKEN" in error_of(r)["message"]
    env = {**NO_LIMIT, "PAPERRADAR_ADMIN_TOKEN": "s3cret-token"}
    with TestClient(create_app(writable, env=env, warm=False)) as c:
        r = c.post("/api/v1/admin/ingest", content=body)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert c.post("/api/v1/admin/ingest", content=body,
                      headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert c.get("/api/v1/papers/2607.00001").status_code == 404  # nothing was written


def test_admin_ingest_reports_rejects_and_makes_papers_searchable(writable):
    env = {**NO_LIMIT, "PAPERRADAR_ADMIN_TOKEN": "s3cret-token"}
    auth = {"Authorization": "Bearer s3cret-token"}
    body = gzip.compress(jsonl(NEW, "{broken json", {"id": "2607.00002", "abstract": "no title"}))
    with TestClient(create_app(writable, env=env, warm=False)) as c:
        r = c.post("/api/v1/admin/ingest", params={"format": "jsonl"}, content=body, headers=auth)
        assert r.status_code == 200, r.text
        report = r.json()
        assert (report["added"], report["rejected"]) == (1, 2)
        assert [m.split(":")[0] for m in report["rejects"]] == ["upload.jsonl line 2", "upload.jsonl line 3"]
        assert report["indexed"] == {"lexical": 1, "vectors": 1}
        hits = c.get("/api/v1/search", params={"q": "sparse autoencoders protein"}).json()["hits"]
        assert hits[0]["key"] == "2607.00001"
        again = c.post("/api/v1/admin/ingest", content=body, headers=auth).json()
        assert (again["added"], again["unchanged"]) == (0, 1)
        nothing = {"indexed": {"lexical": 0, "vectors": 0}}
        assert c.post("/api/v1/admin/reindex", headers=auth).json() == nothing
        r = c.post("/api/v1/admin/ingest", params={"format": "csv"}, content=b"\x00\x01\x02", headers=auth)
        assert r.status_code in (200, 400) and r.status_code < 500


def test_oversized_bodies_are_413(writable):
    env = {**NO_LIMIT, "PAPERRADAR_ADMIN_TOKEN": "t", "PAPERRADAR_MAX_UPLOAD_MB": "1",
           "PAPERRADAR_MAX_BODY_KB": "4"}
    with TestClient(create_app(writable, env=env, warm=False)) as c:
        r = c.post("/api/v1/like", json={"text": "x" * 5000})
        assert r.status_code == 413 and "too large" in error_of(r)["message"]
        r = c.post("/api/v1/admin/ingest", content=b"x" * (2**20 + 1), headers={"Authorization": "Bearer t"})
        assert r.status_code == 413

        def chunks():  # no Content-Length: counted while streaming
            for _ in range(3):
                yield b"y" * 2000

        assert c.post("/api/v1/like", content=chunks(),
                      headers={"content-type": "application/json"}).status_code == 413


# -- rate limit, headers, failures --------------------------------------------------------------------------
def test_rate_limit_answers_429_with_retry_after(web_data, shared_engine):
    app = create_app(web_data, engine=shared_engine, env={"PAPERRADAR_RATE_LIMIT": "60"})
    with TestClient(app) as c:
        codes = [c.get("/api/v1/stats").status_code for _ in range(12)]
        assert codes[:10] == [200] * 10 and codes[-1] == 429  # a burst of 10, then 1 per second
        r = c.get("/api/v1/stats")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert "too many requests" in error_of(r)["message"]
        assert c.get("/static/style.css").status_code == 200  # static files are not counted


def test_security_headers_everywhere(client):
    for path in ("/", "/api/v1/stats", "/api/v1/papers/nope", "/static/app.js", "/feeds/trending.atom"):
        h = client.get(path).headers
        csp = h["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY"


def test_unexpected_errors_are_500_without_details(web_data, shared_engine, monkeypatch):
    app = create_app(web_data, engine=shared_engine, env=NO_LIMIT)

    def boom(*a, **k):
        raise RuntimeError("secret internal detail /etc/passwd")

    monkeypatch.setattr(shared_engine, "search", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        for path in ("/api/v1/search?q=x", "/search?q=x"):
            r = c.get(path)
            assert r.status_code == 500
            assert "secret" not in r.text and "Traceback" not in r.text and "internal error" in r.text


# -- fuzz: no input gives a 5xx ----------------------------------------------------------------------------
fuzz_text = st.text(max_size=60) | st.sampled_from(
    ['"', "ti:", "-", 'cat:"cs', "since:2024-02-30", "2020..1999", 'au:"', "id:abc", "((()))", "\x00",
     "%", "%00", "../../etc/passwd", "<script>", "sort:newest", "year:..", "-cat:"])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(q=fuzz_text, cat=fuzz_text, au=fuzz_text, since=fuzz_text, until=fuzz_text,
       sort=st.sampled_from(["", "relevance", "newest", "trending", "x"]),
       limit=st.integers(-5, 300), offset=st.integers(-5, 2000))
@pytest.mark.slow
def test_search_endpoint_never_fails_with_5xx(client, q, cat, au, since, until, sort, limit, offset):
    params = {"q": q, "cat": cat, "au": au, "since": since, "until": until, "limit": limit, "offset": offset}
    if sort:
        params["sort"] = sort
    r = client.get("/api/v1/search", params=params)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert error_of(r)["message"]
    page = client.get("/search", params={k: v for k, v in params.items() if k not in ("limit", "offset")})
    assert page.status_code in (200, 400)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ref=st.text(min_size=1, max_size=40))
def test_paper_endpoint_never_fails_with_5xx(client, ref):
    for path in ("/api/v1/papers/", "/paper/"):
        r = client.get(path + quote(ref, safe=""))
        assert r.status_code in (200, 400, 404), (path, ref, r.text)
