"""What reading papers in passages costs the index: `paperradar index` (SearchEngine.update) over the same
papers, embedding them the old way (one pass over "title. abstract", cut at 256 tokens) and the new way
(paperradar/passages.py: passages of two sentences behind the title, sentence vectors pooled from the same
pass), alternated, in one run.

    python bench/eval_passage_cost.py [--papers 2000] [--rounds 2]

Samples papers (seed 7) from the 119k arXiv store of bench/search_speed.py and from the SciFact store of
bench/eval_scifact.py, where present; each round indexes them into a fresh data directory (the model file
shared). Reports the median seconds of the whole update and of its vector part, tokens read, and the
throughput ratio new / old. Prints JSON; the committed result is bench/results/eval_passage_cost.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
from _machine import describe
from eval_scifact import CACHE as SCIFACT
from search_speed import CACHE as SPEED

from paperradar import passages
from paperradar.embed import Embedder
from paperradar.models import Paper
from paperradar.search import SearchEngine, paper_text
from paperradar.store import Store


def whole_text(embedder, papers):
    """The old way: one vector per paper from its text's first 256 tokens (its one 'sentence')."""
    vecs = embedder.encode([paper_text(p) for p in papers])
    return vecs, [v[None, :] for v in vecs]


def index_once(papers, embedder, way: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "paperradar.sqlite3")
        store.upsert_papers(papers)
        engine = SearchEngine(store, Path(tmp) / "index", embedder=embedder)
        t = time.perf_counter()
        if way == "old":
            with mock.patch.object(passages, "embed_papers", whole_text):
                engine.update(dense=False)
                lexical_s = time.perf_counter() - t
                engine.update()
        else:
            engine.update(dense=False)
            lexical_s = time.perf_counter() - t
            engine.update()
        total = time.perf_counter() - t
        engine.close()
        store.close()
    return {"seconds": total, "vector_seconds": total - lexical_s}


def tokens(papers, embedder, way: str) -> int:
    if way == "old":
        texts = [paper_text(p) for p in papers]
    else:
        texts = [t for p in papers for t, _ in passages.passages(p.title, p.abstract)]
    return sum(len(e.ids) for e in embedder._tok.encode_batch(texts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--papers", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    results = {}
    for name, path in (("arxiv_119k", SPEED / "paperradar.sqlite3"), ("scifact", SCIFACT / "eval.sqlite3")):
        if not path.exists():
            continue
        source = Store(path)
        ids = random.Random(7).sample(range(1, source.count() + 1), min(args.papers, source.count()))
        papers = [Paper(title=p.title, abstract=p.abstract, source="jsonl", arxiv_id=p.arxiv_id, doi=p.doi)
                  for p in source.get_many(ids)]
        source.close()
        embedder = Embedder.load(path.parent / "models")
        embedder.encode(["warm up"])
        runs: dict[str, list[dict]] = {"old": [], "new": []}
        for _ in range(args.rounds):
            for way in ("old", "new"):
                runs[way].append(index_once(papers, embedder, way))
        out = {"papers": len(papers)}
        for way, label in (("old", "whole text, one pass (before)"), ("new", "passages + sentence vectors")):
            median = statistics.median(r["seconds"] for r in runs[way])
            out[label] = {
                "index_seconds_median": round(median, 1),
                "vector_seconds_median": round(statistics.median(r["vector_seconds"] for r in runs[way]), 1),
                "papers_per_second": round(len(papers) / median, 1),
                "tokens_read": tokens(papers, embedder, way),
                "runs_seconds": [round(r["seconds"], 1) for r in runs[way]],
            }
        old, new = out["whole text, one pass (before)"], out["passages + sentence vectors"]
        out["index_throughput_new_vs_old"] = round(
            old["index_seconds_median"] / new["index_seconds_median"], 2)
        out["sentences_per_paper"] = round(float(np.mean(
            [sum(len(s) for _, s in passages.passages(p.title, p.abstract)) or 1 for p in papers])), 2)
        results[name] = out
    print(json.dumps({"benchmark": "eval_passage_cost", "results": results, "machine": describe()}, indent=2))


if __name__ == "__main__":
    main()
