"""Which 2D layout for the map: neighbour preservation against time, on the 118,860-paper corpus.

    python bench/map_layouts.py [--methods pca,umap,tsne-sample,tsne] [--sample 40000]

For 1,000 random papers, the share of their 10 nearest neighbours by cosine (in the embedding) that are among
their 10 nearest on the map, and the seconds each layout takes, in one run:

- ``pca``: the first two principal components (numpy only);
- ``umap``: umap-learn (cosine, 15 neighbours) — not a dependency of paperradar: run this script with a
  Python that has umap-learn installed to include it (skipped otherwise);
- ``tsne``: openTSNE over every paper (cosine, perplexity 30, FFT gradients);
- ``tsne-sample``: what paperradar does (paperradar/topics.py ``layout``): openTSNE over a random sample,
  the other papers placed at the similarity-weighted mean of their 10 nearest laid-out neighbours.

Reads the embeddings of bench/.cache/speed (bench/search_speed.py builds them). Prints JSON; the committed
result is bench/results/map_layouts.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
from _machine import describe

from paperradar import topics

VECTORS = Path(__file__).resolve().parent / ".cache" / "speed" / "index" / "vectors" / "vectors.npy"


def knn_share(x: np.ndarray, y: np.ndarray, sample: np.ndarray, k: int = 10) -> float:
    shares = []
    for r in sample:
        s = x @ x[r]
        s[r] = -9
        hd = set(np.argpartition(-s, k)[:k].tolist())
        d = ((y - y[r]) ** 2).sum(1)
        d[r] = np.inf
        shares.append(len(hd & set(np.argpartition(d, k)[:k].tolist())) / k)
    return round(float(np.mean(shares)), 4)


def run(method: str, x: np.ndarray, sample_size: int) -> np.ndarray | None:
    if method == "pca":
        xc = x - x.mean(axis=0)
        rows = np.random.default_rng(0).choice(len(x), min(20_000, len(x)), replace=False)
        _, _, vt = np.linalg.svd(xc[rows], full_matrices=False)
        return xc @ vt[:2].T
    if method == "umap":
        try:
            import umap
        except ImportError:
            return None
        return umap.UMAP(n_neighbors=15, min_dist=0.1, metric="cosine", low_memory=True).fit_transform(x)
    if method == "tsne":
        return topics.tsne(x)
    if method == "tsne-sample":
        return topics.layout(x, sample=sample_size)
    raise SystemExit(f"unknown method {method}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="pca,umap,tsne-sample")
    ap.add_argument("--sample", type=int, default=topics.LAYOUT_SAMPLE)
    args = ap.parse_args()
    if not VECTORS.exists():
        print(json.dumps({"skipped": f"no embeddings at {VECTORS} (run bench/search_speed.py first)"}))
        return
    x = topics._normalised(np.load(VECTORS).astype(np.float32))
    probe = np.random.default_rng(0).choice(len(x), 1000, replace=False)
    out = {"benchmark": "map_layouts", "papers": len(x), "k": 10, "probe": 1000, "methods": {}}
    for method in args.methods.split(","):
        print(f"layout: {method}", file=sys.stderr)
        t = time.perf_counter()
        y = run(method, x, args.sample)
        seconds = time.perf_counter() - t
        if y is None:
            out["methods"][method] = {"skipped": "umap-learn is not installed here"}
            continue
        out["methods"][method] = {"seconds": round(seconds, 1), "knn10_preserved": knn_share(x, y, probe),
                                  **({"sample": args.sample} if method == "tsne-sample" else {})}
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    out["machine"] = describe()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
