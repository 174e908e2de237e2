"""Suggestions while typing at 119k papers: build time, memory, and the latency of 1,000 realistic prefixes
(the first 1-12 characters of real titles and author names) through the core and through the HTTP endpoint
(the real app, through the test client). Target: p99 <= 20 ms. Prints JSON.

The store is bench/.cache/speed/paperradar.sqlite3 where search_speed.py left one, else it is ingested
from the 119k corpus into bench/.cache/suggest/. Skips (prints a reason, exits 0) without the corpus.

    PYTHONPATH=. .venv/bin/python bench/suggest_speed.py [--save]
"""

from __future__ import annotations

import json
import random
import resource
import statistics
import sys
import time
from pathlib import Path

from _machine import describe

from paperradar.store import Store
from paperradar.suggest import KINDS, Suggester

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parents[1] / "shared" / "data" / "corpus" / "arxiv-119k.jsonl.gz"
SHARED_STORE = HERE / ".cache" / "speed" / "paperradar.sqlite3"
OWN = HERE / ".cache" / "suggest"
ARXIV_SIZE = 2_600_000
N_QUERIES = 1_000


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def pct(times: list[float]) -> dict:
    return {"p50_ms": round(statistics.median(times), 3),
            "p99_ms": round(statistics.quantiles(times, n=100)[98], 3),
            "max_ms": round(max(times), 3)}


def open_store() -> Store:
    if SHARED_STORE.exists():
        store = Store(SHARED_STORE)
        if store.count() >= 100_000:
            return store
        store.close()
    from paperradar.ingest import ingest
    from paperradar.sources.jsonl import JSONLSource

    OWN.mkdir(parents=True, exist_ok=True)
    store = Store(OWN / "paperradar.sqlite3")
    if store.count() < 100_000:
        log("ingesting the 119k corpus (once)")
        ingest(store, JSONLSource(str(CORPUS)))
    return store


def prefixes(store: Store, n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    sample = store.changed_since(0, limit=20_000)
    out = []
    while len(out) < n:
        p = rng.choice(sample)
        text = p.title if rng.random() < 0.6 or not p.authors else rng.choice(p.authors)
        out.append(text[:rng.randint(1, 12)])
    return out


def main() -> dict:
    if not CORPUS.exists() and not SHARED_STORE.exists():
        return {"skipped": f"no corpus at {CORPUS}"}
    store = open_store()
    papers = store.count()
    rss0 = rss_mib()
    t0 = time.perf_counter()
    saved = store.path.parent / "index" / "suggest"  # where the web app looks for it
    sg = Suggester(store, directory=saved)
    sg.rebuild()  # builds and saves
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    loaded = Suggester(store, directory=saved)
    assert loaded.load()
    load_s = time.perf_counter() - t0
    rss_built = rss_mib()
    held = sg.memory()
    base = sg._state[0]
    counts = {k: int((base.kinds == i).sum()) for i, k in enumerate(KINDS)}
    qs = prefixes(store, N_QUERIES)
    for q in qs[:50]:
        sg.suggest(q)  # warm up
    core = []
    empty = 0
    for q in qs:
        t = time.perf_counter()
        got = sg.suggest(q, 8)
        core.append((time.perf_counter() - t) * 1000)
        empty += not got
    t0 = time.perf_counter()
    caught = sg.catch_up()
    catch_up_ms = (time.perf_counter() - t0) * 1000
    core_loaded = []  # the same queries on the loaded, memory-mapped base (cold pages first)
    for q in qs:
        t = time.perf_counter()
        got = loaded.suggest(q, 8)
        core_loaded.append((time.perf_counter() - t) * 1000)

    from fastapi.testclient import TestClient

    from paperradar.web.app import create_app

    app = create_app(store.path.parent, env={"PAPERRADAR_RATE_LIMIT": "0"}, warm=False, catch_up=False)
    http = []
    with TestClient(app) as client:
        t0 = time.perf_counter()
        first = client.get("/api/v1/suggest", params={"q": "a"})  # loads the saved base
        first_ms = (time.perf_counter() - t0) * 1000
        first_ready = first.headers.get("x-suggest-ready") == "1"
        deadline = time.time() + 600
        while client.get("/api/v1/suggest", params={"q": "a"}).headers.get("x-suggest-ready") != "1":
            if time.time() > deadline:
                raise SystemExit("the app's suggestion index was not ready in 10 minutes")
            time.sleep(1)
        for q in qs:
            t = time.perf_counter()
            r = client.get("/api/v1/suggest", params={"q": q, "limit": 8})
            http.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, r.text
    scale = ARXIV_SIZE / papers
    return {
        "papers": papers,
        "entries": len(sg), "entries_by_kind": counts,
        "build_s": round(build_s, 1),
        "saved_mib": round(sum(f.stat().st_size for f in saved.iterdir()) / 2**20, 1),
        "load_s": round(load_s, 3),
        "app_first_request_ms": round(first_ms, 1), "app_first_request_ready": first_ready,
        "process_rss_growth_mib": round(rss_built - rss0, 1),
        "process_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "index_mib": round(held / 2**20, 1),
        "index_mib_projected_2_6m": round(held * scale / 2**20, 0),
        "build_s_projected_2_6m": round(build_s * scale, 0),
        "catch_up_nothing_new_ms": round(catch_up_ms, 2), "caught_up": caught,
        "queries": N_QUERIES, "queries_without_suggestion": empty,
        "core_latency": pct(core), "core_latency_loaded_base": pct(core_loaded),
        "http_latency_testclient": pct(http),
        "target_p99_ms": 20,
        "machine": describe(),
    }


if __name__ == "__main__":
    result = main()
    print(json.dumps(result, indent=2))
    if "--save" in sys.argv:
        (HERE / "results" / "suggest_speed.json").write_text(json.dumps(result, indent=2) + "\n")
