"""What scoring candidates by their best sentence adds to a query: SentenceIndex.best over the candidates a
hybrid query rescored (up to 200: each engine's top 100), on the sentence vectors of real papers.

    python bench/sentence_rescore.py [SENTENCES_DIR] [--queries 1000]

Reads a sentence index written by the product (default: the 119k bench corpus's, bench/.cache/speed/index/
sentences, or the part a rebuild wrote so far, sentences.rebuild). Queries are real sentence vectors of
other papers (unit vectors of the same model); candidates are 200 random papers of the index (the worst
case: no overlap between the two runs). Times the opening of the index and each best() call. Prints JSON;
the committed result is bench/results/sentence_rescore.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from _machine import describe
from search_speed import CACHE

from paperradar.passages import SentenceIndex


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("directory", nargs="?", type=Path)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--candidates", type=int, default=200)
    args = ap.parse_args()
    directory = args.directory
    if directory is None:
        directory = next((d for d in (CACHE / "index" / "sentences", CACHE / "index" / "sentences.rebuild")
                          if (d / "meta.json").exists()), None)
    if directory is None:
        print(json.dumps({"skipped": "no sentence index; run bench/reembed.py"}))
        return
    meta = json.loads((directory / "meta.json").read_text())
    t = time.perf_counter()
    index = SentenceIndex(directory, meta["model"], meta["dim"])
    open_s = time.perf_counter() - t
    papers = index._lookup[0]
    rng = np.random.default_rng(7)
    times = []
    for _ in range(args.queries):
        query = index.rows(int(rng.choice(papers)))[0]
        cands = rng.choice(papers, size=min(args.candidates, len(papers)), replace=False).tolist()
        t = time.perf_counter()
        index.best(query, cands)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(json.dumps({
        "benchmark": "sentence_rescore", "directory": str(directory), "papers": len(index),
        "sentence_rows": meta["rows"], "segments": len(meta["segments"]),
        "bytes_on_disk": sum(p.stat().st_size for p in directory.glob("*.npy")),
        "open_seconds": round(open_s, 3), "candidates": args.candidates, "queries": args.queries,
        "best_ms": {"p50": round(statistics.median(times), 3), "p90": round(times[int(0.9 * len(times))], 3),
                    "p99": round(times[int(0.99 * len(times))], 3), "max": round(times[-1], 3)},
        "machine": describe()}, indent=2))


if __name__ == "__main__":
    main()
