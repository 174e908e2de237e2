"""Quoted phrases that no paper holds: searched as free words (as a web search engine does) and said so, on
the page, in the API and the CLI, instead of an empty result; a phrase some paper holds stays required."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from paperradar.query import parse_query
from paperradar.search import _loosened
from paperradar.web.app import create_app

ABSENT = '"gaussian splatting kolmogorov"'  # each word is in the corpus, never in that order


def test_a_phrase_no_paper_holds_is_searched_as_its_words(shared_engine):
    q = parse_query(f"sensor simulation {ABSENT}")
    assert shared_engine.retrieve(q, mode="lexical") and not shared_engine._retrieve(q, "lexical", 100)
    for mode in ("hybrid", "lexical", "dense"):
        results = shared_engine.search(f"sensor simulation {ABSENT}", mode=mode, limit=5)
        assert results.loosened == ("gaussian splatting kolmogorov",)
        assert results.hits
    top = shared_engine.search(f"sensor simulation {ABSENT}", mode="lexical", limit=5).hits
    assert "Gaussian Splatting" in top[0].paper.title  # its words ranked as typed words
    assert top[0].highlights["title"]  # and marked


def test_a_phrase_some_paper_holds_stays_required(shared_engine):
    results = shared_engine.search('"gaussian splatting" simulation', mode="hybrid", limit=50)
    assert results.loosened == () and results.hits
    assert all("gaussian splatting" in (h.paper.title + " " + h.paper.abstract).lower().replace("-", " ")
               for h in results.hits)


def test_loosening_keeps_the_other_conditions(shared_engine):
    # The phrase's words exist, but not in this category: nothing, and nothing said to be loosened.
    results = shared_engine.search(f"{ABSENT} cat:math.NT", mode="hybrid")
    assert results.hits == [] and results.loosened == ()
    q = _loosened(parse_query(f'{ABSENT} "vision language" cat:cs.CV -survey'))
    assert q.phrases == () and q.terms == ("gaussian", "splatting", "kolmogorov", "vision", "language")
    assert q.categories == ("cs.cv",) and q.exclude


@pytest.fixture(scope="module")
def client(web_data, shared_engine):
    with TestClient(create_app(web_data, engine=shared_engine, env={"PAPERRADAR_RATE_LIMIT": "0"})) as c:
        yield c


def test_the_page_and_the_api_say_what_was_loosened(client):
    r = client.get("/search", params={"q": f"sensor simulation {ABSENT}"})
    assert r.status_code == 200
    assert "No paper holds <q>gaussian splatting kolmogorov</q>: showing papers with its words" in r.text
    assert r.context["results"].hits
    body = client.get("/api/v1/search", params={"q": f"sensor simulation {ABSENT}"}).json()
    assert body["loosened_phrases"] == ["gaussian splatting kolmogorov"] and body["hits"]
    body = client.get("/api/v1/search", params={"q": '"gaussian splatting"'}).json()
    assert "loosened_phrases" not in body and body["hits"]
    assert "No paper holds" not in client.get("/search", params={"q": '"gaussian splatting"'}).text
