"""The search engine end to end with the real model: indexing from the store, hybrid retrieval, filters,
related papers, highlights, incremental updates, and no crash for any query."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperradar.errors import NotFound, PaperradarError
from paperradar.evaluate import mrr_at, ndcg_at, recall_at
from paperradar.ingest import ingest
from paperradar.models import Paper
from paperradar.search import SearchEngine
from paperradar.sources.jsonl import JSONLSource
from paperradar.store import Store

# Builds its own indexed corpus (12 s) and re-embeds: the whole-suite tier.
pytestmark = pytest.mark.slow

CORPUS = next((Path(__file__).parent / "fixtures" / "corpus_jsonl").glob("*.jsonl*"))


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    data = tmp_path_factory.mktemp("search")
    store = Store(data / "paperradar.sqlite3")
    ingest(store, JSONLSource(str(CORPUS)))
    store.upsert_papers([
        Paper(title="Graph neural networks for molecular property prediction", source="arxiv",
              arxiv_id="2401.00001", abstract="We predict properties of molecules with message passing "
              "graph networks over atoms and bonds.", authors=["Marie Curie"], categories=["cs.LG"],
              announced="2024-01-02"),
        Paper(title="A survey of protein folding", source="arxiv", arxiv_id="2301.00002",
              abstract="Deep learning methods predict the three-dimensional structure of proteins from "
                       "their amino acid sequence.", authors=["Linus Pauling"], categories=["q-bio.BM"],
              announced="2023-03-04"),
    ])
    eng = SearchEngine(store, data / "index")
    eng.update()
    yield eng
    eng.close()
    store.close()


def ids(hits) -> list[str]:
    return [h.paper.key for h in hits]


def test_index_covers_the_store_and_is_up_to_date(engine):
    assert engine.lexical.count() == engine.store.count() == len(engine.vectors)
    assert engine.pending() == {"lexical": 0, "vectors": 0}
    assert engine.update() == {"lexical": 0, "vectors": 0}  # nothing changed: nothing re-embedded


def test_semantic_match_without_shared_words(engine):
    # No word of the query is in the paper's title; the meaning is.
    hits = engine.search("predicting chemical compound characteristics with GNNs", limit=5).hits
    assert "2401.00001" in ids(hits)[:3]
    dense = engine.search("how do proteins get their 3D shape", mode="dense", limit=3).hits
    assert ids(dense)[0] == "2301.00002"


def test_filters_fields_and_highlights(engine):
    r = engine.search("molecular graph networks cat:cs.LG since:2024", limit=10)
    assert ids(r.hits)[0] == "2401.00001"
    assert all(any(c.lower().startswith("cs.lg") for c in h.paper.categories) for h in r.hits)
    top = r.hits[0]
    title = top.paper.title
    assert [title[a:b] for a, b in top.highlights["title"]] == ["Graph", "networks", "molecular"]
    assert "2301.00002" in ids(engine.search("protein", limit=10).hits)
    assert "2301.00002" not in ids(engine.search("protein -folding", limit=10).hits)
    assert ids(engine.search('au:pauling', limit=5).hits) == ["2301.00002"]
    old = engine.search("proteins until:2022", limit=5).hits
    assert "2301.00002" not in ids(old)
    assert all((h.paper.announced or h.paper.submitted) <= "2022-12-31" for h in old)


def test_sort_newest(engine):
    hits = engine.search("learning", limit=20, sort="newest").hits
    dates = [h.paper.announced or h.paper.submitted or "" for h in hits]
    assert dates == sorted(dates, reverse=True)


def test_related_and_like_text(engine):
    related = engine.related("2401.00001", limit=5)
    assert "2401.00001" not in ids(related) and len(related) == 5
    like = engine.like_text("Message passing neural networks on molecules predict their properties.", limit=3)
    assert ids(like)[0] == "2401.00001"
    with pytest.raises(NotFound):
        engine.related("2501.99999")
    with pytest.raises(PaperradarError):
        engine.like_text("   ")


def test_incremental_update_sees_changes(tmp_path):
    store = Store(tmp_path / "p.sqlite3")
    store.upsert_papers([Paper(title="Old title about cats", source="arxiv", arxiv_id="2402.00001",
                               abstract="Cats purr.", version=1)])
    eng = SearchEngine(store, tmp_path / "index")
    assert eng.update() == {"lexical": 1, "vectors": 1}
    store.upsert_papers([Paper(title="New title about quantum error correction", source="arxiv",
                               arxiv_id="2402.00001", abstract="Surface codes.", version=2)])
    assert eng.update() == {"lexical": 1, "vectors": 1}
    assert ids(eng.search("quantum error correction", limit=3).hits) == ["2402.00001"]
    assert eng.search("cats purr", mode="lexical", limit=3).hits == []
    assert len(eng.vectors) == 1
    eng.close()
    store.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=80) | st.sampled_from(['"', 'ti:', '-', 'cat:"cs', 'since:2024-02-30', '2020..1999',
                                               'au:"', '-"x y"', "id:abc", "((()))", "*?~^", "\x00"]))
def test_any_query_is_results_or_a_clear_error(engine, text):
    try:
        r = engine.search(text, limit=5)
    except PaperradarError as e:
        assert str(e)
    else:
        assert len(r.hits) <= 5


def test_metrics():
    rel = {"a": 1, "b": 1}
    assert ndcg_at(["a", "b", "c"], rel) == pytest.approx(1.0)
    assert ndcg_at(["c", "a"], rel) < 1.0
    assert recall_at(["x", "a"], rel) == 0.5
    assert mrr_at(["x", "y", "b"], rel) == pytest.approx(1 / 3)
    assert mrr_at([], rel) == 0.0
