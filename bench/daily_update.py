"""A daily update of the vector index at 119k and at 1M papers: 1,000 new papers and 5,000 upvote-only
changes, applied three ways side by side in one run, with query latency while it runs.

    PYTHONPATH=. python bench/daily_update.py [--sizes 119k,1m] [--repeats 3] [--build]

(PYTHONPATH=.: the working tree's paperradar, not a copy installed in the environment.)

Bases: at 119k, the real arXiv index that bench/search_speed.py cached in bench/.cache/speed/ (real
embeddings and the HNSW graph built over them), and 1,000 real abstracts of the store embedded as the new
papers; at 1M, random unit float16 vectors (dim 384) and a graph built over them once, cached in
bench/.cache/daily_update/ (``--build`` builds it when absent: ~35 min on 2 cores; the build time is
recorded there and reported). Random vectors are the hard case for HNSW (no clusters): the graph figures
are an upper bound for real papers. A size whose cache is absent is skipped.

Each update starts from the same saved index (format 2, nothing added yet) and does what
SearchEngine._update_vectors does outside embedding: a copy of the index in use, the text-hash lookup of
the 6,000 changed papers (the 5,000 upvoted ones match and are not embedded), ``add`` of the 1,000 new
vectors by chunks of 256, a save every 4,096 changes and a last one, and the reopen of the saved index.
Reading the 6,000 changed papers from the store and hashing their text is timed apart, at 119k
(``store_read_and_hash_6000_s``: the store is not part of the vector index, and has no 1M copy). Side by side:
- ``now``: this code (the new rows go to the added segment; base arrays and graph are hard-linked);
- ``previous``: the code before the added segment (git commit PREVIOUS, loaded from git): every array
  written again, the memory-mapped graph copied whole, updated in place and saved whole, and the whole
  index hashed again at reload;
- ``rewrite_and_rebuild``: the arrays written again and the graph built from scratch over every row
  (at 1M: the build time measured when the cache was built, by the same function, on this machine).
Also the fold: the save at which the added rows outgrow their limit (2% of the base) and are merged into
the base and the graph (every 20 days at 1M with 1,000 new a day). Query latency (vector search, k=100,
p50/p95) is measured from a thread searching the index in use, idle and while each update runs.
Prints JSON; the committed result is bench/results/daily_update.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _machine import describe

from paperradar import vectors as current
from paperradar.search import EMBED_CHUNK as CHUNK
from paperradar.search import SAVE_EVERY
from paperradar.vectors import EXPANSION_SEARCH, _sha256, _usearch

HERE = Path(__file__).resolve().parent
SPEED = HERE / ".cache" / "speed"
CACHE = HERE / ".cache" / "daily_update"
PREVIOUS = "ea4fee1"  # the last commit whose vector index rewrote every array at each save
DIM = 384
MODEL = "bench-model"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def random_unit(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), dtype=np.float16)
    for i in range(0, n, 100_000):
        m = rng.standard_normal((min(100_000, n - i), DIM), dtype=np.float32)
        m /= np.linalg.norm(m, axis=1, keepdims=True)
        out[i:i + len(m)] = m
    return out


def build_graph(ids: np.ndarray, f16: np.ndarray):
    """A graph as VectorIndex._build_ann builds it (same parameters), timed."""
    index = _usearch()(ndim=DIM, metric="ip", dtype="f16", connectivity=16, expansion_add=128,
                       expansion_search=EXPANSION_SEARCH)
    t = time.perf_counter()
    index.add(ids, np.asarray(f16, dtype=np.float32), threads=os.cpu_count() or 1)
    return index, time.perf_counter() - t


def random_base(n: int, build: bool) -> Path | None:
    d = CACHE / f"random-{n}"
    if (d / "build.json").exists():
        return d
    if not build:
        return None
    d.mkdir(parents=True, exist_ok=True)
    f16 = random_unit(n, 1)
    ids = np.arange(1, n + 1, dtype=np.int64)
    np.save(d / "vectors.npy", f16)
    np.save(d / "ids.npy", ids)
    log(f"building the HNSW graph over {n} random vectors (cached in {d})")
    graph, build_s = build_graph(ids, f16)
    graph.save(str(d / "hnsw.usearch"))
    (d / "build.json").write_text(json.dumps({"n": n, "build_s": round(build_s, 1), "seed": 1,
                                              "threads": os.cpu_count()}))
    return d


def load_previous():
    """paperradar/vectors.py as of PREVIOUS, imported beside the current one."""
    src = subprocess.run(["git", "show", f"{PREVIOUS}:paperradar/vectors.py"], cwd=HERE.parent,
                         capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp(prefix="paperradar-prev-")) / "vectors_previous.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("paperradar.vectors_previous", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class Base:
    """A saved index to start each update from: files linked from the cache, meta.json written."""

    def __init__(self, src: Path, work: Path, n: int):
        self.src, self.work, self.n = src, work, n
        ids = np.load(src / "ids.npy", mmap_mode="r")
        assert len(ids) == n, (len(ids), n)
        rng = np.random.default_rng(3)
        texts = work / "texts.npy"
        np.save(texts, rng.integers(1, 2**63, n, dtype=np.uint64))
        self.files = {"vectors.npy": src / "vectors.npy", "ids.npy": src / "ids.npy", "texts.npy": texts,
                      "hnsw.usearch": src / "hnsw.usearch"}
        self.sums = {name: _sha256(p) for name, p in self.files.items()}
        self.ids = np.array(ids)
        self.texts = np.load(texts)

    def make(self, fmt: int) -> Path:
        d = self.work / f"v{fmt}"
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(d.with_name(d.name + ".new"), ignore_errors=True)
        d.mkdir()
        for name, p in self.files.items():
            link_or_copy(p, d / name)
        meta = {"format": fmt, "model": MODEL, "dim": DIM, "count": self.n, "last_seq": 1, "ann": True,
                "dtype": "float16", "sha256": self.sums}
        if fmt == 2:
            meta |= {"base": self.n, "added": 0}
        (d / "meta.json").write_text(json.dumps(meta))
        return d


class Prober:
    """Searches the index in use from another thread, recording each latency."""

    def __init__(self, index, queries: np.ndarray):
        self.index, self.queries, self.ms, self.stop = index, queries, [], threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            t = time.perf_counter()
            self.index.search(self.queries[i % len(self.queries)], k=100)
            self.ms.append((time.perf_counter() - t) * 1000)
            i += 1
            time.sleep(0.005)  # a steady stream of queries, not a saturating one

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def pct(ms: list[float]) -> dict:
    if not ms:
        return {"queries": 0}
    a = np.array(ms)
    return {"queries": len(ms), "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p95_ms": round(float(np.percentile(a, 95)), 2), "max_ms": round(float(a.max()), 1)}


def daily_update(module, d: Path, base: Base, new_ids, new_vecs, upvoted, known, queries, threshold):
    """One daily update as the engine applies it, outside embedding: (seconds by step, save report,
    latencies while it ran)."""
    in_use = module.VectorIndex(d, MODEL, DIM, ann_threshold=threshold)
    new_texts = np.arange(1, len(new_ids) + 1, dtype=np.uint64)
    # In change order as the store lists them: the day's arXiv papers, then the Hugging Face upvotes.
    changed = np.concatenate([new_ids, upvoted])
    steps, reports = {"copy_s": 0.0, "lookup_and_add_s": 0.0, "saves_s": 0.0}, []
    with Prober(in_use, queries) as probe:
        time.sleep(0.3)
        t0 = t = time.perf_counter()
        work = in_use.copy()
        steps["copy_s"] = time.perf_counter() - t
        embedded = 0
        for b in range(0, len(changed), SAVE_EVERY):
            t = time.perf_counter()
            batch = changed[b:b + SAVE_EVERY]
            for i in range(0, len(batch), CHUNK):
                chunk = batch[i:i + CHUNK].tolist()
                had = work.text_hashes(chunk)
                todo = [j for j, pid in enumerate(chunk) if known.get(pid, -1) != had[j]]
                if todo:
                    at = np.searchsorted(new_ids, [chunk[j] for j in todo])
                    work.add(new_ids[at], new_vecs[at], new_texts[at])
                    embedded += len(todo)
            steps["lookup_and_add_s"] += time.perf_counter() - t
            t = time.perf_counter()
            reports.append(work.save(last_seq=2 + b))  # the resume point after each batch
            steps["saves_s"] += time.perf_counter() - t
        t = time.perf_counter()
        reports.append(work.save(last_seq=2 + len(changed), ann=True))
        steps["saves_s"] += time.perf_counter() - t
        t = time.perf_counter()
        reopened = work.reopen() if hasattr(work, "reopen") else module.VectorIndex(d, MODEL, DIM,
                                                                                   ann_threshold=threshold)
        steps["reopen_s"] = time.perf_counter() - t
        steps["total_s"] = time.perf_counter() - t0
    report = reports
    assert embedded == len(new_ids), embedded
    assert len(reopened) == base.n + len(new_ids)
    assert reopened.search(new_vecs[7], k=1)[0][0] == new_ids[7]
    return {k: round(v, 3) for k, v in steps.items()}, report, probe.ms


def median_steps(runs: list[dict]) -> dict:
    return {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}


def idle_latency(module, d: Path, queries, threshold) -> list[float]:
    index = module.VectorIndex(d, MODEL, DIM, ann_threshold=threshold)
    with Prober(index, queries) as probe:
        time.sleep(5)
    return probe.ms


def run_size(label: str, src: Path, n: int, new_ids, new_vecs, queries, args, previous, build_s,
             build_note) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"paperradar-daily-{label}-"))
    try:
        base = Base(src, work, n)
        rng = np.random.default_rng(5)
        picked = rng.choice(n, args.upvoted, replace=False)
        upvoted = base.ids[picked]
        known = dict(zip(upvoted.tolist(), base.texts[picked].tolist(), strict=True))
        threshold = current.ANN_THRESHOLD
        out: dict = {"papers": n, "new": len(new_ids), "upvote_only": len(upvoted)}
        d2 = base.make(2)
        log(f"{label}: idle query latency")
        idle = idle_latency(current, d2, queries, threshold)
        out["query_latency_idle"] = pct(idle)
        for name, module, fmt in (("now", current, 2), ("previous", previous, 1)):
            runs, reports, during = [], [], []
            for r in range(args.repeats):
                log(f"{label}: daily update, {name} code, run {r + 1}/{args.repeats}")
                d = base.make(fmt)
                steps, report, ms = daily_update(module, d, base, new_ids, new_vecs, upvoted, known, queries,
                                                 threshold)
                runs.append(steps)
                reports.append(report)
                during += ms
            out[name] = {"median": median_steps(runs), "runs": runs, "save_reports": reports,
                         "query_latency_during_update": pct(during)}
        log(f"{label}: rewrite-and-rebuild")
        f16 = np.load(src / "vectors.npy", mmap_mode="r")
        t = time.perf_counter()
        all_f16 = np.concatenate([f16, new_vecs.astype(np.float16)])
        all_ids = np.concatenate([base.ids, new_ids])
        for name, a in (("vectors.npy", all_f16), ("ids.npy", all_ids),
                        ("texts.npy", np.zeros(len(all_ids), np.uint64))):
            p = work / f"rewrite-{name}"
            current._write(p, lambda f, a=a: np.save(f, a))
            _sha256(p)
        rewrite_s = time.perf_counter() - t
        if build_s is None:
            probe_index = current.VectorIndex(base.make(2), MODEL, DIM)
            with Prober(probe_index, queries) as probe:
                _, build_s = build_graph(all_ids, all_f16)
            out["rewrite_and_rebuild_query_latency_during_build"] = pct(probe.ms)
        out["rewrite_and_rebuild"] = {"arrays_s": round(rewrite_s, 2), "graph_build_s": round(build_s, 1),
                                      "total_s": round(rewrite_s + build_s, 1),
                                      "graph_build_measured": build_note}
        log(f"{label}: a fold (the added rows just over their limit)")
        d = base.make(2)
        index = current.VectorIndex(d, MODEL, DIM)
        limit = index.added_limit()
        extra = np.arange(n + 10_000_000, n + 10_000_000 + limit + 1, dtype=np.int64)
        fold_vecs = random_unit(len(extra), 11)  # the vectors do not matter to what a fold costs
        index.add(extra, fold_vecs)
        with Prober(current.VectorIndex(d, MODEL, DIM), queries) as probe:
            t = time.perf_counter()
            report = index.save(last_seq=3, ann=True)
            fold_s = time.perf_counter() - t
        out["fold"] = {"added_rows": len(extra), "save_s": round(fold_s, 2), "save_report": report,
                       "every_days_at_1000_new_a_day": round(len(extra) / 1000, 1),
                       "query_latency_during_fold": pct(probe.ms)}
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def embed_new(n_new: int):
    """1,000 abstracts of the 119k store embedded with the real model, as bench/index_update.py does:
    (vectors, seconds, max_length)."""
    from paperradar.embed import Embedder
    from paperradar.search import paper_text
    from paperradar.store import Store
    from paperradar.vectors import text_hash

    max_length = json.loads((SPEED / "builds.json").read_text()).get("vectors_max_length", 128)
    embedder = Embedder.load(SPEED / "models", max_length=max_length)
    store = Store(SPEED / "paperradar.sqlite3")
    rng = np.random.default_rng(9)
    total = store.count()
    papers = store.get_many(rng.choice(np.arange(1, total + 1), n_new, replace=False).tolist())
    t = time.perf_counter()
    seq = store.max_seq() - 6000
    read = store.changed_since(seq, limit=6000)
    [text_hash(paper_text(p)) for p in read]
    read_s = round(time.perf_counter() - t, 3)
    assert len(read) == 6000
    store.close()
    texts = [paper_text(p) for p in papers]
    embedder.encode(["warm up"])
    t = time.perf_counter()
    vecs = np.concatenate([embedder.encode(texts[i:i + CHUNK]) for i in range(0, len(texts), CHUNK)])
    return vecs, round(time.perf_counter() - t, 2), max_length, embedder.name, read_s


def summary(out: dict) -> dict:
    """Per size: the non-embedding seconds of a daily update each way, against the 5 s target, and
    query latency idle and during it."""
    rows = {}
    for label, r in out["sizes"].items():
        if "now" not in r:
            continue
        rows[label] = {
            "non_embedding_update_s": {"now": r["now"]["median"]["total_s"],
                                       "previous": r["previous"]["median"]["total_s"],
                                       "rewrite_and_rebuild": r["rewrite_and_rebuild"]["total_s"]},
            "target_5s_met_now": r["now"]["median"]["total_s"] <= 5.0,
            "fold_s_every_days": [r["fold"]["save_s"], r["fold"]["every_days_at_1000_new_a_day"]],
            "query_p50_p95_ms": {
                "idle": [r["query_latency_idle"].get("p50_ms"), r["query_latency_idle"].get("p95_ms")],
                "during_update_now": [r["now"]["query_latency_during_update"].get(k)
                                      for k in ("p50_ms", "p95_ms")],
                "during_update_previous": [r["previous"]["query_latency_during_update"].get(k)
                                           for k in ("p50_ms", "p95_ms")],
                "during_fold": [r["fold"]["query_latency_during_fold"].get(k) for k in ("p50_ms", "p95_ms")]},
            "embedding_1000_new_s": out.get("embedding_1000_new_s"),
        }
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="119k,1m")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--new", type=int, default=1000)
    ap.add_argument("--upvoted", type=int, default=5000)
    ap.add_argument("--build", action="store_true", help="build the 1M random base when absent")
    args = ap.parse_args()
    if not hasattr(current.VectorIndex, "reopen"):
        sys.exit(f"this paperradar ({current.__file__}) predates the added segment: run with PYTHONPATH=.")
    out: dict = {"benchmark": "daily_update", "dim": DIM, "repeats": args.repeats, "sizes": {}}
    previous = load_previous()
    have_speed = (SPEED / "index" / "vectors" / "meta.json").exists()
    if have_speed:
        log("embedding the new papers with the real model")
        real_new, embed_s, max_length, model, read_s = embed_new(args.new)
        out["embedding_1000_new_s"] = embed_s
        out["store_read_and_hash_6000_s"] = read_s
        out["embedding"] = {"model": model, "max_length": max_length, "papers": args.new}
    for label in args.sizes.split(","):
        if label == "119k":
            if not have_speed:
                out["sizes"][label] = {"skipped": f"no cached index in {SPEED}: run bench/search_speed.py"}
                continue
            src = SPEED / "index" / "vectors"
            n = int(json.loads((src / "meta.json").read_text())["count"])
            new_vecs, qseed = real_new.astype(np.float16), 21
            base_note = "real arXiv embeddings (bench/.cache/speed), 1,000 real abstracts embedded as new"
            build_s, build_note = None, "in this run, with the updates"
        else:
            n = {"1m": 1_000_000}.get(label) or int(label)
            src = random_base(n, args.build)
            if src is None:
                out["sizes"][label] = {"skipped": f"no cached random base in {CACHE}: run with --build"}
                continue
            new_vecs, qseed = random_unit(args.new, 2), 22
            base_note = "random unit float16 vectors (seed 1); new ones random too"
            cached = json.loads((src / "build.json").read_text())
            build_s = cached["build_s"]
            build_note = (f"once, when the cached base was built ({cached['n']} rows, same parameters, this "
                          f"machine, {cached['threads']} threads), not again in this run: ~35 min")
        new_ids = np.arange(n + 1, n + 1 + args.new, dtype=np.int64)  # ids above the base's
        ids = np.load(src / "ids.npy", mmap_mode="r")
        assert ids.max() < new_ids[0]
        f16 = np.load(src / "vectors.npy", mmap_mode="r")
        rng = np.random.default_rng(qseed)
        queries = np.asarray(f16[np.sort(rng.choice(n, 200, replace=False))], dtype=np.float32)
        res = run_size(label, src, n, new_ids, new_vecs.astype(np.float32), queries, args, previous,
                       build_s, build_note)
        res["base"] = base_note
        out["sizes"][label] = res
    out["summary"] = summary(out)
    out["previous_code"] = f"paperradar/vectors.py at {PREVIOUS}"
    out["query"] = "vector search k=100 of a base row's own vector, from a thread, one every ~5 ms"
    out["machine"] = describe()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
