"""Check the 2.6M-paper projection: an HNSW index (the same settings as paperradar.vectors) over N random
unit vectors of dimension 384 — build time, file size, resident memory, query latency.

    python bench/ann_projection.py [--n 2600000]

Random vectors are the hard case for HNSW (no cluster structure), so recall here is a lower bound; the
real-data recall is in bench/results/search_speed.json. Prints JSON; the committed result is
bench/results/ann_projection.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime  # noqa: F401  (before usearch: see paperradar.vectors._usearch)
from _machine import describe
from usearch.index import Index

from paperradar.vectors import EXPANSION_SEARCH


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2_600_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    base = rss_mib()
    vectors = np.empty((args.n, args.dim), dtype=np.float16)
    for start in range(0, args.n, 100_000):  # generate in chunks: a float32 copy of 2.6M x 384 is 4 GB
        x = rng.standard_normal((min(100_000, args.n - start), args.dim), dtype=np.float32)
        vectors[start:start + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    index = Index(ndim=args.dim, metric="ip", dtype="f16", connectivity=16, expansion_add=128,
                  expansion_search=EXPANSION_SEARCH)
    t = time.perf_counter()
    index.add(np.arange(args.n, dtype=np.int64), vectors, threads=os.cpu_count() or 1)
    build_s = time.perf_counter() - t
    rss_built = rss_mib() - base
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "hnsw.usearch"
        index.save(str(path))
        size = path.stat().st_size
        del index
        before_view = rss_mib()
        view = Index.restore(str(path), view=True)
        view.expansion_search = EXPANSION_SEARCH
        queries = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        times, recall = [], []
        for q in queries:
            t = time.perf_counter()
            view.search(q, 10)
            times.append(1000 * (time.perf_counter() - t))
        # Recall against exact search, over the whole set, for a few queries (exact costs a full scan).
        for q in queries[:20]:
            exact = np.argpartition(-(vectors @ q.astype(np.float16)).astype(np.float32), 10)[:10]
            recall.append(len(set(exact.tolist()) & set(view.search(q, 10).keys.tolist())) / 10)
        rss_view = rss_mib() - before_view
    print(json.dumps({
        "benchmark": "ann_projection",
        "vectors": args.n,
        "dim": args.dim,
        "dtype": "float16",
        "hnsw": {"connectivity": 16, "expansion_add": 128, "expansion_search": EXPANSION_SEARCH},
        "build_s": round(build_s, 1),
        "index_file_gib": round(size / 2**30, 2),
        "vectors_gib": round(vectors.nbytes / 2**30, 2),
        "rss_while_building_gib": round(rss_built / 1024, 2),
        "rss_memory_mapped_view_mib": round(rss_view, 1),
        "query_p50_ms": round(statistics.median(times), 3),
        "query_p99_ms": round(statistics.quantiles(times, n=100)[98], 3),
        "recall_at_10_random_queries_vs_exact": round(statistics.fmean(recall), 3),
        "machine": describe(),
    }, indent=2))


if __name__ == "__main__":
    main()
