"""Ingest speed: the 119k-paper arXiv corpus into a fresh store, then again (a no-op re-ingest).

    python bench/ingest.py [CORPUS] [--repeat 3]

Prints JSON; the committed result is bench/results/ingest.json. Skips (exit 0, message) if the corpus
is absent.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _machine import describe

from paperradar.ingest import ingest
from paperradar.sources.jsonl import JSONLSource
from paperradar.store import Store

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus" / "arxiv-119k.jsonl.gz"


def timed_ingest(store: Store, corpus: str) -> tuple[float, object]:
    source = JSONLSource(corpus)
    t = time.perf_counter()
    report = ingest(store, source)
    elapsed = time.perf_counter() - t
    getattr(source, "close", lambda: None)()
    return elapsed, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", default=str(DEFAULT))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not Path(args.corpus).exists():
        print(json.dumps({"skipped": f"corpus not found: {args.corpus}"}))
        return
    fresh, again = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as d, Store(Path(d) / "bench.sqlite3") as store:
            t1, r1 = timed_ingest(store, args.corpus)
            t2, r2 = timed_ingest(store, args.corpus)
            db_mb = (Path(d) / "bench.sqlite3").stat().st_size / 2**20
        fresh.append(t1)
        again.append(t2)
        n = r1.added + r1.updated + r1.unchanged
        print(f"fresh {t1:.1f}s ({n / t1:,.0f}/s), re-ingest {t2:.1f}s; {r1.summary()}", file=sys.stderr)
    n = r1.added + r1.updated + r1.unchanged
    result = {
        "benchmark": "ingest",
        "corpus": Path(args.corpus).name,
        "papers": n,
        "rejected": r1.rejected,
        "runs": args.repeat,
        "fresh_seconds_median": round(statistics.median(fresh), 2),
        "fresh_papers_per_s_median": round(n / statistics.median(fresh)),
        "reingest_seconds_median": round(statistics.median(again), 2),
        "reingest_papers_per_s_median": round(n / statistics.median(again)),
        "reingest_unchanged": r2.unchanged,
        "database_mib": round(db_mb, 1),
        "target_papers_per_s": 5000,
        "machine": describe(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
