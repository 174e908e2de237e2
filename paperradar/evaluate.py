"""Retrieval quality on a BEIR-format folder: nDCG@10, Recall@100, MRR@10.

The evaluation builds its own store and indexes in a temporary directory — never the user's store — so
``paperradar eval`` can run anywhere. Metric functions are pure and unit-tested.
"""

from __future__ import annotations

import csv
import json
import math
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .errors import InputUnusable
from .models import Paper


def ndcg_at(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    """Normalised discounted cumulative gain of the first k ids (graded relevance, log2 discount)."""
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranked: list[str], relevant: dict[str, int], k: int = 100) -> float:
    rel = {d for d, g in relevant.items() if g > 0}
    return len(rel & set(ranked[:k])) / len(rel) if rel else 0.0


def mrr_at(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    for i, doc in enumerate(ranked[:k]):
        if relevant.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def load_beir(folder: str | Path, split: str) -> tuple[list[dict], dict[str, str], dict[str, dict[str, int]]]:
    """(corpus records, queries by id, qrels by query id) of a BEIR folder; only judged queries kept."""
    folder = Path(folder)
    paths = {"corpus": folder / "corpus.jsonl", "queries": folder / "queries.jsonl",
             "qrels": folder / "qrels" / f"{split}.tsv"}
    for path in paths.values():
        if not path.exists():
            raise InputUnusable(f"{path} not found: not a BEIR folder, or no {split!r} split",
                                hint="a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv")
    try:
        with open(paths["corpus"], encoding="utf-8") as f:
            corpus = [json.loads(line) for line in f if line.strip()]
        with open(paths["queries"], encoding="utf-8") as f:
            queries = {str(q["_id"]): q["text"] for q in map(json.loads, filter(str.strip, f))}
        qrels: dict[str, dict[str, int]] = {}
        with open(paths["qrels"], encoding="utf-8", newline="") as f:
            for row in csv.reader(f, delimiter="\t"):
                if len(row) < 3 or row[0] in ("query-id", "query_id"):
                    continue
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    except (ValueError, KeyError) as e:
        raise InputUnusable(f"{folder}: malformed BEIR file: {e}") from None
    queries = {qid: text for qid, text in queries.items() if qid in qrels}
    return corpus, queries, qrels


_JUNK = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffd]")


def beir_papers(corpus: list[dict]) -> list[Paper]:
    """BEIR documents as papers. Their ids go in the DOI slot (``beir/<id>``) so that documents that
    share a title stay distinct papers in the temporary store. Every document must be scored, so
    control and replacement characters (a few SciFact abstracts have U+FFFD) become spaces instead of
    rejecting the document as the ingest would."""
    return [
        Paper(title=_JUNK.sub(" ", d.get("title") or "").strip() or str(d["_id"]),
              abstract=_JUNK.sub(" ", d.get("text") or ""), source="jsonl", doi=f"beir/{d['_id']}").validate()
        for d in corpus
    ]


def evaluate(folder: str | Path, split: str = "test", mode: str = "hybrid",
             progress: Callable[[str], None] | None = None, **engine_options) -> dict:
    """Build a temporary engine over the folder's corpus and score ``mode`` on the split's queries."""
    from .search import SearchEngine
    from .store import Store

    corpus, queries, qrels = load_beir(folder, split)
    with tempfile.TemporaryDirectory(prefix="paperradar-eval-") as tmp:
        store = Store(Path(tmp) / "eval.sqlite3")
        store.upsert_papers(beir_papers(corpus))
        engine = SearchEngine(store, Path(tmp) / "index", **engine_options)
        t = time.perf_counter()
        engine.update(progress=None)
        build_s = time.perf_counter() - t
        doc_of = {p.id: p.doi[len("beir/"):] for p in store.changed_since(0, limit=len(corpus) + 1)}
        totals = {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
        t = time.perf_counter()
        for i, (qid, text) in enumerate(sorted(queries.items())):
            hits = engine.retrieve(text, mode=mode, limit=100)
            ranked = [doc_of[pid] for pid, _ in hits]
            totals["ndcg@10"] += ndcg_at(ranked, qrels[qid], 10)
            totals["recall@100"] += recall_at(ranked, qrels[qid], 100)
            totals["mrr@10"] += mrr_at(ranked, qrels[qid], 10)
            if progress and i % 100 == 0:
                progress(f"{i}/{len(queries)} queries")
        query_s = time.perf_counter() - t
        engine.close()
        store.close()
    n = max(len(queries), 1)
    return {
        **{k: round(v / n, 4) for k, v in totals.items()},
        "queries": len(queries),
        "documents": len(corpus),
        "mode": mode,
        "split": split,
        "index_seconds": round(build_s, 1),
        "query_ms_mean": round(1000 * query_s / n, 2),
    }
