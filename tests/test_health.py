"""GET /healthz: 200 while the store and the indexes answer, 503 naming the part that does not."""

from __future__ import annotations

from webclient import close, make_client


def test_healthy(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["failing"] == []
    assert set(body["checks"]) == {"store", "lexical", "vectors"}
    assert body["checks"]["store"].startswith("ok, ") and "papers" in body["checks"]["store"]
    assert client.head("/healthz").status_code == 200


def test_a_damaged_vector_index_makes_it_503_with_the_reason_and_no_path(data, shared_engine):
    vectors = data / "index" / "vectors" / "vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[: vectors.stat().st_size // 2])
    with make_client(data, shared_engine, {}) as c:
        r = c.get("/healthz")
        body = r.json()
        assert r.status_code == 503 and body["failing"] == ["vectors"], body
        assert "paperradar index --rebuild vectors" in body["checks"]["vectors"]
        assert str(data) not in r.text  # where the server keeps its files is nobody's business
        assert c.get("/api/v1/search", params={"q": "graph", "mode": "lexical"}).status_code == 200
    close(c)
