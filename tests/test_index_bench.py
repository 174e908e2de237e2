"""bench/search_speed.py times what its labels say: the modes "with query embedding" embed every query
they time, although the engine caches query embeddings (the warm-up and earlier modes fill that cache
with the very same queries)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from paperradar.models import Paper
from paperradar.search import SearchEngine
from paperradar.store import Store

# Runs the benchmark harness on a small corpus: the whole-suite tier.
pytestmark = pytest.mark.slow

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
search_speed = pytest.importorskip("search_speed")

TOPICS = ["protein folding", "quantum error correction", "graph neural networks", "galaxy surveys",
          "speech recognition", "robot grasping"]


class CountingEmbedder:
    def __init__(self, inner):
        self.inner, self.name, self.dim, self.texts = inner, inner.name, inner.dim, 0

    def encode(self, texts, **kw):
        self.texts += len(texts)
        return self.inner.encode(texts, **kw)

    def encode_spans(self, texts, spans, **kw):  # papers, when indexing: not counted
        return self.inner.encode_spans(texts, spans, **kw)


def test_modes_with_query_embedding_embed_every_query(tmp_path, embedder, monkeypatch):
    store = Store(tmp_path / "paperradar.sqlite3")
    store.upsert_papers([Paper(title=f"Advances in {t}, part {i}", source="arxiv", arxiv_id=f"2504.{i:05d}",
                               abstract=f"We study {t}.") for i, t in enumerate(TOPICS * 4)])
    counting = CountingEmbedder(embedder)
    engine = SearchEngine(store, tmp_path / "index", embedder=counting)
    engine.update()
    queries = [f"{t} {w}" for t in TOPICS for w in ("methods", "survey", "benchmarks")]
    queries += queries[:5]  # a query asked again is embedded again too
    embedded_per_mode = []
    real_timed = search_speed.timed

    def timed(*args, **kw):
        before = counting.texts
        out = real_timed(*args, **kw)
        embedded_per_mode.append(counting.texts - before)
        return out

    monkeypatch.setattr(search_speed, "timed", timed)
    latencies, recall = search_speed.query_latencies(engine, counting, queries)
    embedded = dict(zip(latencies, embedded_per_mode, strict=False))
    for mode in ("query_embedding", "dense_with_query_embedding", "hybrid_with_query_embedding",
                 "search_api_top20_with_papers_and_highlights"):
        assert embedded[mode] >= len(queries), (mode, embedded)  # + the warm-up's
    for mode in ("lexical_tantivy", "dense_exact_numpy_search_only", "dense_hnsw_search_only",
                 "hybrid_query_embedding_cached", "search_api_top20_query_embedding_cached"):
        assert embedded[mode] == 0, (mode, embedded)
    assert recall == 1.0  # below the HNSW threshold search is exact
    engine.close()
    store.close()
