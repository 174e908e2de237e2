"""Topics and the map at corpus scale: building them, their quality, and placing new papers.

    python bench/topics.py [--papers N]

Over the 118,860-paper corpus of bench/search_speed.py (its cache, bench/.cache/speed, with the vector
index already embedded), in one run:

- **build**: `paperradar index --rebuild topics` (k-means at two levels, labels, t-SNE layout): seconds per
  step and the process's peak memory;
- **quality**: agreement of the fine (and broad) topics with arXiv primary categories — normalised mutual
  information and purity — side by side with k-means on TF-IDF vectors of the same texts (same k), and the
  labels of 20 random fine topics;
- **layout**: the share of each paper's 10 nearest neighbours (cosine, in the embedding) that are among its
  10 nearest on the map, for 1,000 random papers;
- **placing 1,000 new papers**: 1,000 random papers taken off the map, then put back by `topics.update`
  (nearest topic + the mean of their nearest placed neighbours' positions): seconds, the share that joined
  the topic they had, how far from their t-SNE position they land (in map units; the map spans about 2), and
  the same neighbour share for them.

Prints JSON; the committed result is bench/results/topics.json.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path

import numpy as np
from _machine import describe
from map_layouts import knn_share

from paperradar import topics
from paperradar.search import SearchEngine
from paperradar.store import Store

CACHE = Path(__file__).resolve().parent / ".cache" / "speed"


def peak_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def nmi_purity(labels: np.ndarray, truth: np.ndarray) -> dict:
    from sklearn.metrics import normalized_mutual_info_score

    purity = 0
    for c in np.unique(labels):
        _, counts = np.unique(truth[labels == c], return_counts=True)
        purity += counts.max()
    return {"nmi": round(float(normalized_mutual_info_score(truth, labels)), 4),
            "purity": round(purity / len(labels), 4), "clusters": int(len(np.unique(labels)))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(CACHE), help="a data directory with an embedded vector index")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = Path(args.data)
    if not (data / "index" / "vectors" / "meta.json").exists():
        print(json.dumps({"skipped": f"no embedded corpus at {data} (run bench/search_speed.py first)"}))
        return
    store = Store(data / "paperradar.sqlite3")
    engine = SearchEngine(store, data / "index")
    out: dict = {"benchmark": "topics", "papers": len(engine.vectors)}

    # -- build ----------------------------------------------------------------------------------------
    t = time.perf_counter()
    built = engine.update_topics(rebuild=True, progress=lambda m: print(m, file=sys.stderr))
    out["build"] = {**built, "total_s": round(time.perf_counter() - t, 1), "peak_rss_mb": peak_mb()}
    index = engine.topics

    # -- quality --------------------------------------------------------------------------------------
    ids = np.asarray(index.ids)
    cats = {}
    for i in range(0, len(ids), 5000):
        for p in store.get_many(ids[i:i + 5000].tolist()):
            cats[p.id] = p.primary_category or "(none)"
    truth = np.array([cats.get(int(i), "(none)") for i in ids])
    fine = np.asarray(index.topic)
    quality = {"primary_categories": int(len(np.unique(truth))),
               "fine_topics": nmi_purity(fine, truth), "broad_topics": nmi_purity(index.broad_of(), truth)}
    print("quality: TF-IDF baseline", file=sys.stderr)
    t = time.perf_counter()
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = {}
    for i in range(0, len(ids), 5000):
        for p in store.get_many(ids[i:i + 5000].tolist()):
            texts[p.id] = f"{p.title}\n{p.abstract or ''}"
    tfidf = TfidfVectorizer(stop_words="english", min_df=3, max_df=0.5, sublinear_tf=True,
                            max_features=100_000)
    m = tfidf.fit_transform([texts[int(i)] for i in ids])
    for name, k in (("tfidf_kmeans_fine", index.meta["fine"]), ("tfidf_kmeans_broad", index.meta["broad"])):
        km = MiniBatchKMeans(n_clusters=k, random_state=args.seed, batch_size=4096, n_init=3)
        quality[name] = nmi_purity(km.fit_predict(m), truth)
    quality["tfidf_seconds"] = round(time.perf_counter() - t, 1)
    rng = random.Random(args.seed)
    fines = index.levels("fine")
    quality["labels_of_20_random_fine_topics"] = [
        {"id": t.id, "size": t.size, "label": t.label, "terms": t.terms[:6],
         "broad": index.get(t.parent).label if t.parent is not None else None}
        for t in sorted(rng.sample(fines, min(20, len(fines))), key=lambda t: t.id)]
    out["quality"] = quality

    # -- layout ---------------------------------------------------------------------------------------
    _, _, x = engine.vectors.everything()
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    xy = np.asarray(index.xy)
    sample = np.random.default_rng(args.seed).choice(len(ids), 1000, replace=False)
    out["layout"] = {"method": index.meta["layout"], "knn10_preserved": knn_share(x, xy, sample),
                     "seconds": built.get("layout_s")}

    # -- placing 1,000 new papers ---------------------------------------------------------------------
    directory = engine.index_dir / "topics"
    taken = np.sort(np.random.default_rng(args.seed + 1).choice(len(ids), 1000, replace=False))
    before = {"topic": fine[taken].copy(), "xy": xy[taken].copy()}
    keep = np.ones(len(ids), dtype=bool)
    keep[taken] = False
    arrays = {name: np.asarray(getattr(index, name))[keep] for name in topics.ARRAYS}
    old = topics._old(directory)
    topics._save(directory, arrays, index.meta, old["fine_c"], np.asarray(old["fine_ids"]), old["broad_c"],
                 np.asarray(old["broad_ids"]))
    t = time.perf_counter()
    done = topics.update(store, engine.vectors, directory)
    place_s = time.perf_counter() - t
    after = topics.TopicIndex(directory)
    rows = np.searchsorted(np.asarray(after.ids), ids[taken])
    moved = np.linalg.norm(np.asarray(after.xy)[rows] - before["xy"], axis=1)
    out["place_1000"] = {
        "seconds": round(place_s, 2), "placed": done["added"],
        "same_topic_share": round(float(np.mean(np.asarray(after.topic)[rows] == before["topic"])), 4),
        "distance_from_tsne_position_median": round(float(np.median(moved)), 4),
        "distance_p90": round(float(np.percentile(moved, 90)), 4),
        "knn10_preserved_placed": knn_share(x, np.asarray(after.xy), rows[:300]),
        "knn10_preserved_same_papers_in_tsne": knn_share(x, xy, taken[:300]),
    }
    out["machine"] = describe()
    engine.close()
    store.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
