"""Lexical engines on the real corpus: paperradar's tantivy index vs an SQLite FTS5 external-content table.

Reads the 119k-paper corpus (gzip + json), loads it into a fresh store in a temporary directory, builds both
indexes from it, and times the same 200 queries on each: 2-4 consecutive title words of random papers, OR
semantics, top 100, title/abstract/authors weighted 3/1/2 in both engines. Prints one JSON object.

    nice -n 19 .venv/bin/python bench/lexical_engines.py > bench/results/lexical_engines.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from paperradar.lexical import DEFAULT_BOOSTS, LexicalIndex
from paperradar.models import Paper
from paperradar.query import parse_query
from paperradar.store import Store

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus" / "arxiv-119k.jsonl.gz"
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]+")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load(path: Path) -> list[Paper]:
    papers = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            papers.append(Paper(title=" ".join(r["title"].split()), source="jsonl", arxiv_id=r["id"],
                                abstract=" ".join((r.get("abstract") or "").split()),
                                authors=r.get("authors") or [], categories=r.get("categories") or [],
                                announced=r.get("listing_date"), submitted=r.get("date")))
    return papers


def make_queries(store: Store, n: int, seed: int) -> list[tuple[int, list[str]]]:
    """(source paper id, 2-4 consecutive title words) for n random papers whose title has 2+ words."""
    rng = random.Random(seed)
    ids = list(range(1, store.count() + 1))
    out = []
    while len(out) < n:
        found = store.get_many([rng.choice(ids)])
        if not found:
            continue
        p = found[0]
        words = [w.lower() for w in _WORD.findall(p.title)]
        if len(words) < 2:
            continue
        k = rng.randint(2, min(4, len(words)))
        start = rng.randint(0, len(words) - k)
        out.append((p.id, words[start:start + k]))
    return out


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def timings(run, queries) -> tuple[list[float], list[list[int]]]:
    for _, words in queries[:10]:  # warm-up: page cache, lazy structures
        run(words)
    times, results = [], []
    for _, words in queries:
        t = time.perf_counter()
        ids = run(words)
        times.append((time.perf_counter() - t) * 1000)
        results.append(ids)
    return times, results


def summary(times: list[float], results: list[list[int]], queries) -> dict:
    hits = sum(pid in r[:10] for (pid, _), r in zip(queries, results, strict=True))
    return {
        "median_ms": round(statistics.median(times), 3),
        "p99_ms": round(statistics.quantiles(times, n=100)[98], 3),
        "mean_ms": round(statistics.fmean(times), 3),
        # known-item check: the paper the words came from is among the first 10
        "source_paper_in_top10": round(hits / len(queries), 3),
    }


def fts5_engine(store: Store, w: dict, limit: int):
    """Build an external-content FTS5 table over the store's papers; (run(words), build s, bytes)."""
    db = store.db
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = store.path.stat().st_size
    t = time.perf_counter()
    db.execute("CREATE VIRTUAL TABLE papers_fts USING fts5(title, abstract, authors, content='papers', "
               "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')")
    db.execute("INSERT INTO papers_fts(papers_fts) VALUES('rebuild')")
    build_s = time.perf_counter() - t
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = store.path.stat().st_size - before
    sql = (f"SELECT rowid FROM papers_fts WHERE papers_fts MATCH ? "
           f"ORDER BY bm25(papers_fts, {w['title']}, {w['abstract']}, {w['authors']}) LIMIT ?")

    def run_fts(words):
        match = " OR ".join('"' + x.replace('"', '""') + '"' for x in words)
        return [r[0] for r in db.execute(sql, (match, limit))]

    return run_fts, build_s, size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    if not args.corpus.exists():
        print(json.dumps({"skipped": f"corpus not found: {args.corpus}"}))
        return 0
    result: dict = {
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "sqlite": sqlite3.sqlite_version},
        "corpus": {"path": str(args.corpus)},
        "queries": {"count": args.queries, "limit": args.limit, "seed": args.seed,
                    "kind": "2-4 consecutive title words of a random paper, OR semantics"},
        "weights": DEFAULT_BOOSTS,
    }
    with tempfile.TemporaryDirectory(prefix="paperradar-bench-") as tmp:
        tmp = Path(tmp)
        log("loading the corpus into a store")
        t = time.perf_counter()
        papers = load(args.corpus)
        store = Store(tmp / "p.sqlite3")
        for i in range(0, len(papers), 5000):
            store.upsert_papers(papers[i:i + 5000])
        result["corpus"].update(records=len(papers), papers=store.count(),
                                store_load_s=round(time.perf_counter() - t, 1))
        del papers
        queries = make_queries(store, args.queries, args.seed)
        result["queries"]["examples"] = [" ".join(w) for _, w in queries[:5]]

        log("building tantivy")
        ix = LexicalIndex(tmp / "lexical")
        t = time.perf_counter()
        ix.rebuild(store)
        tantivy_build = time.perf_counter() - t
        import tantivy  # only for its version string

        def run_tantivy(words):
            return [i for i, _ in ix.search(parse_query(" ".join(words)), limit=args.limit)]

        log("querying tantivy")
        t_times, t_results = timings(run_tantivy, queries)
        result["tantivy"] = {"version": str(getattr(tantivy, "__version__", "")),
                             "build_s": round(tantivy_build, 2), "size_mb": round(dir_size(ix.path) / 1e6, 1),
                             "documents": ix.count(), **summary(t_times, t_results, queries)}

        log("building FTS5")
        run_fts, fts_build, fts_size = fts5_engine(store, DEFAULT_BOOSTS, args.limit)

        log("querying FTS5")
        f_times, f_results = timings(run_fts, queries)
        result["fts5"] = {"build_s": round(fts_build, 2), "size_mb": round(fts_size / 1e6, 1),
                          "tokenizer": "porter unicode61 remove_diacritics 2",
                          **summary(f_times, f_results, queries)}
        result["overlap_at_10"] = round(statistics.fmean(
            len(set(a[:10]) & set(b[:10])) / max(1, min(10, len(a), len(b)))
            for a, b in zip(t_results, f_results, strict=True)), 3)
        result["speedup_median"] = round(result["fts5"]["median_ms"] / result["tantivy"]["median_ms"], 1)
        ix.close()
        store.close()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
