"""The real app through a test client, over a writable copy of the web corpus with mail settings: what the
subscription and account tests share (their fixtures ``sink``, ``mailbox``, ``data`` and ``client`` are in
conftest.py)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient

from paperradar.search import SearchEngine
from paperradar.store import Store
from paperradar.web.app import create_app

BASE = "http://testserver"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_client(data, shared_engine, env: dict) -> TestClient:
    store = Store(data / "paperradar.sqlite3")
    # the session's model, over this copy's store and indexes: no second model load
    engine = SearchEngine(store, embedder=shared_engine.embedder, embed_threads=1)
    return TestClient(create_app(data, env={"PAPERRADAR_RATE_LIMIT": "0", "PAPERRADAR_BASE_URL": BASE, **env},
                                 engine=engine, warm=False))


def close(client: TestClient) -> None:
    client.app.state.services.engine.close()
    client.app.state.services.store.close()


def csrf(client: TestClient, path: str = "/") -> str:
    return CSRF.search(client.get(path).text).group(1)


def local(url: str) -> str:
    """A link from a mail as the test client's path (the app's base URL is the test server's)."""
    assert url.startswith(BASE + "/"), url
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]
