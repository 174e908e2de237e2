"""Retrieval quality on SciFact (BEIR format): every mode, and the fusion settings we tuned, in one run.

    python bench/eval_scifact.py [FOLDER] [--split train]

Builds one store + indexes (cached in bench/.cache/, never committed: SciFact is CC BY-NC), embeds the
5,183 abstracts once, then scores lexical, dense, and hybrid fusions (convex combination over a range of
alpha, and RRF) on the split's queries. Prints JSON; the committed result is
bench/results/eval_scifact_train.json. Skips cleanly when the folder is absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _machine import describe

from paperradar import rank
from paperradar.evaluate import beir_papers, load_beir, mrr_at, ndcg_at, recall_at
from paperradar.query import parse_query
from paperradar.search import SearchEngine
from paperradar.store import Store
from paperradar.vectors import IndexMismatch

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "eval" / "scifact"
CACHE = Path(__file__).resolve().parent / ".cache" / "scifact"
TITLE_BOOSTS = (1.0, 0.8, 0.7, 0.6, 0.5)
ALPHAS = (0.5, 0.55, 0.6, 0.65)


def score(runs: dict[str, list], qrels: dict, doc_of: dict) -> dict:
    totals = {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    for qid, hits in runs.items():
        ranked = [doc_of[pid] for pid, _ in hits]
        totals["ndcg@10"] += ndcg_at(ranked, qrels[qid])
        totals["recall@100"] += recall_at(ranked, qrels[qid])
        totals["mrr@10"] += mrr_at(ranked, qrels[qid])
    return {k: round(v / len(runs), 4) for k, v in totals.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default=str(DEFAULT))
    ap.add_argument("--split", default="train")
    args = ap.parse_args()
    if not Path(args.folder, "corpus.jsonl").exists():
        print(json.dumps({"skipped": f"no BEIR folder at {args.folder}"}))
        return
    corpus, queries, qrels = load_beir(args.folder, args.split)
    CACHE.mkdir(parents=True, exist_ok=True)
    store = Store(CACHE / "eval.sqlite3")
    store.upsert_papers(beir_papers(corpus))
    engine = SearchEngine(store, CACHE / "index")
    t = time.perf_counter()

    def progress(name, done, total):
        if done % 2048 == 0 or done == total:
            print(f"{name} {done}/{total}", file=sys.stderr)

    try:
        engine.update(progress=progress)
    except IndexMismatch as e:  # the cache was embedded another way (an older paperradar): embed again
        print(f"{e}; rebuilding the vectors", file=sys.stderr)
        engine.update(progress=progress, rebuild="vectors")
    index_s = time.perf_counter() - t
    doc_of = {p.id: p.doi[len("beir/"):] for p in store.changed_since(0, limit=len(corpus) + 1)}

    lexical, dense = {}, {}
    t = time.perf_counter()
    for qid, text in queries.items():
        lexical[qid] = engine.retrieve(text, mode="lexical", limit=100)
    lex_ms = 1000 * (time.perf_counter() - t) / len(queries)
    t = time.perf_counter()
    for qid, text in queries.items():
        dense[qid] = engine.retrieve(text, mode="dense", limit=100)
    dense_ms = 1000 * (time.perf_counter() - t) / len(queries)

    results = {"lexical": score(lexical, qrels, doc_of), "dense": score(dense, qrels, doc_of)}
    # Field weights (title : abstract), lexical alone, the same for every query.
    parsed = {qid: parse_query(text) for qid, text in queries.items()}
    default_boosts, default_alpha = dict(engine.lexical.boosts), engine.alpha
    for title_boost in TITLE_BOOSTS:
        boosts = {**default_boosts, "title": title_boost}
        lex = {q: engine.lexical.search(parsed[q], limit=100, boosts=boosts) for q in queries}
        results[f"lexical title boost {title_boost}"] = score(lex, qrels, doc_of)
    for alpha in (0.3, 0.4, 0.5, 0.6, 0.7):
        fused = {q: rank.convex(lexical[q], dense[q], alpha=alpha, limit=100) for q in queries}
        results[f"hybrid convex alpha={alpha}"] = score(fused, qrels, doc_of)
    for k in (10, 60):
        fused = {q: rank.rrf([lexical[q], dense[q]], k=k, limit=100) for q in queries}
        results[f"hybrid rrf k={k}"] = score(fused, qrels, doc_of)
    # The engine's fusion (every candidate scored by both engines, the dense side by best sentence) by title
    # boost and alpha: the grid the defaults were chosen from.
    # "adaptive": the default, the title at 1.0 for queries of up to SHORT_QUERY_WORDS words, else at
    # LONG_QUERY_TITLE (paperradar/lexical.py); the others weigh the title so for every query.
    default_long = engine.lexical.long_query_title
    for title_boost in ("adaptive", *TITLE_BOOSTS):
        if title_boost != "adaptive":
            engine.lexical.boosts = {**default_boosts, "title": title_boost}
            engine.lexical.long_query_title = 1.0
        for alpha in ALPHAS:
            engine.alpha = alpha
            fused = {qid: engine.retrieve(text, mode="hybrid", limit=100) for qid, text in queries.items()}
            name = f"hybrid, engine fusion, title boost {title_boost}, alpha={alpha}"
            results[name] = score(fused, qrels, doc_of)
            print(f"{name}: {results[name]}", file=sys.stderr)
    engine.lexical.boosts, engine.lexical.long_query_title, engine.alpha = default_boosts, default_long, \
        default_alpha
    # What `paperradar eval --mode hybrid` runs (the engine's default fusion), end to end.
    t = time.perf_counter()
    hybrid = {qid: engine.retrieve(text, mode="hybrid", limit=100) for qid, text in queries.items()}
    hybrid_ms = 1000 * (time.perf_counter() - t) / len(queries)
    results["hybrid (default)"] = score(hybrid, qrels, doc_of)
    out = {
        "benchmark": "eval_scifact",
        "split": args.split,
        "queries": len(queries),
        "documents": len(corpus),
        "model": engine.vectors.model,
        "max_length": engine.embedder.max_length,
        "default_fusion": f"{engine.fusion} alpha={engine.alpha}"
                          + (", candidates scored by both engines" if engine.rescore else ""),
        "default_boosts": engine.lexical.boosts,
        "index_seconds_this_run": round(index_s, 1),  # ~0 when bench/.cache held the indexes
        "query_ms_mean": {"lexical": round(lex_ms, 2), "dense": round(dense_ms, 2),
                          "hybrid": round(hybrid_ms, 2)},
        "results": results,
        "machine": describe(),
    }
    engine.close()
    store.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
