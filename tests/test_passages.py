"""Sentence-level dense evidence (paperradar/passages.py): passages, late-chunked sentence vectors from the
real model, the sentence index on disk, and search ranking by a paper's best sentence."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paperradar import passages
from paperradar.models import Paper
from paperradar.passages import SentenceIndex, SentenceIndexError
from paperradar.query import parse_query
from paperradar.search import SearchEngine, _dense_score, _short
from paperradar.store import Store
from paperradar.vectors import IndexMismatch

MODEL = "test-model/passages-2"


# -- passages -------------------------------------------------------------------------------------------
def test_passages_are_windows_of_two_sentences_behind_the_title_with_exact_spans():
    abstract = ("We measure X. It rises 3.5-fold (p < 0.01)! Does Y follow? [1] Prior work disagrees. "
                "Effects, e.g. this one, stay in one sentence.")
    got = passages.passages("A title", abstract)
    texts = [t for t, _ in got]
    assert texts == ["A title. We measure X. It rises 3.5-fold (p < 0.01)!",
                     "A title. Does Y follow? [1] Prior work disagrees.",
                     "A title. Effects, e.g. this one, stay in one sentence."]
    cut = [t[a:b] for t, spans in got for a, b in spans]
    assert cut == ["We measure X.", "It rises 3.5-fold (p < 0.01)!", "Does Y follow?",
                   "[1] Prior work disagrees.", "Effects, e.g. this one, stay in one sentence."]


def test_a_paper_without_an_abstract_is_its_title_and_long_runs_are_cut_at_spaces():
    assert passages.passages("Only a title", None) == [("Only a title", [])]
    assert passages.passages("Only a title", "   ") == [("Only a title", [])]
    long = " ".join(["word"] * 400)  # 2,000 characters, no full stop
    parts = passages.sentences(long)
    assert all(len(p) <= passages.MAX_SENTENCE for p in parts) and " ".join(parts) == long


@given(st.text(max_size=300), st.text(max_size=2000))
def test_spans_are_ordered_pieces_of_their_passage_and_keep_every_word(title, abstract):
    out = passages.passages(title, abstract)
    assert out
    for text, spans in out:
        assert spans or not passages.sentences(abstract)
        for (a, b), (c, _) in zip(spans, [*spans[1:], (len(text), 0)], strict=False):
            assert 0 <= a < b <= c <= len(text)
    if abstract.strip():
        kept = "".join(text[a:b] for text, spans in out for a, b in spans)
        assert "".join(kept.split()) == "".join(abstract.split())


# -- late-chunked span vectors from the real model -----------------------------------------------------------
def test_span_vectors_come_from_the_same_pass_as_the_text_vector(embedder):
    texts = ["Protein folding. Chaperones assist folding in vivo. Misfolding causes disease.",
             "Quantum codes. Surface codes correct errors."]
    spans = [[(18, 51), (52, 79)], [(15, 44)]]
    whole, parts = embedder.encode_spans(texts, spans)
    assert np.allclose(whole, embedder.encode(texts), atol=1e-5)
    assert [p.shape for p in parts] == [(2, embedder.dim), (1, embedder.dim)]
    for p in parts:
        assert np.allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-5)
    # Each sentence vector is closer to its own sentence read alone than to the other sentence.
    alone = embedder.encode(["Chaperones assist folding in vivo.", "Misfolding causes disease."])
    sims = parts[0] @ alone.T
    assert sims[0, 0] > sims[0, 1] and sims[1, 1] > sims[1, 0]
    # In context, not alone: the pooled vector differs from the sentence embedded by itself.
    assert 0.5 < sims[0, 0] < 0.999


def test_span_vectors_do_not_depend_on_batching_and_skip_spans_without_tokens(embedder):
    texts = [f"Title {i}. " + "Sentence about cells. " * (1 + 20 * i) for i in range(6)]
    spans = [[(0, 8), (len(t) - 22, len(t) - 1), (len(t), len(t))] for t in texts]
    a = embedder.encode_spans(texts, spans, batch_size=1)[1]
    b = embedder.encode_spans(texts, spans, batch_size=4)[1]
    for x, y in zip(a, b, strict=True):
        # int8 activations are quantized per batch: the same text differs slightly by its batch
        assert x.shape == y.shape and (x * y).sum(axis=1).min() > 0.98
    assert a[0].shape[0] == 2  # the empty span gets no row
    # 6 x 7 x 4 words: the last sentence lies past the 256 tokens the model reads, so it has no row.
    assert a[5].shape[0] == 1
    with pytest.raises(ValueError):
        embedder.encode_spans(["a"], [])
    with pytest.raises(TypeError):
        embedder.encode_spans("a", [[(0, 1)]])
    assert embedder.encode_spans([], [])[0].shape == (0, embedder.dim)


def test_a_paper_vector_is_the_mean_of_its_passages_and_a_title_only_paper_has_one_sentence(embedder):
    papers = [Paper(title="Graph networks", source="jsonl",
                    abstract="Message passing works. It scales. Attention helps. Depth hurts. Done."),
              Paper(title="Only a title here", source="jsonl")]
    vecs, sents = passages.embed_papers(embedder, papers)
    texts = [t for t, _ in passages.passages(papers[0].title, papers[0].abstract)]
    mean = embedder.encode(texts).mean(axis=0)
    assert float(vecs[0] @ mean / np.linalg.norm(mean)) > 0.995  # batches differ (int8 activations)
    assert np.linalg.norm(vecs, axis=1) == pytest.approx(1.0, abs=1e-5)
    assert sents[0].shape == (5, embedder.dim)
    assert sents[1].shape == (1, embedder.dim)
    assert np.allclose(sents[1][0], vecs[1], atol=1e-6)
    assert float(vecs[1] @ embedder.encode(["Only a title here"])[0]) > 0.98


# -- the sentence index ------------------------------------------------------------------------------------
def unit(rng, n, dim=8):
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_best_is_each_papers_best_sentence_and_survives_reopening(tmp_path):
    rng = np.random.default_rng(1)
    rows = {pid: unit(rng, int(rng.integers(1, 9))) for pid in range(1, 60)}
    index = SentenceIndex(tmp_path / "s", MODEL, 8)
    index.add(list(rows)[:30], [rows[p] for p in list(rows)[:30]])
    index.save()
    index.add(list(rows)[30:], [rows[p] for p in list(rows)[30:]])
    index.save()
    q = unit(rng, 1)[0]
    for reader in (index, index.reopen()):
        got = reader.best(q, [*rows, 999])  # 999: no sentences, left out
        assert set(got) == set(rows)
        for pid, r in rows.items():
            assert got[pid] == pytest.approx(float((r @ q).max()), abs=0.02)  # int8 rows
        assert np.allclose(reader.rows(5), rows[5], atol=0.01)
    assert len(index.reopen()) == 59 and index.reopen().stale == 0


def test_a_paper_embedded_again_replaces_its_rows_and_compaction_keeps_the_answers(tmp_path, monkeypatch):
    monkeypatch.setattr(passages, "COMPACT_MIN", 10)
    rng = np.random.default_rng(2)
    index = SentenceIndex(tmp_path / "s", MODEL, 8)
    first = {pid: unit(rng, 3) for pid in range(1, 11)}
    index.add(list(first), list(first.values()))
    index.save()
    reader = index.reopen()
    q = unit(rng, 1)[0]
    before = reader.best(q, first)
    again = {pid: unit(rng, 4) for pid in range(1, 6)}
    index.add(list(again), list(again.values()))
    index.save()
    assert index.stale == 15  # 5 papers x 3 old rows, not compacted yet (10 live rows... 35 in all)
    again2 = {pid: unit(rng, 2) for pid in range(1, 11)}
    index.add(list(again2), list(again2.values()))
    index.save()  # now most rows are stale: rewritten as one segment
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert len(meta["segments"]) == 1 and meta["rows"] == 20 and index.stale == 0
    assert len(list((tmp_path / "s").glob("*.vec.npy"))) == 1
    fresh = index.reopen().best(q, again2)
    for pid, r in again2.items():
        assert fresh[pid] == pytest.approx(float((r @ q).max()), abs=0.02)
    # A reader opened before keeps answering from the rows it mapped (files removed under it).
    assert reader.best(q, first) == before


def test_many_small_saves_merge_by_size_tier_and_keep_every_answer(tmp_path):
    # A server's catch-up saves a few papers at a time: segments merge by size tier (each row rewritten a
    # few times, not at every save), papers embedded again keep their latest rows wherever they moved.
    rng = np.random.default_rng(5)
    index = SentenceIndex(tmp_path / "s", MODEL, 8)
    rewritten = []
    write = index._write_segment
    index._write_segment = lambda name, owner, *a: (rewritten.append(len(owner)), write(name, owner, *a))
    latest: dict[int, np.ndarray] = {}
    written = 0
    for step in range(120):
        pids = [int(p) for p in rng.choice(np.arange(1, 400), size=int(rng.integers(1, 6)), replace=False)]
        rows = [unit(rng, int(rng.integers(1, 6))) for _ in pids]
        index.add(pids, rows)
        latest.update(zip(pids, rows, strict=True))
        index.save()
        written += sum(len(r) for r in rows)
        meta = json.loads((tmp_path / "s" / "meta.json").read_text())
        tiers = int(np.log(written) / np.log(passages.TIER_FACTOR)) + 1
        assert len(meta["segments"]) <= (passages.TIER_MERGE - 1) * tiers, step  # fewer than 4 per tier
    assert len(list((tmp_path / "s").glob("*.vec.npy"))) == len(meta["segments"])
    assert sum(rewritten) <= written * tiers  # each row written once, then once per tier at most
    q = unit(rng, 1)[0]
    for reader in (index, index.reopen()):
        got = reader.best(q, [*latest, 999])
        assert set(got) == set(latest)
        for pid, r in latest.items():
            assert got[pid] == pytest.approx(float((r @ q).max()), abs=0.02)
    index.compact()
    assert len(json.loads((tmp_path / "s" / "meta.json").read_text())["segments"]) == 1
    assert index.stale == 0 and index.reopen().best(q, latest) == pytest.approx(got)


def test_another_models_sentences_are_ignored_and_damage_is_reported(tmp_path):
    index = SentenceIndex(tmp_path / "s", MODEL, 8)
    index.add([1], [unit(np.random.default_rng(3), 2)])
    index.save()
    assert len(SentenceIndex(tmp_path / "s", "another/passages-2", 8)) == 0
    (tmp_path / "s" / "meta.json").write_text("{not json")
    with pytest.raises(SentenceIndexError, match="cannot read") as err:
        SentenceIndex(tmp_path / "s", MODEL, 8)
    assert "rebuild" in err.value.hint
    index._write_meta()
    next(iter((tmp_path / "s").glob("*.vec.npy"))).write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(SentenceIndexError, match="damaged"):
        SentenceIndex(tmp_path / "s", MODEL, 8)


# -- search by the best sentence -----------------------------------------------------------------------------
FILLER = ("We review prior work on the topic. The data come from public archives. Methods are described "
          "in detail. Results are discussed at length. Limitations are listed. Future work is outlined.")
PAPERS = [
    Paper(title="A broad survey of cell biology", source="jsonl", arxiv_id="2501.00001",
          abstract=FILLER + " Vitamin D deficiency increases the risk of hip fractures in elderly women. "
          + FILLER),
    *[Paper(title=f"Notes on topic {i}", source="jsonl", arxiv_id=f"2501.{i + 2:05d}",
            abstract=f"A general discussion of subject {i}. " + FILLER) for i in range(8)],
]


def test_search_ranks_by_the_sentence_that_matches(tmp_path, embedder):
    store = Store(tmp_path / "paperradar.sqlite3")
    store.upsert_papers(PAPERS)
    engine = SearchEngine(store, tmp_path / "index", embedder=embedder)
    engine.update()
    claim = "low vitamin D levels raise hip fracture risk in older women"
    hits = engine.search(claim, limit=3, mode="dense").hits
    assert hits[0].paper.arxiv_id == "2501.00001"
    target = hits[0].paper.id
    qv = engine._embed_query(claim)
    whole = dict(engine.vectors.similarities(qv, [target]))[target]
    assert hits[0].score == pytest.approx(engine.sentences.best(qv, [target])[target], abs=1e-6)
    assert hits[0].score > whole + 0.1  # the sentence, not the blurred whole abstract
    assert len(engine.sentences) == len(PAPERS)
    # A query of a few words names a topic as a title does: the better of the paper vector (every passage
    # holds the title) and the best sentence.
    short = "vitamin D fractures"
    qv = engine._embed_query(short)
    paper_cos = dict(engine.vectors.similarities(qv, [target]))[target]
    sentence = engine.sentences.best(qv, [target])[target]
    got = dict(engine.retrieve(short, mode="dense"))[target]
    assert got == pytest.approx(max(paper_cos, sentence), abs=1e-6)
    assert _short(parse_query(short)) and not _short(parse_query(claim))
    assert _dense_score(True, 0.5, 0.4) == 0.5
    assert _dense_score(False, 0.5, 0.4) == 0.4  # 5+ words: the best sentence
    assert _dense_score(False, 0.5, None) == 0.5  # no sentence vectors: the paper's
    # A rebuild writes the sentences again and swaps them in with the vectors.
    engine.update(rebuild="vectors")
    assert len(engine.sentences) == len(PAPERS)
    assert not (tmp_path / "index" / "sentences.rebuild").exists()
    assert engine.search(claim, limit=1, mode="dense").hits[0].paper.id == target
    store.close()


def test_an_index_embedded_the_old_way_asks_for_a_rebuild(tmp_path, embedder):
    store = Store(tmp_path / "paperradar.sqlite3")
    store.upsert_papers(PAPERS[:2])
    engine = SearchEngine(store, tmp_path / "index", embedder=embedder)
    engine.update()
    meta_path = tmp_path / "index" / "vectors" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["model"] = embedder.name  # what paperradar wrote before papers were read in passages
    meta_path.write_text(json.dumps(meta))
    fresh = SearchEngine(store, tmp_path / "index", embedder=embedder)
    with pytest.raises(IndexMismatch, match="passages-2") as err:
        fresh.search("vitamin", mode="dense")
    assert "--rebuild vectors" in err.value.hint
    fresh.update(rebuild="vectors")
    meta = json.loads((tmp_path / "index" / "sentences" / "meta.json").read_text())
    assert len(meta["segments"]) == 1 and meta["papers"] == 2  # a rebuild leaves one segment
    top = fresh.search("vitamin D hip fractures", mode="dense", limit=1).hits[0]
    assert top.paper.arxiv_id == "2501.00001"
    store.close()


def test_updates_add_and_replace_sentences_at_the_cost_of_what_changed(tmp_path, embedder):
    store = Store(tmp_path / "paperradar.sqlite3")
    store.upsert_papers(PAPERS[:3])
    engine = SearchEngine(store, tmp_path / "index", embedder=embedder)
    engine.update()
    target = store.get("2501.00001").id
    first = engine.sentences.rows(target)
    assert len(first) == 13  # 13 sentences of its abstract
    segments = len(json.loads((tmp_path / "index" / "sentences" / "meta.json").read_text())["segments"])
    store.upsert_papers([PAPERS[3]])
    assert engine.update()["vectors"] == 1
    meta = json.loads((tmp_path / "index" / "sentences" / "meta.json").read_text())
    assert len(meta["segments"]) == segments + 1 and meta["papers"] == 4  # one small segment appended
    changed = Paper(title=PAPERS[0].title, source="arxiv", arxiv_id="2501.00001",
                    abstract="Vitamin D deficiency increases the risk of hip fractures. Nothing else.")
    store.upsert_papers([changed])  # arXiv's own record corrects the abstract
    assert store.get("2501.00001").abstract == changed.abstract
    assert engine.update()["vectors"] == 1
    assert len(engine.sentences.rows(target)) == 2 and engine.sentences.stale == 13
    qv = engine._embed_query("vitamin D and hip fractures")
    assert engine.sentences.best(qv, [target])[target] > 0.6
    store.close()


@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 20)), max_size=50))
def test_runs_are_the_rows_of_each_start_and_count(pairs):
    starts = np.array([a for a, _ in pairs], dtype=np.int64)
    counts = np.array([n for _, n in pairs], dtype=np.int64)
    want = [r for a, n in pairs for r in range(a, a + n)]
    assert passages._runs(starts, counts).tolist() == want


def test_a_rebuild_of_an_empty_store_leaves_empty_indexes(tmp_path, embedder):
    store = Store(tmp_path / "paperradar.sqlite3")
    engine = SearchEngine(store, tmp_path / "index", embedder=embedder)
    assert engine.update(rebuild="vectors") == {"lexical": 0, "vectors": 0}
    assert len(engine.sentences) == 0 and engine.search("anything", mode="dense").hits == []
    store.close()


def test_a_paper_added_twice_before_a_save_keeps_its_last_rows(tmp_path):
    rng = np.random.default_rng(4)
    index = SentenceIndex(tmp_path / "s", MODEL, 8)
    a, b, again = unit(rng, 3), unit(rng, 2), unit(rng, 4)
    index.add([1, 2], [a, b])
    index.add([1], [again])
    index.save()
    reader = index.reopen()
    assert np.allclose(reader.rows(1), again, atol=0.01) and np.allclose(reader.rows(2), b, atol=0.01)
    assert reader.stale == 0 and len(reader) == 2
