"""Search speed on the 119k-paper arXiv corpus: index build, embedding throughput, query latency
(lexical, dense exact and HNSW, hybrid, full search), HNSW recall, memory and a 2.6M projection.

    python bench/search_speed.py [--max-length 128] [--queries 200]

The store and indexes are cached in bench/.cache/speed/ (embedding 119k abstracts takes a while on 2
cores; a re-run reuses them and reports the build figures recorded by the run that built them). The
losing lexical engine (SQLite FTS5) runs side by side in the same process. Prints JSON; the committed
result is bench/results/search_speed.json. Skips cleanly when the corpus is absent.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _machine import describe
from lexical_engines import dir_size, fts5_engine, make_queries

from paperradar.embed import Embedder
from paperradar.ingest import ingest
from paperradar.lexical import DEFAULT_BOOSTS
from paperradar.search import SearchEngine, paper_text
from paperradar.sources.jsonl import JSONLSource
from paperradar.store import Store

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus" / "arxiv-119k.jsonl.gz"
CACHE = Path(__file__).resolve().parent / ".cache" / "speed"
ARXIV_SIZE = 2_600_000


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    return kib / 1024


def pct(times: list[float]) -> dict:
    return {"p50_ms": round(statistics.median(times), 2),
            "p99_ms": round(statistics.quantiles(times, n=100)[98], 2),
            "mean_ms": round(statistics.fmean(times), 2)}


_MEMORY_PROBE = """
import json, sys
sys.path.insert(0, {bench!r})
from search_speed import rss_mib
from paperradar.embed import Embedder
from paperradar.search import SearchEngine
from paperradar.store import Store
emb = Embedder.load({models!r}, max_length={max_length})
emb.encode(["warm up"])
base = rss_mib()
store = Store({store!r})
engine = SearchEngine(store, {index!r}, embedder=emb)
for q in ("graph neural networks", "diffusion models for video", "quantum error correction"):
    engine.search(q, limit=20)
print(json.dumps({{"process_rss_mib": round(rss_mib(), 1), "model_and_runtime_rss_mib": round(base, 1),
                  "index_rss_mib": round(rss_mib() - base, 1)}}))
"""


def measure_memory(max_length: int) -> dict:
    """Resident memory of a fresh process that loads the model, then the engine, and searches."""
    code = _MEMORY_PROBE.format(bench=str(Path(__file__).parent), models=str(CACHE / "models"),
                                max_length=max_length, store=str(CACHE / "paperradar.sqlite3"),
                                index=str(CACHE / "index"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def timed(fn, items, before_each=None) -> tuple[list[float], list]:
    """Milliseconds per call of ``fn`` on each item, after a warm-up on the first ten; ``before_each``
    runs untimed before every timed call."""
    for x in items[:10]:  # warm-up
        fn(x)
    times, out = [], []
    for x in items:
        if before_each:
            before_each()
        t = time.perf_counter()
        out.append(fn(x))
        times.append(1000 * (time.perf_counter() - t))
    return times, out


def query_latencies(engine: SearchEngine, embedder, queries: list[str]) -> tuple[dict[str, dict], float]:
    """Latency percentiles of each search mode over ``queries``, and the HNSW recall@10 against exact."""
    lat: dict[str, dict] = {}
    t_lex, lex_res = timed(lambda q: engine.retrieve(q, mode="lexical", limit=100), queries)
    lat["lexical_tantivy"] = pct(t_lex)
    t_qemb, qvecs = timed(lambda q: embedder.encode([q])[0], queries)
    lat["query_embedding"] = pct(t_qemb)
    t_exact, exact = timed(lambda v: engine.vectors.search(v, k=100, exact=True), qvecs)
    lat["dense_exact_numpy_search_only"] = pct(t_exact)
    t_ann, ann = timed(lambda v: engine.vectors.search(v, k=100), qvecs)
    lat["dense_hnsw_search_only"] = pct(t_ann)
    # The engine caches query embeddings, and the warm-up and each earlier mode fill that cache with these
    # very queries: emptied before every timed query, each mode embeds each query, as its label says.
    fresh = engine.clear_query_cache
    t_dense, _ = timed(lambda q: engine.retrieve(q, mode="dense", limit=100), queries, fresh)
    lat["dense_with_query_embedding"] = pct(t_dense)
    t_hyb, _ = timed(lambda q: engine.retrieve(q, mode="hybrid", limit=100), queries, fresh)
    lat["hybrid_with_query_embedding"] = pct(t_hyb)
    t_full, _ = timed(lambda q: engine.search(q, limit=20), queries, fresh)
    lat["search_api_top20_with_papers_and_highlights"] = pct(t_full)
    # A repeated query (the next page, a refined filter) finds its embedding in the cache.
    for q in queries:
        engine.retrieve(q, mode="dense", limit=1)
    t_hyb_cached, _ = timed(lambda q: engine.retrieve(q, mode="hybrid", limit=100), queries)
    lat["hybrid_query_embedding_cached"] = pct(t_hyb_cached)
    t_full_cached, _ = timed(lambda q: engine.search(q, limit=20), queries)
    lat["search_api_top20_query_embedding_cached"] = pct(t_full_cached)
    recall = statistics.fmean(len({p for p, _ in a[:10]} & {p for p, _ in e[:10]}) / 10
                              for a, e in zip(ann, exact, strict=True))
    return lat, recall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--max-length", type=int, default=128,
                    help="document truncation for the corpus embedding (query latency does not depend on it)")
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    if not args.corpus.exists():
        print(json.dumps({"skipped": f"corpus not found: {args.corpus}"}))
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    builds_path = CACHE / "builds.json"
    builds = json.loads(builds_path.read_text()) if builds_path.exists() else {}

    store = Store(CACHE / "paperradar.sqlite3")
    if store.count() == 0:
        log("ingesting the corpus")
        t = time.perf_counter()
        ingest(store, JSONLSource(str(args.corpus)))
        builds["ingest_s"] = round(time.perf_counter() - t, 1)
    n = store.count()

    # Embedding throughput on a fixed sample, both truncations, in this run.
    sample = [paper_text(p) for p in store.get_many(range(1, n + 1, max(1, n // 512)))][:512]
    throughput = {}
    for length in (128, 256):
        emb = Embedder.load(CACHE / "models", max_length=length)
        emb.encode(sample[:32])
        t = time.perf_counter()
        emb.encode(sample)
        throughput[f"max_length_{length}_docs_per_s"] = round(len(sample) / (time.perf_counter() - t), 1)
        log(f"embedding at {length} tokens: {throughput[f'max_length_{length}_docs_per_s']} docs/s")

    embedder = Embedder.load(CACHE / "models", max_length=args.max_length)
    engine = SearchEngine(store, CACHE / "index", embedder=embedder)
    log("building the lexical index (from scratch, every run: it is quick)")
    t = time.perf_counter()
    engine.update(dense=False, rebuild="lexical")
    builds["lexical_build_s"] = round(time.perf_counter() - t, 1)
    if engine.vectors.last_seq < store.max_seq() or engine.vectors.needs_ann():
        log("embedding the corpus (resumable: re-run to continue)")
        t = time.perf_counter()
        done = engine.update(progress=lambda name, d, total: log(f"{name} {d}/{total}") if d % 4096 == 0
                             else None)["vectors"]
        builds["vectors_build_s"] = round(time.perf_counter() - t, 1) + builds.get("vectors_build_s", 0)
        builds["embedded_in_last_run"] = done
        builds["vectors_max_length"] = args.max_length
    builds_path.write_text(json.dumps(builds, indent=2))
    t = time.perf_counter()
    engine.vectors.save(last_seq=engine.vectors.last_seq, ann=True)
    hnsw_build_s = round(time.perf_counter() - t, 1)
    del engine

    engine = SearchEngine(store, CACHE / "index", embedder=embedder)
    engine.search("warm up the model and the indexes", limit=5)
    memory = measure_memory(args.max_length)

    queries = [" ".join(words) for _, words in make_queries(store, args.queries, seed=42)]
    lat, recall = query_latencies(engine, embedder, queries)

    log("building FTS5 (the losing lexical engine) for comparison")
    run_fts, fts_build, fts_bytes = fts5_engine(store, DEFAULT_BOOSTS, 100)
    t_fts, _ = timed(lambda q: run_fts(q.split()), queries)
    lat["lexical_sqlite_fts5"] = pct(t_fts)
    store.db.execute("DROP TABLE papers_fts")

    vec_dir = CACHE / "index" / "vectors"
    hnsw = vec_dir / "hnsw.usearch"  # none below ANN_THRESHOLD papers (a run on a small --corpus)
    sizes = {"store_mib": round((CACHE / "paperradar.sqlite3").stat().st_size / 2**20, 1),
             "lexical_mib": round(dir_size(CACHE / "index" / "lexical") / 2**20, 1),
             "vectors_f16_mib": round((vec_dir / "vectors.npy").stat().st_size / 2**20, 1),
             "hnsw_mib": round(hnsw.stat().st_size / 2**20, 1) if hnsw.exists() else 0.0}
    per_paper = {k.replace("_mib", "_bytes_per_paper"): round(v * 2**20 / n) for k, v in sizes.items()}
    projection = {k.replace("_bytes_per_paper", "_gib"): round(v * ARXIV_SIZE / 2**30, 2)
                  for k, v in per_paper.items()}
    out = {
        "benchmark": "search_speed",
        "papers": n,
        "queries": len(queries),
        "query_kind": "2-4 consecutive title words of a random paper",
        "model": embedder.name,
        "builds": {**builds, "hnsw_build_s": hnsw_build_s, "fts5_build_s": round(fts_build, 1)},
        "embedding_throughput_2_cores": throughput,
        "latency": lat,
        "ratios": {
            "fts5_over_tantivy_p50": round(lat["lexical_sqlite_fts5"]["p50_ms"]
                                           / lat["lexical_tantivy"]["p50_ms"], 1),
            "exact_over_hnsw_p50": round(lat["dense_exact_numpy_search_only"]["p50_ms"]
                                         / lat["dense_hnsw_search_only"]["p50_ms"], 1),
        },
        "hnsw_recall_at_10_vs_exact": round(recall, 4),
        "memory": {**memory, "rss_bytes_per_paper": round(memory["index_rss_mib"] * 2**20 / n)},
        "disk": sizes,
        "disk_per_paper": per_paper,
        "projection_2_6M_papers_disk": projection,
        "targets": {"hybrid_p50_ms": 15, "hybrid_p99_ms": 50, "hnsw_recall_at_10": 0.98},
        "machine": describe(),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
