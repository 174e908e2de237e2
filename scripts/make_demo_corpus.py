"""Rebuild paperradar/data/demo.jsonl.gz, the demo corpus bundled with the package.

Takes an even, deterministic sample of the recent ML / NLP / CV listings (primary category cs.CL, cs.CV,
cs.AI or cs.LG, listed from 2026-04-01 on) of ../shared/data/corpus/arxiv-119k.jsonl.gz. arXiv releases its
metadata under CC0, so the sample may ship inside the package.

    python scripts/make_demo_corpus.py [CORPUS] [--size 4000]
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_CORPUS = HERE.parent.parent / "shared" / "data" / "corpus" / "arxiv-119k.jsonl.gz"
OUT = HERE.parent / "paperradar" / "data" / "demo.jsonl.gz"
CATEGORIES = {"cs.CL", "cs.CV", "cs.AI", "cs.LG"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", default=str(DEFAULT_CORPUS))
    ap.add_argument("--size", type=int, default=4000)
    ap.add_argument("--since", default="2026-04-01")
    args = ap.parse_args()
    picked = []
    with gzip.open(args.corpus, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if (r.get("listing_date") or "") >= args.since and r["categories"][0] in CATEGORIES:
                picked.append(r)
    picked.sort(key=lambda r: (r["listing_date"], r["id"]))
    step = max(1, len(picked) // args.size)
    sample = picked[::step][: args.size]
    # mtime=0: the same input gives a byte-identical file.
    with open(OUT, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        for r in sample:
            gz.write((json.dumps(r, ensure_ascii=False) + "\n").encode())
    print(f"{len(sample)} of {len(picked)} papers -> {OUT} ({OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
