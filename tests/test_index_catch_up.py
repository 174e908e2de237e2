"""SearchEngine.catch_up: a server indexes papers ingested while it runs by itself, from a background
thread; one SQL query when nothing changed, and searches keep working on the old indexes meanwhile."""

from __future__ import annotations

import threading

import pytest

from paperradar.models import Paper
from paperradar.search import SearchEngine
from paperradar.store import Store
from paperradar.vectors import IndexCorrupt, VectorIndex, writing

TOPICS = ["protein folding", "quantum error correction", "graph neural networks", "galaxy surveys"]
OLD = [Paper(title=f"Advances in {t}, part {i}", source="arxiv", arxiv_id=f"2504.{i:05d}",
             abstract=f"We study {t}.", announced="2025-04-01") for i, t in enumerate(TOPICS * 3)]
NEW = Paper(title="Volcanic eruptions and magma chambers", source="arxiv", arxiv_id="2505.00001",
            abstract="Seismic signals forecast when a volcano erupts.", announced="2025-05-01")


@pytest.fixture
def engine(tmp_path, embedder):
    store = Store(tmp_path / "paperradar.sqlite3")
    store.upsert_papers(OLD)
    eng = SearchEngine(store, tmp_path / "index", embedder=embedder)
    eng.update()
    eng.warm()
    yield eng
    eng.close()
    store.close()


def ingest_elsewhere(engine, *papers):
    """Papers written through another connection, as `paperradar ingest` or another worker would."""
    with Store(engine.store.path) as other:
        other.upsert_papers(papers)


def keys(results) -> list[str]:
    return [h.paper.key for h in results.hits]


def test_catch_up_makes_new_papers_searchable_by_words_and_meaning(engine):
    ingest_elsewhere(engine, NEW)
    assert engine.search("volcano", mode="lexical").hits == []
    assert engine.catch_up() == {"lexical": 1, "vectors": 1}
    assert keys(engine.search("volcano", mode="lexical")) == ["2505.00001"]
    assert keys(engine.search("when will the mountain spew lava", mode="dense", limit=1)) == ["2505.00001"]
    assert engine.pending() == {"lexical": 0, "vectors": 0}
    assert engine.catch_up() == {"lexical": 0, "vectors": 0}
    # What it saved is the index on disk: a fresh engine (another worker) finds the paper too.
    other = SearchEngine(engine.store, engine.index_dir, embedder=engine.embedder)
    assert keys(other.search("magma chambers", mode="dense", limit=1)) == ["2505.00001"]
    other.close()


def test_nothing_changed_costs_one_sql_query_and_no_file(engine, monkeypatch):
    statements: list[str] = []
    reads = engine.store._r  # this thread's read connection
    reads.set_trace_callback(statements.append)
    engine.store.db.set_trace_callback(statements.append)

    def no_reading(*args):
        raise AssertionError("an index file was read")

    monkeypatch.setattr(VectorIndex, "_read", no_reading)
    monkeypatch.setattr(type(engine.lexical), "_read_meta", no_reading)
    try:
        for _ in range(3):
            assert engine.catch_up() == {"lexical": 0, "vectors": 0}
    finally:
        reads.set_trace_callback(None)
        engine.store.db.set_trace_callback(None)
    assert len(statements) == 3 and all("FROM state" in s for s in statements), statements


class GatedEmbedder:
    """The real embedder, except that encoding papers in the catch-up thread waits for the test."""

    def __init__(self, inner):
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.entered, self.release = threading.Event(), threading.Event()
        self.gated: threading.Thread | None = None

    def _gate(self):
        if threading.current_thread() is self.gated:
            self.entered.set()
            assert self.release.wait(60)

    def encode(self, texts, **kw):
        self._gate()
        return self.inner.encode(texts, **kw)

    def encode_spans(self, texts, spans, **kw):  # how papers are embedded (paperradar/passages.py)
        self._gate()
        return self.inner.encode_spans(texts, spans, **kw)


def test_searches_keep_working_while_catch_up_embeds(tmp_path, embedder):
    store = Store(tmp_path / "paperradar.sqlite3")
    store.upsert_papers(OLD)
    gate = GatedEmbedder(embedder)
    engine = SearchEngine(store, tmp_path / "index", embedder=gate)
    engine.update()
    engine.warm()
    before = keys(engine.search("protein folding", limit=5))
    ingest_elsewhere(engine, NEW)
    result = {}
    worker = threading.Thread(target=lambda: result.update(engine.catch_up()))
    gate.gated = worker
    worker.start()
    try:
        assert gate.entered.wait(60), "catch_up did not start embedding"
        # Embedding is under way: searches answer from the indexes in place, without waiting.
        assert keys(engine.search("protein folding", limit=5)) == before
        assert keys(engine.search("volcano", mode="lexical")) == ["2505.00001"]  # lexical: already in
        assert "2505.00001" not in keys(engine.search("lava and magma", mode="dense", limit=3))
        assert engine.catch_up() == {"lexical": 0, "vectors": 0}  # one catch-up at a time: no waiting
        engine.refresh()  # a request's periodic check for other processes' changes
        assert keys(engine.search("protein folding", limit=5)) == before
    finally:
        gate.release.set()
        worker.join(60)
    assert result == {"lexical": 1, "vectors": 1}
    assert keys(engine.search("lava and magma", mode="dense", limit=1)) == ["2505.00001"]
    engine.close()
    store.close()


def test_an_index_another_process_is_writing_is_left_for_the_next_call(engine):
    ingest_elsewhere(engine, NEW)
    with writing(engine.index_dir / "vectors"):  # `paperradar index` running elsewhere
        assert engine.catch_up() == {"lexical": 1, "vectors": 0}
    assert engine.catch_up() == {"lexical": 0, "vectors": 1}
    assert keys(engine.search("magma", mode="dense", limit=1)) == ["2505.00001"]


def test_what_another_process_indexed_is_picked_up_not_redone(engine):
    ingest_elsewhere(engine, NEW)
    other = SearchEngine(engine.store, engine.index_dir, embedder=engine.embedder)
    assert other.update() == {"lexical": 1, "vectors": 1}
    other.close()
    assert engine.catch_up() == {"lexical": 0, "vectors": 0}
    assert keys(engine.search("volcano", mode="lexical")) == ["2505.00001"]
    assert keys(engine.search("magma", mode="dense", limit=1)) == ["2505.00001"]


def test_a_damaged_vector_index_still_lets_words_catch_up_then_says_why(engine):
    ingest_elsewhere(engine, NEW)
    engine.refresh()
    (engine.index_dir / "vectors" / "meta.json").write_text("{")
    engine.refresh()  # the worker notices the files changed
    with pytest.raises(IndexCorrupt, match="meta.json"):
        engine.catch_up()
    assert keys(engine.search("volcano", mode="lexical")) == ["2505.00001"]
    with pytest.raises(IndexCorrupt):
        engine.catch_up()
    assert engine.update(rebuild="vectors")["vectors"] == len(OLD) + 1
    assert engine.catch_up() == {"lexical": 0, "vectors": 0}
