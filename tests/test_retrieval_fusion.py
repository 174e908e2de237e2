"""Hybrid retrieval scores every fusion candidate by both engines (SearchEngine.rescore), with the real
model over a small real store: a paper only one engine ranked among its best gets the other engine's real
score instead of that engine's lowest."""

from __future__ import annotations

import pytest

from paperradar import rank, search
from paperradar.models import Paper
from paperradar.search import SearchEngine
from paperradar.store import Store

PAPERS = [
    ("Graph neural networks predict molecular properties",
     "Message passing over atoms and bonds predicts solubility and toxicity of molecules."),
    ("Neural networks for graph classification", "We classify graphs with neural networks and pooling."),
    ("Predicting chemical compound characteristics with deep learning",
     "Deep models estimate how soluble or toxic a chemical compound is from its structure."),
    ("Graph drawing algorithms", "Networks and graphs are laid out on the plane by force-directed methods."),
    ("Protein folding with attention", "Amino acid sequences are folded into three-dimensional structures."),
    ("Molecular dynamics of water", "We simulate molecules of water at high pressure and measure diffusion."),
]
QUERY = "neural networks predict toxicity of molecules"


@pytest.fixture(scope="module")
def engine(tmp_path_factory, embedder):
    data = tmp_path_factory.mktemp("fusion")
    store = Store(data / "paperradar.sqlite3")
    store.upsert_papers([Paper(title=t, abstract=a, source="arxiv", arxiv_id=f"2401.0000{i}",
                               categories=["cs.LG"], announced="2024-01-02")
                         for i, (t, a) in enumerate(PAPERS, start=1)])
    eng = SearchEngine(store, data / "index", embedder=embedder)
    eng.update()
    yield eng
    eng.close()
    store.close()


@pytest.fixture
def two_candidates(monkeypatch):
    """Each engine fuses its best 2 papers, so that the runs differ in this small corpus."""
    monkeypatch.setattr(search, "CANDIDATES", 2)


def test_rescoring_scores_each_candidate_by_both_engines(engine, two_candidates):
    lexical = engine.retrieve(QUERY, mode="lexical", limit=2)
    dense = engine.retrieve(QUERY, mode="dense", limit=2)
    lexical_only = {pid for pid, _ in lexical} - {pid for pid, _ in dense}
    dense_only = {pid for pid, _ in dense} - {pid for pid, _ in lexical}
    assert lexical_only and dense_only  # what this test is about
    qv = engine.embedder.encode([QUERY])[0]
    # The dense side scores a paper by its best sentence (paperradar/passages.py).
    cosines = engine.sentences.best(qv, sorted(lexical_only))
    assert set(cosines) == lexical_only
    bm25 = dict(engine.retrieve(QUERY, mode="lexical", limit=50))
    want = rank.convex(rank.complete(lexical, dense_only, bm25, default=0.0),
                       rank.complete(dense, lexical_only, cosines), alpha=engine.alpha, limit=2)

    got = engine.retrieve(QUERY, mode="hybrid", limit=2)
    assert [pid for pid, _ in got] == [pid for pid, _ in want]
    assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-5)
    # Unlike fusing the runs as they are: each engine's papers scored 0 by the other.
    assert got != rank.convex(lexical, dense, alpha=engine.alpha, limit=2)


def test_without_rescoring_the_runs_are_fused_as_they_are(engine, two_candidates):
    plain = SearchEngine(engine.store, engine.index_dir, embedder=engine.embedder, rescore=False)
    try:
        lexical = plain.retrieve(QUERY, mode="lexical", limit=2)
        dense = plain.retrieve(QUERY, mode="dense", limit=2)
        assert plain.retrieve(QUERY, mode="hybrid", limit=2) == rank.convex(lexical, dense, alpha=plain.alpha,
                                                                            limit=2)
    finally:
        plain.close()
