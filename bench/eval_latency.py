"""What rescoring the fusion candidates costs: hybrid query latency on the 119k corpus with
``SearchEngine(rescore=False)`` (the fusion before) and ``rescore=True`` (the default since), interleaved.

    python bench/eval_latency.py [--queries 200]

Reuses the store and indexes of bench/search_speed.py (bench/.cache/speed; run that first) and its
queries (2-4 title words of random papers, seed 42). Every timed query embeds its text (the query cache is
emptied before each), as search_speed.py's hybrid figure does; the two settings alternate query by query,
so that a busy machine slows both alike. Prints JSON; the committed result is
bench/results/eval_latency.json.
"""

from __future__ import annotations

import argparse
import json
import time

from _machine import describe
from lexical_engines import make_queries
from search_speed import CACHE, pct

from paperradar.embed import Embedder
from paperradar.query import parse_query
from paperradar.search import SearchEngine
from paperradar.store import Store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    if not (CACHE / "paperradar.sqlite3").exists():
        print(json.dumps({"skipped": f"no store at {CACHE}: run bench/search_speed.py first"}))
        return
    store = Store(CACHE / "paperradar.sqlite3")
    embedder = Embedder.load(CACHE / "models")
    engines = {"before": SearchEngine(store, CACHE / "index", embedder=embedder, rescore=False),
               "after": SearchEngine(store, CACHE / "index", embedder=embedder, rescore=True)}
    queries = [" ".join(words) for _, words in make_queries(store, args.queries, seed=42)]
    for engine in engines.values():
        for q in queries[:10]:  # warm-up
            engine.retrieve(q, mode="hybrid", limit=100)
    times: dict[str, list[float]] = {name: [] for name in engines}
    for q in queries:
        for name, engine in engines.items():
            engine.clear_query_cache()
            t = time.perf_counter()
            engine.retrieve(q, mode="hybrid", limit=100)
            times[name].append(1000 * (time.perf_counter() - t))
    # The cost of its parts: a lexical query confined to the dense side's best 100, and 100 cosines.
    after = engines["after"]
    parts: dict[str, list[float]] = {"lexical top 100": [], "lexical confined to 100 dense hits": [],
                                      "100 cosines": []}
    for text in queries:
        q = parse_query(text)
        dense = [pid for pid, _ in after.retrieve(q, mode="dense", limit=100)]
        qv = after._embed_query(q.text)
        for name, run, kwargs in (("lexical top 100", after.lexical.search, {"query": q, "limit": 100}),
                                  ("lexical confined to 100 dense hits", after.lexical.search,
                                   {"query": q, "limit": 100, "within": dense}),
                                  ("100 cosines", after.vectors.similarities, {"query": qv, "ids": dense})):
            t = time.perf_counter()
            run(**kwargs)
            parts[name].append(1000 * (time.perf_counter() - t))
    out = {
        "benchmark": "eval_latency",
        "papers": store.count(),
        "queries": len(queries),
        "query_kind": "2-4 consecutive title words of random papers (search_speed.py's, seed 42)",
        "hybrid_with_query_embedding": {"before (rescore=False)": pct(times["before"]),
                                        "after (rescore=True, default)": pct(times["after"])},
        "parts": {name: pct(t) for name, t in parts.items()},
        "targets": {"hybrid_p50_ms": 15, "hybrid_p99_ms": 50},
        "machine": describe(),
    }
    for engine in engines.values():
        engine.close()
    store.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
