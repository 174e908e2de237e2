"""Retrieval variants on SciFact, computed from one pass of cached runs: each variant costs seconds.

    python bench/eval_variants.py [FOLDER] [--split train] [--chunks]

Reuses the store and indexes of bench/eval_scifact.py (bench/.cache/scifact; run that first). For every
query it reads the lexical run (every matching paper, BM25) and the query's embedding once; the variants
are then numpy over those: fusion normalisations and depths, an alpha that adapts to the query, dense
pseudo-relevance feedback (Rocchio over the first pass's top k), lexical RM3-style expansion (a second
BM25 query), and with ``--chunks`` passage embeddings of the abstracts (sentence windows and the tail past
the model's 256 tokens, embedded once into bench/.cache/scifact/chunks/, never committed). Prints JSON; the
committed result is bench/results/eval_variants_train.json, measured on the whole-abstract vectors the index
held then (today's index holds the mean of a paper's passages: see bench/eval_sentences.py).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from _machine import describe
from eval_scifact import CACHE, DEFAULT, score

from paperradar import rank
from paperradar.evaluate import beir_papers, load_beir
from paperradar.lexical import analyze
from paperradar.query import parse_query
from paperradar.search import CANDIDATES, SearchEngine, paper_text
from paperradar.store import Store

N = CANDIDATES  # per engine, as the product fuses


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- fusion variants ---------------------------------------------------------------------------------------
def top(scores: dict[int, float], n: int = N) -> list[tuple[int, float]]:
    return rank.sort_ranked(scores, n)


def zscore(run) -> dict[int, float]:
    if not run:
        return {}
    s = np.array([x for _, x in run])
    sd = s.std() or 1.0
    return {pid: (x - s.mean()) / sd for pid, x in run}


def fuse(lex, den, alpha: float, norm: str = "minmax", k: int | None = None) -> list[tuple[int, float]]:
    """alpha * dense + (1 - alpha) * lexical after normalising each run (``k``: min-max over its top k
    only, scores below clipped at 0)."""
    if norm == "minmax" and k is None:
        return rank.convex(lex, den, alpha=alpha, limit=N)
    if norm == "zscore":
        nl, nd = zscore(lex), zscore(den)
        floor_l, floor_d = min(nl.values(), default=0), min(nd.values(), default=0)
    else:
        def mm(run):
            head = run[:k]
            if not head:
                return {}
            hi, lo = head[0][1], head[-1][1]
            span = (hi - lo) or 1.0
            return {pid: max((s - lo) / span, 0.0) for pid, s in run}
        nl, nd = mm(lex), mm(den)
        floor_l = floor_d = 0.0
    return top({pid: (1 - alpha) * nl.get(pid, floor_l) + alpha * nd.get(pid, floor_d)
                for pid in nl.keys() | nd.keys()})


def rescored(lex_all: dict[int, float], sims: dict[int, float], lex, den, alpha: float,
             sides: str = "both"):
    """Every candidate of either run scored by both engines (a dense-only paper gets its BM25 score, 0 if
    it matches no word; a lexical-only one its cosine), then min-max over the union and convex.
    ``sides="dense"``: only the lexical-only papers get their cosine (the lexical run stays as it is)."""
    cand = {pid for pid, _ in lex} | {pid for pid, _ in den}
    ls = lex if sides == "dense" else [(pid, lex_all.get(pid, 0.0)) for pid in cand]
    ds = [(pid, sims[pid]) for pid in cand]
    return rank.convex(ls, ds, alpha=alpha, limit=N)


def theoretical_min(lex, den, alpha: float, dense_floor: float) -> list[tuple[int, float]]:
    """Min-max with each engine's theoretical minimum instead of its run's (Bruch et al. 2022's TMM):
    BM25 from 0, cosine from ``dense_floor``; a paper missing from a run scores that minimum there."""
    def scaled(run, lo):
        if not run:
            return {}
        span = (run[0][1] - lo) or 1.0
        return {pid: max(s - lo, 0.0) / span for pid, s in run}
    nl, nd = scaled(lex, 0.0), scaled(den, dense_floor)
    return top({pid: (1 - alpha) * nl.get(pid, 0.0) + alpha * nd.get(pid, 0.0)
                for pid in nl.keys() | nd.keys()})


# -- pseudo-relevance feedback ------------------------------------------------------------------------------
def rocchio(qv: np.ndarray, feedback: np.ndarray, beta: float) -> np.ndarray:
    v = qv + beta * feedback.mean(axis=0)
    return v / np.linalg.norm(v)


def rm3_terms(fb: list[tuple[int, float]], doc_tf: dict, df: Counter, n_docs: int, terms: int,
              idf: bool, max_df: float = 0.1) -> dict[str, float]:
    """P(t|R) of the feedback papers (each weighed by its first-pass score, normalised), the ``terms``
    heaviest, normalised to sum 1. Words in more than ``max_df`` of the papers are left out (the stopword
    list RM3 assumes); ``idf`` weighs the rest by idf as well."""
    total = sum(max(s, 0.0) for _, s in fb) or 1.0
    p: Counter = Counter()
    for pid, s in fb:
        tf, length = doc_tf[pid]
        for t, c in tf.items():
            if df[t] <= max_df * n_docs:
                p[t] += (max(s, 0.0) / total) * c / length * (math.log(n_docs / df[t]) if idf else 1.0)
    best = p.most_common(terms)
    z = sum(w for _, w in best) or 1.0
    return {t: w / z for t, w in best}


# -- BM25 parameters -------------------------------------------------------------------------------------
class FieldBM25:
    """BM25 summed over the title and abstract fields, as tantivy scores it (idf log(1 + (N - n + .5) /
    (n + .5)), per-field average length), with k1 and b free: tantivy fixes them at 1.2 and 0.75."""

    def __init__(self, papers):
        self.n = len(papers)
        self.post: dict[str, dict[str, dict[int, int]]] = {"title": {}, "abstract": {}}
        self.length: dict[str, dict[int, int]] = {"title": {}, "abstract": {}}
        for p in papers:
            for f, text in (("title", p.title), ("abstract", p.abstract or "")):
                toks = analyze(text)
                self.length[f][p.id] = len(toks)
                for t, c in Counter(toks).items():
                    self.post[f].setdefault(t, {})[p.id] = c
        self.avg = {f: sum(v.values()) / max(len(v), 1) for f, v in self.length.items()}

    def search(self, tokens: set[str], k1: float, b: float, limit: int = N) -> list[tuple[int, float]]:
        scores: Counter = Counter()
        for f, post in self.post.items():
            avg, length = self.avg[f], self.length[f]
            for t in tokens:
                docs = post.get(t)
                if not docs:
                    continue
                idf = math.log(1 + (self.n - len(docs) + 0.5) / (len(docs) + 0.5))
                for pid, tf in docs.items():
                    scores[pid] += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length[pid] / avg))
        return top(dict(scores), limit)


# -- passages ----------------------------------------------------------------------------------------------
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


def passages(paper, embedder, window: int) -> list[str]:
    """Windows of whole sentences of the abstract, ``window`` sentences each, the title in front of every
    one (what the passage is about)."""
    sents = [s for s in _SENT.split(paper.abstract or "") if s.strip()]
    return [f"{paper.title}. {' '.join(sents[i:i + window])}"
            for i in range(0, len(sents), window)] or [paper.title]


def tail(paper, embedder) -> str | None:
    """The text past the first max_length tokens (the part the whole-paper vector never saw), or None."""
    text = paper_text(paper)
    enc = embedder._tok.encode(text)
    if len(enc.ids) < embedder.max_length:
        return None
    start = enc.offsets[embedder.max_length - 64][0]  # 64 tokens of overlap
    return f"{paper.title}. {text[start:]}"


def chunk_vectors(papers, embedder, kind: str, window: int = 2) -> tuple[np.ndarray, np.ndarray, float]:
    """(owner paper id per row, float32 vectors, seconds it took), cached per kind."""
    path = CACHE / "chunks" / f"{kind}.npz"
    if path.exists():
        z = np.load(path)
        return z["owner"], z["vectors"], float(z["seconds"])
    owner, texts = [], []
    for p in papers:
        if kind == "title":
            parts = [p.title]
        elif kind.startswith("sent"):
            parts = passages(p, embedder, window)
        else:
            parts = [t] if (t := tail(p, embedder)) else []
        owner += [p.id] * len(parts)
        texts += parts
    log(f"embedding {len(texts)} {kind} passages")
    t = time.perf_counter()
    vecs = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    for i in range(0, len(texts), 1024):
        vecs[i:i + 1024] = embedder.encode(texts[i:i + 1024])
        log(f"{kind} {min(i + 1024, len(texts))}/{len(texts)}")
    seconds = time.perf_counter() - t
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, owner=np.array(owner, dtype=np.int64), vectors=vecs, seconds=seconds)
    return np.array(owner, dtype=np.int64), vecs, seconds


def maxsim(doc_sims: np.ndarray, owner_rows: np.ndarray, chunk_sims: np.ndarray, mix: float) -> np.ndarray:
    """Per paper: (1 - mix) * whole-paper cosine + mix * best passage cosine (a paper without passages
    counts its whole vector as its one passage)."""
    best = doc_sims.copy()
    np.maximum.at(best, owner_rows, chunk_sims)
    return (1 - mix) * doc_sims + mix * best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default=str(DEFAULT))
    ap.add_argument("--split", default="train")
    ap.add_argument("--chunks", action="store_true", help="also embed and score passages of the abstracts")
    args = ap.parse_args()
    if not Path(args.folder, "corpus.jsonl").exists():
        print(json.dumps({"skipped": f"no BEIR folder at {args.folder}"}))
        return
    corpus, queries, qrels = load_beir(args.folder, args.split)
    store = Store(CACHE / "eval.sqlite3")
    store.upsert_papers(beir_papers(corpus))  # unchanged papers: no new change numbers
    engine = SearchEngine(store, CACHE / "index")
    engine.update()
    papers = store.changed_since(0, limit=len(corpus) + 1)
    doc_of = {p.id: p.doi[len("beir/"):] for p in papers}
    vectors = engine.vectors
    ids = np.array(vectors.ids(), dtype=np.int64)
    _, matrix = vectors.rows(ids.tolist())
    row_of = {int(pid): r for r, pid in enumerate(ids)}

    log("first pass: lexical (every match) and the query embeddings")
    t = time.perf_counter()
    parsed = {qid: parse_query(text) for qid, text in queries.items()}
    lex_all, qvec = {}, {}
    for qid, q in parsed.items():
        lex_all[qid] = dict(engine.lexical.search(q, limit=len(corpus)))
        meant = engine._meant(q, absent_only=True)[1] or q
        qvec[qid] = engine._embed_query(meant.text)
    first_s = time.perf_counter() - t
    sims_all = {qid: matrix @ v for qid, v in qvec.items()}

    def dense_run(sims: np.ndarray, n: int = N):
        k = np.argpartition(-sims, n)[:n]
        return top({int(ids[r]): float(sims[r]) for r in k}, n)

    lex = {qid: top(s) for qid, s in lex_all.items()}
    den = {qid: dense_run(s) for qid, s in sims_all.items()}
    results: dict[str, dict] = {}

    def record(name: str, runs: dict) -> dict:
        results[name] = score(runs, qrels, doc_of)
        log(f"{name}: {results[name]}")
        return runs

    base = record("baseline: convex min-max over top 100 each, alpha=0.5",
                  {q: rank.convex(lex[q], den[q], 0.5, limit=N) for q in queries})
    record("lexical", lex)
    record("dense", den)

    # Fusion: normalisation, depth, alpha.
    for alpha in (0.4, 0.5, 0.6):
        record(f"convex z-score alpha={alpha}", {q: fuse(lex[q], den[q], alpha, "zscore") for q in queries})
    for k in (10, 20, 50):
        record(f"convex min-max over top {k} alpha=0.5",
               {q: fuse(lex[q], den[q], 0.5, "topk", k) for q in queries})
    for depth in (200, 1000):
        lex_d = {qid: top(s, depth) for qid, s in lex_all.items()}
        den_d = {qid: dense_run(s, depth) for qid, s in sims_all.items()}
        record(f"convex over top {depth} each alpha=0.5",
               {q: rank.convex(lex_d[q], den_d[q], 0.5, limit=N) for q in queries})
    sims_of = {q: {int(pid): float(s) for pid, s in zip(ids, sims_all[q], strict=True)} for q in queries}
    for alpha in (0.4, 0.5, 0.6):
        record(f"convex, union of top 100s rescored by both engines, alpha={alpha}",
               {q: rescored(lex_all[q], sims_of[q], lex[q], den[q], alpha) for q in queries})

    for alpha in (0.5, 0.6):
        record(f"convex, union of top 100s, lexical-only papers given their cosine, alpha={alpha}",
               {q: rescored(lex_all[q], sims_of[q], lex[q], den[q], alpha, "dense") for q in queries})
    lex_1000 = {q: dict(top(s, 1000)) for q, s in lex_all.items()}
    record("convex, union of top 100s rescored, BM25 from the top 1000 (0 below), alpha=0.5",
           {q: rescored(lex_1000[q], sims_of[q], lex[q], den[q], 0.5) for q in queries})
    for depth in (200,):
        lex_d = {qid: top(s, depth) for qid, s in lex_all.items()}
        den_d = {qid: dense_run(s, depth) for qid, s in sims_all.items()}
        for alpha in (0.5, 0.6):
            record(f"convex, union of top {depth}s rescored by both engines, alpha={alpha}",
                   {q: rescored(lex_all[q], sims_of[q], lex_d[q], den_d[q], alpha) for q in queries})
    for floor in (0.0, -1.0):
        for alpha in (0.4, 0.5, 0.6):
            record(f"convex, theoretical-min normalisation (BM25 from 0, cosine from {floor}), alpha={alpha}",
                   {q: theoretical_min(lex[q], den[q], alpha, floor) for q in queries})

    # An alpha per query: from its length (short queries lean lexical) or the runs' own confidence.
    lengths = {q: len(analyze(text)) for q, text in queries.items()}

    def spread(run, k=10):
        if len(run) < 2:
            return 0.0
        s = [x for _, x in run[:k]]
        return (s[0] - s[-1]) / (abs(s[0]) or 1.0)

    for lo, hi in ((0.4, 0.6), (0.3, 0.7)):
        runs = {}
        for q in queries:
            a = lo + (hi - lo) * min(max((lengths[q] - 3) / 12, 0.0), 1.0)
            runs[q] = rank.convex(lex[q], den[q], a, limit=N)
        record(f"alpha by query length: {lo} (3 words) .. {hi} (15+ words)", runs)
    runs = {}
    for q in queries:
        sl, sd = spread(lex[q]), spread(den[q])
        a = sd / (sl + sd) if sl + sd > 0 else 0.5
        runs[q] = rank.convex(lex[q], den[q], a, limit=N)
    record("alpha = dense spread / (dense + lexical spread), top-10 relative spread", runs)
    runs = {}
    for q in queries:
        sl, sd = spread(lex[q]), spread(den[q])
        a = 0.5 + 0.5 * (sd / (sl + sd) - 0.5) if sl + sd > 0 else 0.5
        runs[q] = rank.convex(lex[q], den[q], a, limit=N)
    record("alpha = halfway between 0.5 and the spread ratio", runs)

    # Dense pseudo-relevance feedback: Rocchio over the top k of the fused first pass.
    prf_runs = {}
    for source in ("hybrid", "dense"):
        first = base if source == "hybrid" else den
        for k in (3, 5, 10):
            for beta in (0.5, 1.0, 2.0):
                den2, fused = {}, {}
                for q in queries:
                    fb = matrix[[row_of[pid] for pid, _ in first[q][:k]]]
                    den2[q] = dense_run(matrix @ rocchio(qvec[q], fb, beta))
                    fused[q] = rank.convex(lex[q], den2[q], 0.5, limit=N)
                name = f"dense PRF (Rocchio, {source} top {k}, beta={beta})"
                record(name + " dense alone", den2)
                record(name + " + BM25, convex alpha=0.5", fused)
                prf_runs[(source, k, beta)] = den2

    # Lexical RM3-style expansion from the fused first pass.
    doc_tf, df = {}, Counter()
    for p in papers:
        toks = analyze(paper_text(p))
        tf = Counter(toks)
        doc_tf[p.id] = (tf, max(len(toks), 1))
        df.update(tf.keys())
    rm3_runs = {}
    for k, terms, lam, idf in ((5, 10, 0.3, False), (10, 10, 0.3, False), (10, 20, 0.3, False),
                               (10, 10, 0.5, False), (5, 10, 0.3, True), (10, 20, 0.3, True),
                               (10, 20, 0.5, True), (3, 10, 0.3, True)):
        lex2, fused = {}, {}
        t = time.perf_counter()
        for q in queries:
            exp = rm3_terms(base[q][:k], doc_tf, df, len(papers), terms, idf)
            n_q = max(len(set(analyze(queries[q]))), 1)
            weights = {t: lam / (1 - lam) * n_q * w for t, w in exp.items()}
            lex2[q] = engine.lexical.search(parsed[q], limit=N, expansion=weights)
            fused[q] = rank.convex(lex2[q], den[q], 0.5, limit=N)
        ms = 1000 * (time.perf_counter() - t) / len(queries)
        name = f"lexical RM3 (hybrid top {k}, {terms} terms, lambda={lam}{', idf' if idf else ''})"
        record(name + " BM25 alone", lex2)
        record(name + " + dense, convex alpha=0.5", fused)
        results[name + " + dense, convex alpha=0.5"]["second_query_ms"] = round(ms, 2)
        rm3_runs[(k, terms, lam, idf)] = lex2

    # BM25's k1 and b, by a numpy BM25 of the same analyzer (no acronyms or typo corrections: compare
    # its rows with each other, and the first one with "lexical").
    bm25 = FieldBM25(papers)
    qtokens = {q: {t for w in parsed[q].terms for t in analyze(w)} for q in queries}
    for k1, b in ((1.2, 0.75), (0.9, 0.4), (1.2, 0.5), (1.2, 0.9), (1.5, 0.75), (2.0, 0.75), (0.9, 0.75)):
        lex2 = {q: bm25.search(qtokens[q], k1, b) for q in queries}
        record(f"BM25 k1={k1} b={b} (numpy, no shorthand) alone", lex2)
        record(f"BM25 k1={k1} b={b} (numpy, no shorthand) + dense, convex alpha=0.5",
               {q: rank.convex(lex2[q], den[q], 0.5, limit=N) for q in queries})

    # Both feedbacks together, from the same first pass.
    for (s, k, beta), (rk, terms, lam, idf) in ((("hybrid", 5, 1.0), (10, 20, 0.3, True)),
                                                (("hybrid", 10, 1.0), (10, 20, 0.3, True)),
                                                (("hybrid", 5, 1.0), (5, 10, 0.3, True))):
        d2, l2 = prf_runs[(s, k, beta)], rm3_runs[(rk, terms, lam, idf)]
        for alpha in (0.4, 0.5, 0.6):
            record(f"dense PRF ({s} top {k}, beta={beta}) + RM3 (top {rk}, {terms} terms, lambda={lam}"
                   f"{', idf' if idf else ''}), convex alpha={alpha}",
                   {q: rank.convex(l2[q], d2[q], alpha, limit=N) for q in queries})

    chunks_info = {}
    if args.chunks:
        embedder = engine.embedder
        for kind in ("tail", "title", "sent2"):  # single sentences: twice sent2's passages, not run
            window = 1 if kind == "sent1" else 2
            owner, cvecs, seconds = chunk_vectors(papers, embedder, kind, window)
            owner_rows = np.array([row_of[int(o)] for o in owner], dtype=np.int64)
            chunks_info[kind] = {"passages": len(owner),
                                 "papers_with_passages": int(len(set(owner.tolist()))),
                                 "embed_seconds": round(seconds, 1),
                                 "passages_per_second": round(len(owner) / max(seconds, 1e-9), 1)}
            csims = {q: cvecs @ qvec[q] for q in queries}
            for mix in (0.3, 0.5, 1.0):
                den2 = {}
                for q in queries:
                    den2[q] = dense_run(maxsim(sims_all[q], owner_rows, csims[q], mix))
                record(f"passages {kind}: (1-{mix}) whole + {mix} best passage, dense alone", den2)
                if mix == 0.5:
                    for alpha in (0.5, 0.6):
                        record(f"passages {kind}: (1-{mix}) whole + {mix} best passage, union of top 100s "
                               f"rescored by both engines, alpha={alpha}",
                               {q: rescored(lex_all[q], dict(zip(ids.tolist(), maxsim(
                                   sims_all[q], owner_rows, csims[q], mix).tolist(), strict=True)),
                                   lex[q], den2[q], alpha) for q in queries})
                for alpha in (0.5, 0.6):
                    record(f"passages {kind}: (1-{mix}) whole + {mix} best passage + BM25, "
                           f"convex alpha={alpha}",
                           {q: rank.convex(lex[q], den2[q], alpha, limit=N) for q in queries})

    out = {
        "benchmark": "eval_variants",
        "split": args.split,
        "queries": len(queries),
        "documents": len(corpus),
        "model": engine.embedder.name if args.chunks else vectors.model,
        "first_pass_seconds": round(first_s, 1),
        "passages": chunks_info,
        "results": results,
        "machine": describe(),
    }
    engine.close()
    store.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
