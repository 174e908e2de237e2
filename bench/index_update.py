"""Index update cost on the 119k-paper arXiv corpus: what an upvote refresh and a day of new papers cost
the vector index, now that updates follow the change, against what the previous code did.

    PYTHONPATH=. python bench/index_update.py [--papers-refreshed 1500] [--papers-added 1000] [--queries 200]

(PYTHONPATH=.: the working tree's paperradar, not a copy installed in the environment.)

Works on a copy of the store and indexes that bench/search_speed.py cached in bench/.cache/speed/ (the
cache is not modified), embedding at the truncation that cache was built with (builds.json). Prints
JSON; the committed result is bench/results/index_update.json. Skips cleanly when the cache is absent.

(a) An upvote-only refresh (Hugging Face daily votes) of N papers: papers embedded and seconds of the
    update now, against the previous code, which re-embedded every changed paper and rebuilt the HNSW
    graph (timed here: embedding those N texts, and a full graph build over the same rows).
(b) M new papers: the update that embeds them and adds them to the HNSW graph in place, against a full
    graph build over the same rows; recall@10 of each graph against exact search, for title queries and
    for the new papers' own vectors.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _machine import describe
from lexical_engines import make_queries

from paperradar.embed import Embedder
from paperradar.models import Paper
from paperradar.search import EMBED_CHUNK, SearchEngine, paper_text
from paperradar.store import Store
from paperradar.vectors import VectorIndex

CACHE = Path(__file__).resolve().parent / ".cache" / "speed"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def recall_at_10(vectors: VectorIndex, queries) -> float:
    def top(q, exact):
        return {pid for pid, _ in vectors.search(q, k=10, exact=exact)}

    return round(statistics.fmean(len(top(q, True) & top(q, False)) / 10 for q in queries), 4)


def recalls(vectors: VectorIndex, qvecs, new_ids: list[int], own) -> dict:
    found_first = statistics.fmean(vectors.search(v, k=1)[0][0] == pid
                                   for pid, v in zip(new_ids, own, strict=False))
    return {"title_queries": recall_at_10(vectors, qvecs),
            "new_papers_as_queries": recall_at_10(vectors, own),
            "new_papers_found_first": round(found_first, 4)}


def timed_update(engine: SearchEngine, saves: list) -> tuple[dict, float, float]:
    """engine.update(): (papers per index, lexical seconds, vectors seconds)."""
    t = time.perf_counter()
    n_lex = engine.update(dense=False)["lexical"]
    lex_s = time.perf_counter() - t
    saves.clear()
    t = time.perf_counter()
    n_vec = engine.update()["vectors"]
    return {"lexical": n_lex, "vectors": n_vec}, round(lex_s, 2), round(time.perf_counter() - t, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--papers-refreshed", type=int, default=1500)
    ap.add_argument("--papers-added", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    if not hasattr(VectorIndex, "unknown_texts"):
        where = sys.modules["paperradar"].__file__
        sys.exit(f"this paperradar ({where}) predates text hashes: run with PYTHONPATH=.")
    if not (CACHE / "index" / "vectors" / "meta.json").exists():
        print(json.dumps({"skipped": f"no cached index in {CACHE}: run bench/search_speed.py first"}))
        return
    max_length = json.loads((CACHE / "builds.json").read_text()).get("vectors_max_length", 128)
    work = Path(tempfile.mkdtemp(prefix="paperradar-index-update-"))
    try:
        log(f"copying the cached store and indexes to {work}")
        shutil.copy2(CACHE / "paperradar.sqlite3", work / "paperradar.sqlite3")
        shutil.copytree(CACHE / "index", work / "index")
        out = run(work, max_length, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, indent=2))


def run(work: Path, max_length: int, args) -> dict:
    embedder = Embedder.load(CACHE / "models", max_length=max_length)
    store = Store(work / "paperradar.sqlite3")
    engine = SearchEngine(store, work / "index", embedder=embedder)
    saves: list[dict] = []
    real_save = VectorIndex.save

    def save(self, *a, **kw):
        report = real_save(self, *a, **kw)
        saves.append(report)
        return report

    VectorIndex.save = save
    n = store.count()
    embedder.encode(["warm up"])
    engine.warm()
    assert engine.vectors.last_seq == store.max_seq(), "the cached index is behind its store"

    # The cached index predates the text hashes: its first update learns them from the store.
    t = time.perf_counter()
    assert engine.update()["vectors"] == 0
    learn_s = round(time.perf_counter() - t, 2)
    assert engine.vectors.unknown_texts() == 0

    # (a) An upvote-only refresh, as a daily Hugging Face listing brings it.
    rng = random.Random(7)
    refreshed = store.get_many(rng.sample(range(1, n + 1), args.papers_refreshed))
    records = [Paper(title=p.title, source="hf_daily", arxiv_id=p.arxiv_id, abstract=p.abstract,
                     upvotes=(p.upvotes or 0) + rng.randint(1, 50)) for p in refreshed]
    seq = store.max_seq()
    store.upsert_papers(records)
    assert store.count_changed_since(seq) == len(refreshed)
    counts, lex_s, vec_s = timed_update(engine, saves)
    assert counts["vectors"] == 0
    refresh_saves = list(saves)
    texts = [paper_text(p) for p in refreshed]
    t = time.perf_counter()
    for i in range(0, len(texts), EMBED_CHUNK):
        embedder.encode(texts[i:i + EMBED_CHUNK])
    old_embed_s = round(time.perf_counter() - t, 2)

    # (b) New papers: titles and abstracts of different papers recombined, under new arXiv ids.
    donors = store.get_many(rng.sample(range(1, n + 1), 2 * args.papers_added))
    new = [Paper(title=a.title, source="arxiv", arxiv_id=f"2699.{i:05d}", abstract=b.abstract,
                 announced="2026-11-30", categories=a.categories)
           for i, (a, b) in enumerate(zip(donors[::2], donors[1::2], strict=True))]
    store.upsert_papers(new)
    add_counts, add_lex_s, add_vec_s = timed_update(engine, saves)
    add_saves = list(saves)
    vectors = engine.vectors
    assert len(vectors) == n + len(new) and len(vectors._ann) == len(vectors)

    queries = [" ".join(words) for _, words in make_queries(store, args.queries, seed=42)]
    qvecs = embedder.encode(queries)
    new_ids, new_vecs = vectors.rows(vectors.ids()[-len(new):])
    own = new_vecs[:args.queries]
    incremental = recalls(vectors, qvecs, new_ids, own)

    log("full HNSW rebuild over the same rows, for comparison")
    t = time.perf_counter()
    graph = vectors._build_ann()
    build_s = round(time.perf_counter() - t, 2)
    rebuilt = VectorIndex(vectors.dir, vectors.model, vectors.dim, load=False)
    rebuilt._f16, rebuilt._ids, rebuilt._ann = vectors._f16, vectors._ids, graph
    rebuilt._row = {int(i): r for r, i in enumerate(vectors._ids.tolist())}
    full = recalls(rebuilt, qvecs, new_ids, own)
    old_refresh_s = round(old_embed_s + build_s, 2)
    return {
        "benchmark": "index_update",
        "papers": n,
        "model": embedder.name,
        "vectors_max_length": max_length,
        "old_index_learns_text_hashes_s": learn_s,
        "upvote_refresh": {
            "papers_changed": len(refreshed),
            "lexical_reindexed": counts["lexical"],
            "lexical_update_s": lex_s,
            "before": {"papers_embedded": len(refreshed), "embed_s": old_embed_s,
                       "hnsw_full_rebuild_s": build_s, "vector_update_s_at_least": old_refresh_s},
            "after": {"papers_embedded": counts["vectors"], "vector_update_s": vec_s, "saves": refresh_saves},
        },
        "papers_added": {
            "papers": len(new),
            "lexical_update_s": add_lex_s,
            "after_incremental": {"papers_embedded": add_counts["vectors"], "vector_update_s": add_vec_s,
                                  "saves": add_saves, "recall_at_10_vs_exact": incremental},
            "before_full_rebuild": {"hnsw_build_s": build_s, "recall_at_10_vs_exact": full},
        },
        "queries": len(queries),
        "query_kind": "2-4 consecutive title words of a random paper; and the new papers' own vectors",
        "machine": describe(),
    }


if __name__ == "__main__":
    main()
