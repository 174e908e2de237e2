"""Sentence-level dense evidence on SciFact: which sentence vectors, read how, at what cost.

    python bench/eval_sentences.py [FOLDER] [--split train]

bench/eval_variants.py found that embedding windows of two sentences as texts of their own lifts SciFact
train nDCG@10 to 0.738 (best passage + whole abstract), at 2.4x the model's work. Here the sentence vectors
come out of the pass that reads the paper ("late chunking", Günther et al. 2024: a sentence's vector is the
mean of its tokens' output states, read in context), in two families:

* ``whole/...``: the model reads "title. abstract" once, as the index did before (cut at 256 tokens); the
  sentences of that pass get vectors (alone, with the title's tokens, windows of 2 and 3) and the paper
  keeps its whole-text vector;
* ``passages Wt/Wn``: the model reads the paper as passages of W sentences with (t) or without (n) the
  title in front, as paperradar/passages.py does with W=2 and the title; the paper's vector is the mean of
  its passages' (what the vector index holds and the first stage searches), and each sentence gets its own.
  Pooling variants on 2t: punctuation left out, idf-weighted tokens, [CLS]/[SEP] included, a share of the
  neighbour sentence.

Each is scored as the product fuses (paperradar/search.py): the dense first stage (top 100 by the paper
vector) and BM25's top 100, every candidate scored by both engines (the dense side by the variant), min-max,
convex. Vectors are cached in bench/.cache/scifact/chunks/ (never committed; SciFact is CC BY-NC) with the
seconds their pass took. Prints JSON; the committed result is bench/results/eval_sentences_train.json.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
from _machine import describe
from eval_scifact import CACHE, DEFAULT, score
from eval_variants import rescored, top

from paperradar.embed import Embedder
from paperradar.evaluate import beir_papers, load_beir
from paperradar.lexical import LexicalIndex
from paperradar.passages import sentences
from paperradar.query import parse_query
from paperradar.search import CANDIDATES, paper_text
from paperradar.store import Store

N = CANDIDATES
CHUNKS = CACHE / "chunks"
WHOLE_KINDS = ("s1", "s1+title", "s2+title", "s3+title")
POOLINGS = ("S", "no punctuation", "idf-weighted", "with [CLS]/[SEP]", "+0.3 neighbour")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _run(embedder, texts):
    """Token encodings and output states, batched by length: yields (index, encoding, states)."""
    encs = embedder._tok.encode_batch(list(texts))
    order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
    for b in range(0, len(order), 32):
        rows = order[b:b + 32]
        hidden, _ = embedder._hidden([encs[i].ids for i in rows])
        for r, i in enumerate(rows):
            yield i, encs[i], hidden[r, :len(encs[i].ids)]
        if b // 32 % 100 == 0:
            log(f"  {b + len(rows)}/{len(order)} texts")


def _unit(v):
    return v / max(float(np.linalg.norm(v)), 1e-12)


def whole_pass(papers, embedder) -> dict:
    """The whole-text pass: paper vectors plus sentence vectors of the kinds in WHOLE_KINDS."""
    path = CHUNKS / "whole-late.npz"
    if path.exists():
        return dict(np.load(path))
    texts, starts = [], []
    for p in papers:
        text = paper_text(p)
        cut = [0]
        if p.abstract:
            base = len(p.title) + 2
            cut += [base] + [base + m.end() for m in re.finditer(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])", p.abstract)]
        texts.append(text)
        starts.append(np.array(sorted(set(cut))))
    out = {k: ([], []) for k in WHOLE_KINDS}
    whole = np.zeros((len(papers), embedder.dim), np.float32)
    t = time.perf_counter()
    for i, enc, h in _run(embedder, texts):
        whole[i] = _unit(h.mean(axis=0))
        n = len(enc.ids)
        seg = np.searchsorted(starts[i], [o[0] for o in enc.offsets[1:n - 1]], side="right") - 1
        sums = np.zeros((len(starts[i]), h.shape[1]), np.float32)
        np.add.at(sums, seg, h[1:n - 1])
        counts = np.bincount(seg, minlength=len(starts[i]))
        sents = [(sums[j], counts[j]) for j in range(1, len(starts[i])) if counts[j]]
        for kind, win, title in (("s1", 1, False), ("s1+title", 1, True), ("s2+title", 2, True),
                                 ("s3+title", 3, True)):
            for j in range(0, len(sents), win):
                s = sum(x for x, _ in sents[j:j + win]) + (sums[0] if title else 0)
                c = sum(x for _, x in sents[j:j + win]) + (counts[0] if title else 0)
                out[kind][0].append(papers[i].id)
                out[kind][1].append(_unit(s / c))
    arrays = {"ids": np.array([p.id for p in papers]), "paper": whole,
              "seconds": np.float64(time.perf_counter() - t)}
    for k, (o, v) in out.items():
        arrays[f"{k}.owner"], arrays[f"{k}.vectors"] = np.array(o), np.array(v, np.float32)
    CHUNKS.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def _pool(way: str, h, m, others, real, punct, idf):
    """One sentence's vector from its tokens ``m`` of the passage's states ``h``, pooled ``way``."""
    if way == "no punctuation":
        return h[m & ~punct].mean(axis=0) if (m & ~punct).any() else h[m].mean(axis=0)
    if way == "idf-weighted":
        return (h * (idf * m)[:, None]).sum(axis=0)
    if way == "with [CLS]/[SEP]":
        return h[m | ~real].mean(axis=0)
    if way == "+0.3 neighbour":
        return h[m].sum(axis=0) + 0.3 * sum((h[x].sum(axis=0) for x in others), np.zeros(h.shape[1]))
    return h[m].mean(axis=0)


def passage_pass(papers, embedder, window: int, title: bool, poolings=("S",)) -> dict:
    """Passages of ``window`` sentences (behind the title or not): paper vectors (mean of the passages')
    and sentence vectors pooled each way in ``poolings``."""
    path = CHUNKS / f"passages-{window}{'t' if title else 'n'}.npz"
    if path.exists():
        z = dict(np.load(path))
        if all(f"{k}.vectors" in z for k in poolings):
            return z
    texts, spans, owner = [], [], []
    for i, p in enumerate(papers):
        sents = sentences(p.abstract or "")
        if not sents:
            texts.append(p.title), spans.append([]), owner.append(i)
            continue
        head = f"{p.title}. " if title else ""
        for j in range(0, len(sents), window):
            text, sp = head, []
            for s in sents[j:j + window]:
                text += " " if len(text) > len(head) else ""
                sp.append((len(text), len(text) + len(s)))
                text += s
            texts.append(text), spans.append(sp), owner.append(i)
    vocab = {i: w for w, i in embedder._tok.get_vocab().items()}
    punct = np.array([bool(re.fullmatch(r"[^\w]+", vocab.get(i, "x"))) for i in range(max(vocab) + 1)])
    df = np.zeros(len(punct))
    for e in embedder._tok.encode_batch(texts):
        df[np.unique(e.ids)] += 1
    idf = np.log((len(texts) + 1) / (df + 1)) + 1
    paper = np.zeros((len(papers), embedder.dim), np.float32)
    pooled = {k: ([], []) for k in poolings}
    t = time.perf_counter()
    for i, enc, h in _run(embedder, texts):
        paper[owner[i]] += _unit(h.mean(axis=0))
        st = np.array([o[0] for o in enc.offsets])
        real = np.array([o[1] > o[0] for o in enc.offsets])
        tid = np.array(enc.ids)
        masks = [real & (st >= lo) & (st < hi) for lo, hi in spans[i]]
        for j, m in enumerate(masks):
            if not m.any():
                continue
            for k in poolings:
                pooled[k][0].append(papers[owner[i]].id)
                pooled[k][1].append(_unit(_pool(k, h, m, [x for n, x in enumerate(masks) if n != j],
                                                real, punct[tid], idf[tid])))
    seconds = time.perf_counter() - t
    paper /= np.maximum(np.linalg.norm(paper, axis=1, keepdims=True), 1e-12)
    arrays = {"ids": np.array([p.id for p in papers]), "paper": paper, "seconds": np.float64(seconds),
              "passages": np.int64(len(texts))}
    for k, (o, v) in pooled.items():
        arrays[f"{k}.owner"], arrays[f"{k}.vectors"] = np.array(o), np.array(v, np.float32)
    CHUNKS.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default=str(DEFAULT))
    ap.add_argument("--split", default="train")
    args = ap.parse_args()
    if not Path(args.folder, "corpus.jsonl").exists():
        print(json.dumps({"skipped": f"no BEIR folder at {args.folder}"}))
        return
    corpus, queries, qrels = load_beir(args.folder, args.split)
    store = Store(CACHE / "eval.sqlite3")
    store.upsert_papers(beir_papers(corpus))
    lexical = LexicalIndex(CACHE / "index" / "lexical")
    lexical.update_from(store)
    papers = store.changed_since(0, limit=len(corpus) + 1)
    doc_of = {p.id: p.doi[len("beir/"):] for p in papers}
    embedder = Embedder.load(CACHE / "models")
    qs = list(queries)
    lex_all = {q: dict(lexical.search(parse_query(queries[q]), limit=len(corpus))) for q in qs}
    lex = {q: top(s) for q, s in lex_all.items()}
    qmat = embedder.encode([queries[q] for q in qs], batch_size=1)  # one by one, as search embeds them
    results: dict[str, dict] = {}
    costs: dict[str, dict] = {}

    def evaluate(name: str, ids, paper, owner=None, vectors=None, alphas=(0.5, 0.6, 0.65)):
        """First stage: top N by the paper vector; the dense score: best sentence (paper cosine where a
        paper has none), or the paper cosine when no sentences are given."""
        row = {int(p): r for r, p in enumerate(ids)}
        first = qmat @ paper.T
        dense = first.copy()
        if owner is not None:
            best = np.full_like(first, -np.inf)
            rows = np.array([row[int(o)] for o in owner])
            sims = qmat @ vectors.T
            for j in range(len(qs)):
                np.maximum.at(best[j], rows, sims[j])
            dense = np.where(np.isfinite(best), best, first)
        id_list = [int(i) for i in ids]
        for alpha in alphas:
            runs = {}
            for j, q in enumerate(qs):
                k = np.argpartition(-first[j], N)[:N]
                d = top({id_list[x]: float(dense[j, x]) for x in k})
                runs[q] = rescored(lex_all[q], dict(zip(id_list, dense[j].tolist(), strict=True)), lex[q], d,
                                   alpha)
            results[f"{name}, alpha={alpha}"] = score(runs, qrels, doc_of)
            log(f"{name}, alpha={alpha}: {results[f'{name}, alpha={alpha}']}")

    log("whole-text pass")
    w = whole_pass(papers, embedder)
    costs["whole text (one pass, 256 tokens)"] = {"seconds": round(float(w["seconds"]), 1)}
    evaluate("whole-text cosine (the index before)", w["ids"], w["paper"])
    for kind in WHOLE_KINDS:
        evaluate(f"whole pass, late sentences {kind}", w["ids"], w["paper"], w[f"{kind}.owner"],
                 w[f"{kind}.vectors"])
    for window, title in ((2, True), (3, True), (2, False)):
        tag = f"{window}{'t' if title else 'n'}"
        log(f"passages {tag}")
        z = passage_pass(papers, embedder, window, title, POOLINGS if tag == "2t" else ("S",))
        costs[f"passages {tag}"] = {"seconds": round(float(z["seconds"]), 1), "passages": int(z["passages"]),
                                    "throughput_vs_whole_text": round(float(w["seconds"] / z["seconds"]), 2)}
        evaluate(f"passages {tag}, paper vector only", z["ids"], z["paper"])
        for pooling in POOLINGS if tag == "2t" else ("S",):
            evaluate(f"passages {tag}, best sentence ({pooling})", z["ids"], z["paper"],
                     z[f"{pooling}.owner"], z[f"{pooling}.vectors"])
    print(json.dumps({"benchmark": "eval_sentences", "split": args.split, "queries": len(qs),
                      "documents": len(corpus), "model": embedder.name, "pass_seconds": costs,
                      "results": results, "machine": describe()}, indent=2))
    lexical.close()
    store.close()


if __name__ == "__main__":
    main()
