"""Index updates whose cost follows the change: a paper is re-embedded only when the text it is embedded
from changed (an upvote refresh embeds nothing), and an HNSW graph is updated in place, not rebuilt."""

from __future__ import annotations

import dataclasses
import functools
import json

import numpy as np
import pytest

from paperradar import search as search_module
from paperradar.models import Paper
from paperradar.search import SearchEngine
from paperradar.store import Store
from paperradar.vectors import VectorIndex

TOPICS = ["protein folding", "quantum error correction", "graph neural networks", "galaxy surveys",
          "volcanic eruptions", "speech recognition"]
PAPERS = [Paper(title=f"Advances in {t}, part {i}", source="hf_daily", arxiv_id=f"2504.{i:05d}",
                abstract=f"We study {t} with method {i}.", announced="2025-04-01", upvotes=i)
          for i, t in enumerate(TOPICS * 4)]
QUERIES = ["how do proteins fold", "fault tolerant qubits", "message passing on graphs", "magma"]


class Counting:
    """The embedder, counting the texts it is asked to encode."""

    def __init__(self, inner):
        self.inner, self.texts = inner, []
        self.name, self.dim = inner.name, inner.dim

    def encode(self, texts):
        self.texts.extend(texts)
        return self.inner.encode(texts)

    def encode_spans(self, texts, spans):  # papers: their passages (paperradar/passages.py)
        self.texts.extend(texts)
        return self.inner.encode_spans(texts, spans)


@pytest.fixture
def engine(tmp_path, embedder):
    store = Store(tmp_path / "paperradar.sqlite3")
    store.upsert_papers(PAPERS)
    eng = SearchEngine(store, tmp_path / "index", embedder=Counting(embedder))
    eng.update()
    yield eng
    eng.close()
    store.close()


def dense_results(engine) -> list[list[tuple[int, float]]]:
    engine.clear_query_cache()
    return [engine.retrieve(q, mode="dense", limit=10) for q in QUERIES]


def test_an_upvote_refresh_embeds_nothing_and_the_index_still_sees_the_change(engine):
    before, seq_before = dense_results(engine), engine.vectors.last_seq
    engine.embedder.texts.clear()
    engine.store.upsert_papers([dataclasses.replace(p, upvotes=p.upvotes + 100) for p in PAPERS])
    assert engine.store.max_seq() > seq_before  # the store did record a change of every paper
    assert engine.update() == {"lexical": len(PAPERS), "vectors": 0}
    assert engine.embedder.texts == []
    assert engine.vectors.last_seq == engine.store.max_seq() > seq_before
    assert engine.pending() == {"lexical": 0, "vectors": 0}
    assert dense_results(engine) == before
    assert engine.catch_up() == {"lexical": 0, "vectors": 0}


def test_a_changed_title_re_embeds_exactly_that_paper(engine):
    engine.embedder.texts.clear()
    changed = dataclasses.replace(PAPERS[4], title="Lava lakes and magma chambers, observed from orbit")
    engine.store.upsert_papers([dataclasses.replace(p, upvotes=p.upvotes + 5) for p in PAPERS[:12]])
    with Store(engine.store.path) as other:  # another process (an ingest) corrects one title
        other.upsert_papers([dataclasses.replace(changed, source="arxiv")])
    assert engine.store.get(changed.arxiv_id).title == changed.title
    assert engine.catch_up()["vectors"] == 1
    assert engine.embedder.texts == [f"{changed.title}. {changed.abstract}"]
    top = engine.retrieve("lava lakes seen from satellites", mode="dense", limit=1)
    assert top[0][0] == engine.store.get(changed.arxiv_id).id
    # The new text's hash is saved with the vectors: a restarted server embeds nothing again.
    fresh = SearchEngine(engine.store, engine.index_dir, embedder=engine.embedder)
    engine.embedder.texts.clear()
    engine.store.upsert_papers([dataclasses.replace(PAPERS[0], upvotes=500)])
    assert fresh.update()["vectors"] == 0 and engine.embedder.texts == []


def test_an_index_saved_before_text_hashes_learns_them_without_embedding(engine):
    vec_dir = engine.index_dir / "vectors"
    meta = json.loads((vec_dir / "meta.json").read_text())
    del meta["sha256"]["texts.npy"]
    (vec_dir / "meta.json").write_text(json.dumps(meta))
    (vec_dir / "texts.npy").unlink()
    engine.refresh()
    fresh = SearchEngine(engine.store, engine.index_dir, embedder=engine.embedder)
    assert fresh.vectors.unknown_texts() == len(PAPERS)
    engine.embedder.texts.clear()
    # Its first update learns the hashes from the store (nothing to embed: it saves them all the same)...
    assert fresh.update()["vectors"] == 0 and engine.embedder.texts == []
    assert fresh.vectors.unknown_texts() == 0 and (vec_dir / "texts.npy").exists()
    # ... so that an upvote refresh then embeds nothing.
    engine.store.upsert_papers([dataclasses.replace(p, upvotes=p.upvotes + 1) for p in PAPERS])
    assert fresh.update()["vectors"] == 0 and engine.embedder.texts == []
    # Papers changed before the hashes were learned are embedded again, once.
    fresh.vectors.set_text_hashes([1, 2], [0, 0])
    fresh.vectors.texts_missing = True
    engine.store.upsert_papers([dataclasses.replace(PAPERS[0], upvotes=1000)])
    assert fresh.update()["vectors"] == 1


def test_a_rebuild_embeds_everything(engine):
    engine.embedder.texts.clear()
    assert engine.update(rebuild="vectors")["vectors"] == len(PAPERS)
    assert len(engine.embedder.texts) == len(PAPERS)


def test_the_engine_updates_its_hnsw_graph_in_place(tmp_path, embedder, monkeypatch):
    """Above the threshold, new papers are added to the graph on disk; it is built once."""
    monkeypatch.setattr(search_module, "VectorIndex", functools.partial(VectorIndex, ann_threshold=10))
    builds = []
    real_build = VectorIndex._build_ann
    monkeypatch.setattr(VectorIndex, "_build_ann", lambda self: builds.append(1) or real_build(self))
    store = Store(tmp_path / "paperradar.sqlite3")
    store.upsert_papers(PAPERS[:20])
    eng = SearchEngine(store, tmp_path / "index", embedder=Counting(embedder))
    eng.update()
    assert builds == [1] and eng.vectors._ann is not None
    eng.store.upsert_papers(PAPERS[20:])
    retitled = dataclasses.replace(PAPERS[1], title="Folding of proteins, revisited", source="arxiv")
    eng.store.upsert_papers([retitled])
    assert eng.catch_up()["vectors"] == len(PAPERS) - 20 + 1
    assert builds == [1]  # updated, not rebuilt
    vectors = eng.vectors
    assert vectors._ann is not None and len(vectors._ann) == len(PAPERS) == len(vectors)
    for q in QUERIES:
        qv = eng.embedder.encode([q])[0]
        assert [p for p, _ in vectors.search(qv, k=5)] == [p for p, _ in vectors.search(qv, k=5, exact=True)]
    assert eng.update(rebuild="vectors")["vectors"] == len(PAPERS) and builds == [1, 1]
    eng.close()
    store.close()


def unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered(rng, n, centers):
    x = centers[rng.integers(0, len(centers), n)] + 0.3 * rng.standard_normal((n, centers.shape[1]))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def recall_at_10(vi: VectorIndex, queries) -> float:
    hits = 0
    for q in queries:
        exact = {pid for pid, _ in vi.search(q, k=10, exact=True)}
        hits += len(exact & {pid for pid, _ in vi.search(q, k=10)})
    return hits / (10 * len(queries))


def test_incremental_hnsw_adds_and_replaces_rows_with_recall_kept(tmp_path):
    rng = np.random.default_rng(7)
    centers = unit(rng, 40, 64)
    x = clustered(rng, 4000, centers)
    vi = VectorIndex(tmp_path / "v", "m", 64, ann_threshold=1000)
    vi.add(np.arange(4000), x)
    assert vi.save(last_seq=1, ann=True)["graph"] == "built"
    loaded = VectorIndex(tmp_path / "v", "m", 64, ann_threshold=1000)
    before = (tmp_path / "v" / "hnsw.usearch").stat().st_ino
    # A copy (as the engine updates) gets 1,000 new rows and 200 changed ones.
    work = loaded.copy()
    new = clustered(rng, 1000, centers)
    work.add(np.arange(4000, 5000), new)
    changed = clustered(rng, 200, centers)
    work.add(np.arange(0, 4000, 20), changed)
    assert work.search(new[3], k=1)[0][0] == 4003  # exact meanwhile: the graph is stale until the save
    report = work.save(last_seq=2)
    assert report["graph"] == "updated (1200 rows)"
    # The copy that searches used meanwhile still has its graph (a view of the previous file), unchanged.
    assert len(loaded._ann) == 4000
    after = VectorIndex(tmp_path / "v", "m", 64, ann_threshold=1000)
    assert len(after) == len(after._ann) == 5000 and after.last_seq == 2
    assert (tmp_path / "v" / "hnsw.usearch").stat().st_ino != before
    assert after.search(new[3], k=1)[0][0] == 4003
    assert after.search(changed[5], k=1)[0][0] == 100
    assert recall_at_10(after, unit(rng, 100, 64)) >= 0.95
    assert recall_at_10(after, np.concatenate([new[:50], changed[:50]])) >= 0.95
    assert after.save(last_seq=3, rebuild_ann=True)["graph"] == "built"


def test_a_save_without_changed_rows_links_the_files_in_place(tmp_path):
    rng = np.random.default_rng(8)
    vi = VectorIndex(tmp_path / "v", "m", 16, ann_threshold=100)
    vi.add(np.arange(300), unit(rng, 300, 16))
    vi.save(last_seq=1, ann=True)
    inodes = {n: (tmp_path / "v" / n).stat().st_ino for n in ("vectors.npy", "ids.npy", "texts.npy",
                                                                "hnsw.usearch")}
    again = VectorIndex(tmp_path / "v", "m", 16, ann_threshold=100)
    assert again.save(last_seq=2, ann=True)["graph"] == "unchanged"
    assert {n: (tmp_path / "v" / n).stat().st_ino for n in inodes} == inodes
    reread = VectorIndex(tmp_path / "v", "m", 16, ann_threshold=100)  # checksums carried over: it loads
    assert reread.last_seq == 2 and len(reread._ann) == 300
    reread.set_text_hashes([5], [77])  # only the text hashes change: only texts.npy is written
    reread.save(last_seq=3)
    now = {n: (tmp_path / "v" / n).stat().st_ino for n in inodes}
    assert now["texts.npy"] != inodes["texts.npy"]
    assert {n: i for n, i in now.items() if n != "texts.npy"} == {n: i for n, i in inodes.items()
                                                                   if n != "texts.npy"}
