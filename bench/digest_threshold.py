"""Where a saved search's digest draws the line for papers found by meaning alone (DIGEST_MIN_SIMILARITY,
paperradar/search.py), now that a paper's vector is the mean of its passages' (paperradar/passages.py).

    python bench/digest_threshold.py

Over the bundled demo corpus (4,000 arXiv papers, indexed once into bench/.cache/demo/): for saved searches
a researcher would write, the cosine of the 10th best paper (the digest shows up to 10 a day), and for
texts no paper is about — random letters, and everyday phrases far from the corpus — the best cosine of any
paper. The threshold belongs between the two; each row counts the texts at or above each of THRESHOLDS.
Prints JSON; the committed result is bench/results/digest_threshold.json.
"""

from __future__ import annotations

import json
import random
import statistics
import string
from pathlib import Path

import numpy as np
from _machine import describe

from paperradar.ingest import ingest
from paperradar.search import DIGEST_MIN_SIMILARITY, SearchEngine
from paperradar.sources.jsonl import JSONLSource
from paperradar.store import Store

THRESHOLDS = (0.35, 0.38, 0.39, 0.40, 0.42)
DEMO = Path(__file__).resolve().parents[1] / "paperradar" / "data" / "demo.jsonl.gz"
CACHE = Path(__file__).resolve().parent / ".cache" / "demo"
ON_TOPIC = [
    "diffusion models for video generation", "large language model reasoning", "graph neural networks",
    "reinforcement learning from human feedback", "retrieval-augmented generation", "vision transformers",
    "speech recognition", "federated learning privacy", "3D gaussian splatting", "robot manipulation",
    "mixture of experts", "quantization of neural networks", "medical image segmentation",
    "knowledge distillation", "autonomous driving perception", "multimodal large language models",
    "code generation with language models", "time series forecasting", "adversarial robustness",
    "jailbreak attacks on LLMs", "protein structure prediction", "text-to-image generation",
    "model compression and pruning", "chain of thought prompting",
]
OFF_TOPIC = [
    "chocolate cake recipe", "cheap flights to Lisbon", "how to fix a leaking tap", "football transfer news",
    "best hiking boots for winter", "knitting patterns for beginners", "wedding dress shopping",
    "gardening tips for tomatoes", "used cars for sale", "horoscope for Sagittarius",
]


def gibberish(rng: random.Random, n: int) -> list[str]:
    return [" ".join("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 9)))
                     for _ in range(rng.randint(1, 4))) for _ in range(n)]


def main() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    store = Store(CACHE / "paperradar.sqlite3")
    if store.count() == 0:
        ingest(store, JSONLSource(str(DEMO)))
    engine = SearchEngine(store, CACHE / "index")
    engine.update()
    ids = [p.id for p in store.changed_since(0, limit=store.count() + 1)]

    def cosines(text: str) -> tuple[np.ndarray, np.ndarray]:
        qv = engine._embed_query(text)
        paper = np.array(sorted((s for _, s in engine.vectors.similarities(qv, ids)), reverse=True))
        best = np.array(sorted(engine.sentences.best(qv, ids).values(), reverse=True))
        return paper, best

    def summary(values: list[float]) -> dict:
        return {"min": round(min(values), 3), "median": round(statistics.median(values), 3),
                "max": round(max(values), 3)}

    rows = {}
    noise = gibberish(random.Random(7), 30)
    for kind, texts, at in (("on-topic, 10th best", ON_TOPIC, 9), ("everyday phrases, best", OFF_TOPIC, 0),
                            ("random letters, best", noise, 0)):
        got = [cosines(t) for t in texts]
        rows[kind] = {"queries": len(texts), "paper vector": summary([float(p[at]) for p, _ in got]),
                      "best sentence": summary([float(b[at]) for _, b in got])}
        for name, k in (("paper vector", 0), ("best sentence", 1)):
            rows[kind][name]["at or above"] = {str(t): sum(1 for g in got if g[k][at] >= t)
                                               for t in THRESHOLDS}
    print(json.dumps({"benchmark": "digest_threshold", "papers": len(ids), "model": engine.vectors.model,
                      "threshold": DIGEST_MIN_SIMILARITY, "results": rows, "machine": describe()}, indent=2))
    engine.close()
    store.close()


if __name__ == "__main__":
    main()
