"""The extractors of paperradar.extract on the 119k-paper corpus: how often each fires, how fast, and
how well the summary matches Hugging Face's reference summaries (ROUGE-L).

    python bench/extract.py [CORPUS] [--write-sample]

Prints JSON; the committed result is bench/results/extract.json. Skips (exit 0, message) if the corpus
is absent. ``--write-sample`` (re)draws the fixed-seed sample for checking by hand into
bench/results/extract_checked.jsonl -- it overwrites the judgements, so it is off by default; without
it the precision is read from the judged file.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

from _machine import describe

from paperradar.extract import code_links, split_sentences, summary, venue

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "data" / "corpus" / "arxiv-119k.jsonl.gz"
HF_FIXTURES = ROOT / "tests" / "fixtures" / "hf_daily_papers"
CHECKED = ROOT / "bench" / "results" / "extract_checked.jsonl"
SEED = 20260530
PER_EXTRACTOR = 100


# -- ROUGE-L (LCS-based F1 over lower-cased word tokens) ------------------------------------------

_TOKEN = re.compile(r"[a-z0-9]+")


def _lcs(a: list[str], b: list[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(candidate: str, reference: str) -> float:
    c, r = _TOKEN.findall(candidate.lower()), _TOKEN.findall(reference.lower())
    if not c or not r:
        return 0.0
    lcs = _lcs(c, r)
    if not lcs:
        return 0.0
    p, rec = lcs / len(c), lcs / len(r)
    return 2 * p * rec / (p + rec)


# -- Summary methods compared --------------------------------------------------------------------

_STOP = frozenset(
    "a an the of and or in on for to with by we our is are be this that these from as at it its can "
    "which their via than into not has have been also show results".split()
)


def first_sentence(abstract: str) -> str | None:
    s = split_sentences(abstract)
    return s[0] if s else None


def last_sentence(abstract: str) -> str | None:
    s = split_sentences(abstract)
    return s[-1] if s else None


def centroid(abstract: str) -> str | None:
    """The sentence sharing the most content words with the rest of the abstract (length-normalised)."""
    s = split_sentences(abstract)
    if not s:
        return None
    bags = [{w for w in _TOKEN.findall(x.lower()) if w not in _STOP} for x in s]
    counts = collections.Counter(w for b in bags for w in b)
    return s[max(range(len(s)), key=lambda i: sum(counts[w] - 1 for w in bags[i]) / (len(bags[i]) + 5))]


METHODS = {"first sentence": first_sentence, "last sentence": last_sentence, "centroid overlap": centroid,
           "cue phrases (extract.summary)": summary}


def hf_references() -> list[tuple[str, str]]:
    pairs = []
    for path in sorted(HF_FIXTURES.glob("*.json")):
        for item in json.loads(path.read_text()):
            paper = item.get("paper", item)
            if paper.get("ai_summary") and paper.get("summary"):
                pairs.append((paper["summary"], paper["ai_summary"]))
    return pairs


def rouge_table(pairs: list[tuple[str, str]]) -> dict:
    out = {}
    for name, fn in METHODS.items():
        scores = [rouge_l(fn(abstract) or "", ref) for abstract, ref in pairs]
        out[name] = {"rouge_l_f1_mean": round(statistics.fmean(scores), 4) if scores else None,
                     "n": len(scores)}
    return out


# -- Corpus ------------------------------------------------------------------------------------------

def read_corpus(path: str) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def timed(fn, args: list[tuple]) -> tuple[list, float]:
    t = time.perf_counter()
    out = [fn(*a) for a in args]
    return out, (time.perf_counter() - t) / max(len(args), 1) * 1e6


def snippet_links(r: dict) -> str:
    text = (r.get("abstract") or "") + "\n" + (r.get("comment") or "")
    parts = []
    for m in re.finditer(r"https?:|github|huggingface|hf\.co|gitlab|codeberg|bitbucket|4open", text, re.I):
        parts.append((max(0, m.start() - 80), m.end() + 120))
    merged: list[list[int]] = []
    for a, b in parts:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return " … ".join(" ".join(text[a:b].split()) for a, b in merged)


def write_sample(records: list[dict], links: list, venues: list) -> None:
    rng = random.Random(SEED)
    with_links = [i for i, x in enumerate(links) if x]
    with_venue = [i for i, x in enumerate(venues) if x is not None]
    rows = []
    for i in sorted(rng.sample(with_links, min(PER_EXTRACTOR, len(with_links)))):
        r = records[i]
        rows.append({"extractor": "code_links", "id": r["id"], "snippet": snippet_links(r),
                     "output": [[x.kind, x.url] for x in links[i]]})
    for i in sorted(rng.sample(with_venue, min(PER_EXTRACTOR, len(with_venue)))):
        r, v = records[i], venues[i]
        comment = " ".join((r.get("comment") or "").split())
        rows.append({"extractor": "venue", "id": r["id"], "snippet": comment,
                     "output": {"name": v.name, "year": v.year, "note": v.note, "text": v.text}})
    with open(CHECKED, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def precision() -> dict:
    if not CHECKED.exists():
        return {}
    out: dict[str, dict] = {}
    for line in CHECKED.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if "correct" not in row:
            continue
        d = out.setdefault(row["extractor"], {"checked": 0, "correct": 0})
        d["checked"] += 1
        d["correct"] += bool(row["correct"])
    for d in out.values():
        d["precision"] = round(d["correct"] / d["checked"], 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", default=str(DEFAULT))
    ap.add_argument("--write-sample", action="store_true")
    args = ap.parse_args()
    pairs = hf_references()
    result: dict = {"benchmark": "extract", "machine": describe(), "summary_rouge_l": rouge_table(pairs)}
    if not Path(args.corpus).exists():
        result["skipped"] = f"corpus not found: {args.corpus}"
        print(json.dumps(result, indent=2))
        return
    records = read_corpus(args.corpus)
    n = len(records)
    # Best of three passes per extractor: a shared 2-core machine is noisy.
    link_args = [(r.get("abstract") or "", r.get("comment")) for r in records]
    venue_args = [(r.get("comment"), r.get("journal_ref")) for r in records]
    sum_args = [(r.get("abstract") or "",) for r in records]
    us = {}
    for name, fn, a in (("code_links", code_links, link_args), ("venue", venue, venue_args),
                        ("summary", summary, sum_args)):
        runs = [timed(fn, a) for _ in range(3)]
        us[name] = round(min(t for _, t in runs), 2)
        if name == "code_links":
            links = runs[0][0]
        elif name == "venue":
            venues = runs[0][0]
        else:
            sums = runs[0][0]
        print(f"{name}: {us[name]} µs/paper", file=sys.stderr)
    us["all_three"] = round(sum(us.values()), 2)

    kinds = collections.Counter()
    for ls in links:
        for k in {x.kind for x in ls}:
            kinds[k] += 1
    known = sum(1 for v in venues if v is not None and v.name)
    unknown = sum(1 for v in venues if v is not None and not v.name)
    top = collections.Counter(v.name for v in venues if v is not None and v.name)
    notes = collections.Counter(v.note for v in venues if v is not None and v.note)
    with_comment = sum(1 for r in records if r.get("comment"))
    result.update({
        "corpus": Path(args.corpus).name,
        "papers": n,
        "papers_with_comment": with_comment,
        "code_links": {
            "share_any": round(sum(1 for x in links if x) / n, 4),
            "share_by_kind": {k: round(c / n, 4) for k, c in kinds.most_common()},
            "papers_by_kind": dict(kinds.most_common()),
            "links_total": sum(len(x) for x in links),
        },
        "venue": {
            "share_known": round(known / n, 4),
            "share_unknown_text": round(unknown / n, 4),
            "share_of_commented_known_or_unknown": round((known + unknown) / max(with_comment, 1), 4),
            "papers_known": known,
            "papers_unknown_text": unknown,
            "top20": top.most_common(20),
            "notes": dict(notes.most_common()),
        },
        "summary": {"share": round(sum(1 for s in sums if s) / n, 4)},
        "us_per_paper": us,
        # a shared 2-core machine: the load during the run explains most of the spread between runs
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "precision_by_hand": precision(),
    })
    if args.write_sample:
        write_sample(records, links, venues)
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
