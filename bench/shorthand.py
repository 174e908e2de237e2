"""Researchers' shorthand on the 119k-paper arXiv corpus: acronyms both ways, and typos, before/after.

    python bench/shorthand.py [--per-set 300] [--seed 7]

Query sets, each with a known target paper, built from the corpus itself with a fixed seed:

- **acronym for long form**: a paper whose title holds a mined long form ("... retrieval-augmented
  generation ..."), searched by the acronym instead ("RAG") and two other words of its title;
- **long form for acronym**: a paper whose title holds a mined acronym, searched by the long form instead
  and two other words of its title;
- **typo**: four words of a paper's title, one word of 6+ letters given one random edit (deletion,
  transposition, substitution or insertion); the same queries without the typo are scored too, and how
  many of those clean queries got a (false) "did you mean".

Recall@10 and MRR@10 with the shorthand off and on, lexical and hybrid. The store and vectors of
bench/search_speed.py (bench/.cache/speed/) are reused when present (a copy of the store, the vectors
and sentence vectors linked); else the corpus is ingested and only the lexical engine is measured. The
lexical index and its shorthand tables are built in bench/.cache/shorthand/. Prints JSON; the committed
result is bench/results/shorthand.json. Skips cleanly when the corpus is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

from _machine import describe
from lexical_engines import make_queries

from paperradar.query import parse_query
from paperradar.search import SearchEngine
from paperradar.shorthand import FILE, MIN_PAIR, normalise
from paperradar.store import Store

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus" / "arxiv-119k.jsonl.gz"
SPEED = Path(__file__).resolve().parent / ".cache" / "speed"
CACHE = Path(__file__).resolve().parent / ".cache" / "shorthand"
MIN_USES = 5  # pairs a query set draws from: defined by at least this many papers
_TITLE_WORD = re.compile(r"[A-Za-z][A-Za-z\-]+")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def prepare() -> tuple[Store, SearchEngine, bool]:
    """The store, an engine over it, and whether it has vectors."""
    CACHE.mkdir(parents=True, exist_ok=True)
    db = CACHE / "paperradar.sqlite3"
    dense = (SPEED / "paperradar.sqlite3").exists() and (SPEED / "index" / "vectors").exists()
    if not db.exists():
        if dense:
            log("copying the store of bench/.cache/speed")
            shutil.copyfile(SPEED / "paperradar.sqlite3", db.with_suffix(".tmp"))
            os.replace(db.with_suffix(".tmp"), db)
        else:
            from paperradar.ingest import ingest
            from paperradar.sources.jsonl import JSONLSource

            log("ingesting the corpus")
            ingest(Store(db), JSONLSource(str(CORPUS)))
    (CACHE / "index").mkdir(exist_ok=True)
    if dense:
        for link, target in ((CACHE / "index" / "vectors", SPEED / "index" / "vectors"),
                             (CACHE / "index" / "sentences", SPEED / "index" / "sentences"),
                             (CACHE / "models", SPEED / "models")):
            if not link.exists():
                link.symlink_to(target.resolve())
    store = Store(db)
    engine = SearchEngine(store, CACHE / "index")
    return store, engine, dense


def edit(word: str, rng: random.Random) -> str:
    """One random edit of ``word`` that changes it."""
    while True:
        i = rng.randrange(len(word))
        kind = rng.choice(("delete", "transpose", "substitute", "insert"))
        c = rng.choice("abcdefghijklmnopqrstuvwxyz")
        if kind == "delete":
            out = word[:i] + word[i + 1:]
        elif kind == "transpose" and i < len(word) - 1:
            out = word[:i] + word[i + 1] + word[i] + word[i + 2:]
        elif kind == "substitute":
            out = word[:i] + c + word[i + 1:]
        else:
            out = word[:i] + c + word[i:]
        if out != word:
            return out


def query_sets(store: Store, tables, per_set: int, rng: random.Random) -> dict[str, list[tuple[str, int]]]:
    papers = []
    seq = 0
    while True:
        batch = store.changed_since(seq, limit=20_000)
        if not batch:
            break
        papers.extend((p.id, p.title) for p in batch)
        seq = batch[-1].seq
    papers.sort()
    # Pairs to draw from: the acronym's dominant long form, used often enough.
    dominant = {}
    for key, forms in tables.pairs.items():
        form, n = max(forms.items(), key=lambda fn: (fn[1], fn[0]))
        if n >= MIN_USES and len(key) >= 2:
            dominant[key] = form
    by_form = {form: key for key, form in dominant.items()}
    form_re = re.compile(r"\b(" + "|".join(re.escape(f).replace(r"\ ", r"[\s\-]+")
                                           for f in sorted(by_form, key=len, reverse=True)) + r")s?\b", re.I)
    acr_re = re.compile(r"(?<![\w-])([A-Z][A-Za-z0-9]*[A-Z][A-Za-z0-9]*)s?(?![\w-])")
    to_acr, to_long, typo, clean = [], [], [], []
    rng.shuffle(papers)
    def short_query(title: str, start: int, end: int, replacement: str) -> str:
        # the replacement and two other words of the title: a short query, as people type them
        others = [w for w in _TITLE_WORD.findall(title[:start] + " " + title[end:]) if len(w) >= 4]
        keep = sorted(rng.sample(range(len(others)), min(2, len(others))))
        return " ".join([replacement] + [others[i].lower() for i in keep])

    for pid, title in papers:
        if len(to_acr) < per_set and (m := form_re.search(title)):
            key = by_form.get(normalise(m.group(1)))
            if key:
                to_acr.append((short_query(title, m.start(), m.end(), key.upper()), pid))
                continue
        if len(to_long) < per_set:
            hit = next((m for m in acr_re.finditer(title) if m.group(1).lower() in dominant), None)
            if hit:
                form = dominant[hit.group(1).lower()]
                to_long.append((short_query(title, hit.start(), hit.end(), form), pid))
                continue
        if len(typo) < per_set:
            words = [w for w in _TITLE_WORD.findall(title) if len(w) >= 4]
            long_ones = [i for i, w in enumerate(words) if len(w) >= 6 and w.isalpha()]
            if len(words) >= 4 and long_ones:
                keep = sorted(rng.sample(range(len(words)), 4))
                candidates = [i for i in keep if i in long_ones]
                if candidates:
                    j = rng.choice(candidates)
                    chosen = [words[i] for i in keep]
                    clean.append((" ".join(chosen).lower(), pid))
                    chosen[keep.index(j)] = edit(words[j].lower(), rng)
                    typo.append((" ".join(chosen).lower(), pid))
        if min(len(to_acr), len(to_long), len(typo)) >= per_set:
            break
    return {"acronym_for_long_form": to_acr, "long_form_for_acronym": to_long, "typo": typo,
            "typo_clean": clean}


def score(engine: SearchEngine, queries: list[tuple[str, int]], mode: str) -> dict:
    recall = mrr = 0.0
    times = []
    for text, target in queries:
        t = time.perf_counter()
        ids = [pid for pid, _ in engine.retrieve(text, mode=mode, limit=10)]
        times.append(1000 * (time.perf_counter() - t))
        if target in ids:
            recall += 1
            mrr += 1 / (ids.index(target) + 1)
    n = max(1, len(queries))
    return {"recall@10": round(recall / n, 4), "mrr@10": round(mrr / n, 4),
            "p50_ms": round(statistics.median(times), 2) if times else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-set", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if not CORPUS.exists():
        print(json.dumps({"skipped": f"no corpus at {CORPUS}"}))
        return
    store, engine, dense = prepare()
    t = time.perf_counter()
    engine.update(dense=False, progress=lambda name, done, total: log(f"{name} {done}/{total}")
                  if done % 20_000 == 0 or done == total else None)
    index_s = time.perf_counter() - t
    lex = engine.lexical
    t = time.perf_counter()
    lex._recount_shorthand(store, lex.last_seq)  # what an index without its tables costs once
    tables_s = time.perf_counter() - t
    tables = lex.shorthand
    sets = query_sets(store, tables, args.per_set, random.Random(args.seed))
    modes = ["lexical", "hybrid"] if dense else ["lexical"]
    if dense:
        engine.warm()
    results: dict = {}
    for name, queries in sets.items():
        results[name] = {"queries": len(queries), "examples": [q for q, _ in queries[:3]]}
        for mode in modes:
            for on in (False, True):
                lex.expand = on
                engine.clear_query_cache()
                results[name][f"{mode} {'on' if on else 'off'}"] = score(engine, queries, mode)
    # Latency on bench/search_speed.py's queries (2-4 consecutive title words), each query embedded afresh.
    latency: dict = {}
    plain = [" ".join(words) for _, words in make_queries(store, 200, seed=42)]
    for mode in modes:
        for on in (False, True):
            lex.expand = on
            times = []
            for text in plain:
                engine.clear_query_cache()
                t = time.perf_counter()
                engine.retrieve(text, mode=mode, limit=100)
                times.append(1000 * (time.perf_counter() - t))
            latency[f"{mode} {'on' if on else 'off'}"] = {
                "p50_ms": round(statistics.median(times), 2),
                "p99_ms": round(statistics.quantiles(times, n=100)[98], 2)}
    lex.expand = True
    false_dym = sum(1 for q, _ in sets["typo_clean"] if lex.corrections(parse_query(q)))
    fixed = sum(1 for q, _ in sets["typo"] if lex.corrections(parse_query(q)))
    top = sorted(tables.pairs.items(), key=lambda kv: -sum(kv[1].values()))[:25]
    out = {
        "benchmark": "shorthand",
        "papers": lex.count(),
        "lexical_index_seconds_this_run": round(index_s, 1),  # ~0 when bench/.cache held the index
        "tables_recount_seconds": round(tables_s, 1),
        "tables_file_mib": round((lex.path / FILE).stat().st_size / 2**20, 1),
        "acronyms": len(tables.pairs),
        "acronyms_used": sum(1 for forms in tables.pairs.values() if max(forms.values()) >= MIN_PAIR),
        "vocabulary": len(tables.vocab),
        "top_acronyms": {k: sorted(v.items(), key=lambda fn: -fn[1])[:3] for k, v in top},
        "typo_queries_with_a_did_you_mean": round(fixed / max(1, len(sets["typo"])), 4),
        "clean_queries_with_a_did_you_mean": round(false_dym / max(1, len(sets["typo_clean"])), 4),
        "results": results,
        "latency_search_speed_queries": latency,
        "machine": describe(),
    }
    engine.close()
    store.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
