"""What passage embeddings would cost the index: embedding time of whole papers and of their passages
(bench/eval_variants.py's sentence pairs and tails), on the same papers, one after the other.

    python bench/eval_passage_cost.py [--papers 300]

Samples papers (seed 7) from the SciFact store of bench/eval_scifact.py and from the 119k arXiv store of
bench/search_speed.py, where present. Prints JSON; the committed result is
bench/results/eval_passage_cost.json.
"""

from __future__ import annotations

import argparse
import json
import random
import time

from _machine import describe
from eval_scifact import CACHE as SCIFACT
from eval_variants import passages, tail
from search_speed import CACHE as SPEED

from paperradar.embed import Embedder
from paperradar.search import paper_text
from paperradar.store import Store


def cost(papers, embedder) -> dict:
    kinds = {"whole paper": [paper_text(p) for p in papers],
             "tail past 256 tokens": [t for p in papers if (t := tail(p, embedder))],
             "sentence pairs": [x for p in papers for x in passages(p, embedder, 2)]}
    out = {}
    for name, texts in kinds.items():
        t = time.perf_counter()
        embedder.encode(texts)
        out[name] = {"texts": len(texts), "seconds": round(time.perf_counter() - t, 1)}
    whole = out["whole paper"]["seconds"]
    for name in ("tail past 256 tokens", "sentence pairs"):
        out[name]["index_throughput_vs_whole_only"] = round(whole / (whole + out[name]["seconds"]), 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--papers", type=int, default=300)
    args = ap.parse_args()
    results = {}
    for name, path in (("scifact", SCIFACT / "eval.sqlite3"), ("arxiv_119k", SPEED / "paperradar.sqlite3")):
        if not path.exists():
            continue
        store = Store(path)
        ids = random.Random(7).sample(range(1, store.count() + 1), args.papers)
        papers = store.get_many(ids)
        embedder = Embedder.load(path.parent / "models")
        embedder.encode(["warm up"])
        results[name] = {"papers": len(papers), **cost(papers, embedder)}
        store.close()
    print(json.dumps({"benchmark": "eval_passage_cost", "results": results, "machine": describe()}, indent=2))


if __name__ == "__main__":
    main()
