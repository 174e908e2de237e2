"""Recommendation quality on the 119k corpus: the "For you" model against two baselines, with simulated users.

    .venv/bin/python bench/recommend.py [--users 500] [--dev-users 200] [--seed 7]
    .venv/bin/python bench/recommend.py > bench/results/recommend.json

A simulated user is an author with 8 to 60 papers in the corpus (more than 60 is mostly several people
sharing a common name). Their papers sorted by listing day, the cutoff is the day of the paper at 75% (at
least the 6th): the papers before it are the user's saved library, and the feed is asked for the month
that starts at the cutoff — the candidate pool is every corpus paper listed in [cutoff, cutoff + 30 days),
and the relevant ones are the author's own papers in it (what they went on to write is what they would
have wanted to read). Users with fewer than 5 saved papers or nothing relevant in that month are skipped.

Ranked over the same pool, top 10 scored with precision@10 and nDCG@10 (binary relevance):
- feed: paperradar.recommend — the logistic-regression model trained on the saved papers against the
  product's 1,000 random negatives plus the soft maximum of similarities to the saved papers, its top 200
  re-ranked with the user's profile terms (Recommender.train and Recommender.rank, the code the web app
  runs).
- related_baseline: the papers most similar (cosine) to the last saved paper ("related papers").
- recent_baseline: the newest papers in the user's categories (the primary categories of their saved
  papers), newest first.
- centroid, knn (informative): cosine to the mean of the saved papers; the highest cosine to any one.

Also timed: Recommender.feed end to end, as a /for-you page view runs it, for 30 of the test users made
in a temporary copy of the store (first view: trains and caches the model; next views reuse it).

The model's settings (L2, the weight of the profile terms in the re-ranking) were chosen on separate dev
users (another seed's draw, disjoint from the test users); the dev sweeps are reported beside the test
figures, which use the product's settings. Prints JSON; the committed result is
bench/results/recommend.json. Uses the store and indexes that bench/search_speed.py built in
bench/.cache/speed/ (run that first).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from _machine import describe

from paperradar import recommend
from paperradar.recommend import Recommender
from paperradar.search import SearchEngine
from paperradar.store import Store

CACHE = Path(__file__).resolve().parent / ".cache" / "speed"
K = 10
WINDOW_DAYS = 30


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ndcg(ranked: list[int], relevant: set[int], k: int = K) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, pid in enumerate(ranked[:k]) if pid in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0


def precision(ranked: list[int], relevant: set[int], k: int = K) -> float:
    return sum(1 for pid in ranked[:k] if pid in relevant) / k


def load_papers(store: Store) -> dict[int, tuple[str, str, list[str]]]:
    """paper id -> (listing day, primary category, authors), straight from the store's file."""
    out = {}
    for pid, day, cat, authors in store._r.execute(
            "SELECT id, substr(coalesce(announced, submitted), 1, 10), primary_category, authors "
            "FROM papers"):
        if day:
            out[pid] = (day, cat or "", json.loads(authors))
    return out


def simulated_users(papers: dict, n: int, seed: int, exclude: set[str] = frozenset()) -> list[dict]:
    by_author: dict[str, list[int]] = defaultdict(list)
    for pid, (_, _, authors) in papers.items():
        for a in authors:
            by_author[a].append(pid)
    names = sorted(a for a, ids in by_author.items() if 8 <= len(ids) <= 60 and a not in exclude)
    random.Random(seed).shuffle(names)
    users = []
    for name in names:
        ids = sorted(by_author[name], key=lambda pid: (papers[pid][0], pid))
        cut = papers[ids[max(5, int(0.75 * len(ids)))]][0]
        end = (dt.date.fromisoformat(cut) + dt.timedelta(days=WINDOW_DAYS)).isoformat()
        saved = [pid for pid in ids if papers[pid][0] < cut]
        relevant = {pid for pid in ids if cut <= papers[pid][0] < end}
        if len(saved) >= 5 and relevant:
            users.append({"name": name, "saved": saved, "relevant": relevant, "cut": cut, "end": end})
        if len(users) == n:
            break
    return users


class Pools:
    """The candidate pool (ids and vectors) of a [cut, end) window, cached: users share windows."""

    def __init__(self, papers: dict, vectors):
        self.vectors = vectors
        self.days = sorted((day, pid) for pid, (day, _, _) in papers.items())
        self.keys = [d for d, _ in self.days]
        self.cache: dict[tuple[str, str], tuple[list[int], np.ndarray]] = {}

    def get(self, cut: str, end: str) -> tuple[list[int], np.ndarray]:
        if (cut, end) not in self.cache:
            import bisect

            lo, hi = bisect.bisect_left(self.keys, cut), bisect.bisect_left(self.keys, end)
            if len(self.cache) > 64:
                self.cache.clear()
            self.cache[(cut, end)] = self.vectors.rows([pid for _, pid in self.days[lo:hi]])
        return self.cache[(cut, end)]


def top(ids: list[int], scores: np.ndarray, exclude: set[int], k: int = K) -> list[int]:
    order = np.argsort(-scores, kind="stable")
    out = []
    for i in order:
        if ids[i] not in exclude:
            out.append(ids[i])
            if len(out) == k:
                break
    return out


def evaluate(users: list[dict], rec: Recommender, papers: dict, pools: Pools, l2: float,
             term_weight: float, baselines: bool) -> dict:
    metrics: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"ndcg@10": [], "precision@10": []})
    times = []
    vectors = rec.engine.vectors
    for n, u in enumerate(users, 1):
        ids, x = pools.get(u["cut"], u["end"])
        saved = set(u["saved"])
        t = time.perf_counter()
        model = rec.train(u["saved"], [], seed=n, l2=l2)
        ranked = {"feed": [pid for pid, _ in rec.rank(model, ids, x, term_weight) if pid not in saved][:K]}
        times.append(time.perf_counter() - t)
        if baselines:
            _, s = vectors.rows(u["saved"])
            last = vectors.vector(u["saved"][-1])
            ranked["related_baseline"] = top(ids, x @ last, saved)
            cats = {papers[pid][1] for pid in u["saved"]}
            recent = sorted((pid for pid in ids if papers[pid][1] in cats and pid not in saved),
                            key=lambda pid: (papers[pid][0], pid), reverse=True)
            ranked["recent_baseline"] = recent[:K]
            centroid = s.mean(axis=0)
            ranked["centroid"] = top(ids, x @ (centroid / np.linalg.norm(centroid)), saved)
            ranked["knn"] = top(ids, (x @ s.T).max(axis=1), saved)
        for name, r in ranked.items():
            metrics[name]["ndcg@10"].append(ndcg(r, u["relevant"]))
            metrics[name]["precision@10"].append(precision(r, u["relevant"]))
        if n % 100 == 0:
            log(f"  {n}/{len(users)} users")
    out = {name: {k: round(statistics.fmean(v), 4) for k, v in m.items()} for name, m in metrics.items()}
    if baselines:  # paired bootstrap: how sure is "the feed beats the baseline"?
        rng = np.random.default_rng(0)
        feed = np.array(metrics["feed"]["ndcg@10"])
        for name in ("related_baseline", "recent_baseline"):
            diff = feed - np.array(metrics[name]["ndcg@10"])
            boot = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(2000)]
            out[name]["feed_minus_this_ndcg@10_95ci"] = [round(float(np.percentile(boot, q)), 4)
                                                         for q in (2.5, 97.5)]
    out["_train_and_score_ms_median"] = round(1000 * statistics.median(times), 1)
    return out


def feed_latency(users: list[dict], engine_index: Path) -> dict:
    """Recommender.feed end to end (what a /for-you page view runs) for users made in a copy of the store:
    the first view trains and caches the model, the next ones reuse it."""
    tmp = Path(tempfile.mkdtemp(prefix="paperradar-recommend-bench-"))
    try:
        source = sqlite3.connect(f"file:{CACHE / 'paperradar.sqlite3'}?mode=ro", uri=True)
        target = sqlite3.connect(tmp / "paperradar.sqlite3")
        with target:
            source.backup(target)
        source.close()
        target.close()
        store = Store(tmp / "paperradar.sqlite3")
        rec = Recommender(store, SearchEngine(store, engine_index))
        times: dict[str, list[float]] = defaultdict(list)
        for n, u in enumerate(users):
            user = store.accounts.ensure_user(f"user{n}@bench.invalid", "2026-01-01T00:00:00Z")
            store.accounts.save_many(user.id, "library", u["saved"], "2026-01-01T00:00:00Z")
            user = store.accounts.user(user.id)
            for label, window in (("first_view_month", "month"), ("next_view_month", "month"),
                                  ("next_view_all", "all")):
                t = time.perf_counter()
                feed = rec.feed(user, filters=recommend.FeedFilters(window=window), limit=30)
                times[label].append(1000 * (time.perf_counter() - t))
                assert feed.mode == "model" and feed.items
        store.close()
        return {"users": len(users), **{f"{k}_ms_median": round(statistics.median(v), 1)
                                        for k, v in times.items()},
                "note": "first view: train + cache the model + rank; next views: the cached model"}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ratios(a: dict, b: dict) -> dict:
    """a / b per metric (None where b is 0)."""
    return {k: round(a[k] / b[k], 2) if b[k] else None for k in ("ndcg@10", "precision@10")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--dev-users", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--l2", type=float, nargs="*", default=[0.03, 0.1, 0.3])
    ap.add_argument("--term-weight", type=float, nargs="*", default=[0.0, 0.5, 1.0, 1.5])
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")  # as the web app runs it (one BLAS thread per request)
    if not (CACHE / "index" / "vectors" / "meta.json").exists():
        sys.exit(f"no indexed 119k store in {CACHE}: run bench/search_speed.py first")
    store = Store(CACHE / "paperradar.sqlite3")
    engine = SearchEngine(store, CACHE / "index")
    rec = Recommender(store, engine)
    t0 = time.perf_counter()
    papers = load_papers(store)
    pools = Pools(papers, engine.vectors)
    dev = simulated_users(papers, args.dev_users, seed=args.seed + 1000)
    test = simulated_users(papers, args.users, seed=args.seed, exclude={u["name"] for u in dev})
    log(f"{len(papers):,} papers; {len(dev)} dev users, {len(test)} test users")
    # The product's settings were chosen on the dev users; the sweeps show them beside their neighbours.
    sweep = {"l2": {}, "term_weight": {}}
    for l2 in args.l2:
        sweep["l2"][str(l2)] = evaluate(dev, rec, papers, pools, l2, recommend.TERM_WEIGHT, False)["feed"]
        log(f"dev l2={l2}: {sweep['l2'][str(l2)]}")
    for weight in args.term_weight:
        found = evaluate(dev, rec, papers, pools, recommend.L2, weight, False)
        sweep["term_weight"][str(weight)] = found["feed"]
        log(f"dev term weight={weight}: {sweep['term_weight'][str(weight)]}")
    result = evaluate(test, rec, papers, pools, recommend.L2, recommend.TERM_WEIGHT, baselines=True)
    latency = feed_latency(test[:30], CACHE / "index")
    log(f"feed latency: {latency}")
    pool_sizes = [len(pools.get(u["cut"], u["end"])[0]) for u in test[:50]]
    out = {
        "benchmark": "recommend",
        "corpus": f"{len(papers):,} papers (bench/.cache/speed, the 119k arXiv corpus)",
        "simulated_users": len(test),
        "dev_users": len(dev),
        "user": "an author with 8-60 papers; saved = papers before the cutoff (the paper at 75%), relevant "
                f"= their papers in the {WINDOW_DAYS} days from the cutoff, pool = every paper listed then",
        "mean_relevant_per_user": round(statistics.fmean(len(u["relevant"]) for u in test), 2),
        "mean_saved_per_user": round(statistics.fmean(len(u["saved"]) for u in test), 2),
        "median_pool_size": statistics.median(pool_sizes) if pool_sizes else 0,
        "feed": result["feed"],
        "related_baseline": result["related_baseline"],
        "recent_baseline": result["recent_baseline"],
        "other": {"centroid": result["centroid"], "knn": result["knn"]},
        "model": {"l2": recommend.L2, "term_weight": recommend.TERM_WEIGHT, "rerank": recommend.RERANK,
                  "negatives": recommend.NEGATIVES, "newton_steps": recommend.NEWTON_STEPS,
                  "dev_sweeps": sweep},
        "feed_vs_related": ratios(result["feed"], result["related_baseline"]),
        "feed_vs_recent": ratios(result["feed"], result["recent_baseline"]),
        "train_and_score_ms_median": result["_train_and_score_ms_median"],
        "feed_page": latency,
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": describe(),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
