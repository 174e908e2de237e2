"""`paperradar sync --backfill` throughput, and the projected time for all of arXiv cs (~700k papers) on this
machine.

    PYTHONPATH=. python bench/backfill.py [--papers 4000] [--project 700000]

A backfill is three costs, measured here one by one on real arXiv metadata (the 119k corpus in
../shared/data/corpus/; skips cleanly without it):

1. **Harvest**: OAI-PMH ListRecords pages of 1,000 records (arXiv's page size), at arXiv's 1 request / 3 s.
   The pages come from tests/feeds.py (the recorded OAI-PMH shape, filled with the corpus's records) through
   httpx's mock transport, so the 3-second waits are counted (PoliteClient's sleep is recorded, not slept)
   and the parse + store work is timed for real: `sync.sync(..., since=...)`, the same code as the CLI.
2. **Embedding** of every new abstract (the only cost that must grow with the change): `SearchEngine.update`
   with the default model and truncation (256 tokens), timed for real; plus how much of the model's work is
   padding when batches of 32 are formed after sorting by length within the update's chunks of 256 papers
   (what the code does), within whole saves of 4,096, or not at all.
3. The lexical index and the HNSW graph (timed, small).

Prints JSON; the committed result is bench/results/backfill.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # tests/feeds.py: recorded OAI

from _machine import describe
from feeds import FakeTime, RecordedFeeds, client_factory, listing_days

from paperradar import config, sync
from paperradar.search import EMBED_CHUNK, SAVE_EVERY, SearchEngine, paper_text
from paperradar.store import Store

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus" / "arxiv-119k.jsonl.gz"
FOLLOWED = ("cs.CL", "cs.CV", "cs.AI", "cs.LG")
OAI_PAGE = 1000  # records per ListRecords page, as arXiv serves them
ARXIV_INTERVAL = 3.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load(n: int) -> list[dict]:
    """The first ``n`` corpus records listed in a followed category, evenly spread over the file."""
    rows = []
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row.get("listing_date") and row.get("categories") and row["categories"][0] in FOLLOWED:
                rows.append(row)
    step = max(len(rows) // n, 1)
    return rows[::step][:n]


def padding(lengths: list[int], window: int | None, batch: int = 32) -> float:
    """The share of the token slots in batches of ``batch`` that are padding, when texts are sorted by length
    within windows of ``window`` texts (None: not sorted)."""
    real = padded = 0
    step = window or len(lengths)
    for start in range(0, len(lengths), step):
        group = lengths[start:start + step]
        if window:
            group = sorted(group)
        for b in range(0, len(group), batch):
            chunk = group[b:b + batch]
            real += sum(chunk)
            padded += max(chunk) * len(chunk)
    return round(1 - real / padded, 4)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--papers", type=int, default=4000)
    ap.add_argument("--project", type=int, default=700_000, help="papers of the projection (arXiv cs)")
    args = ap.parse_args()
    if not CORPUS.is_file():
        print(json.dumps({"benchmark": "backfill", "skipped": f"{CORPUS} is absent"}))
        return
    rows = load(args.papers)
    days = listing_days(dt.date(2026, 6, 1), 20)
    feeds = RecordedFeeds(days, page_size=OAI_PAGE, papers=rows)
    feeds.today = days[-1]
    fake = FakeTime()
    out: dict = {"benchmark": "backfill", "papers": len(rows), "followed": list(FOLLOWED),
                 "oai_page_records": OAI_PAGE, "machine": describe()}
    with tempfile.TemporaryDirectory() as tmp:
        settings = config.load(env={}, data_dir=tmp).replace(
            sync_categories=",".join(FOLLOWED), sync_hf=False, arxiv_oai_url="http://oai.test/oai")
        store = Store(Path(tmp) / "paperradar.sqlite3")
        now = dt.datetime.combine(days[-1], dt.time(12), tzinfo=dt.UTC)
        log(f"harvesting {len(rows):,} papers in {len(FOLLOWED)} sets ...")
        t = time.perf_counter()
        report = sync.sync(store, settings, now, since=days[0].isoformat(), only=["arxiv"],
                           client_factory=client_factory(feeds, fake))
        harvest_s = time.perf_counter() - t
        (run,) = report.runs
        assert run.status == "ok", run.error
        requests = feeds.counts["arxiv"]
        records = run.added + run.updated + run.unchanged
        out["harvest"] = {
            "requests": requests, "records_served": records, "papers_added": run.added,
            "cross_listed_repeats": records - run.added,
            "parse_and_store_s": round(harvest_s, 2),
            "records_per_s_parse_and_store": round(records / harvest_s),
            "politeness_wait_s": round(fake.slept, 1),
        }
        log(f"harvest: {out['harvest']}")

        engine = SearchEngine(store)
        engine.embedder  # noqa: B018 - load the model outside the timing
        papers = store.changed_since(0, limit=len(rows) + 10)
        tok = engine.embedder._tok
        lengths = [len(e.ids) for e in tok.encode_batch([paper_text(p) for p in papers])]
        out["tokens_per_paper"] = {"median": statistics.median(lengths), "max": max(lengths),
                                   "truncation": engine.embedder.max_length}
        out["padding_share"] = {f"sorted_within_{EMBED_CHUNK}": padding(lengths, EMBED_CHUNK),
                                f"sorted_within_{SAVE_EVERY}": padding(lengths, SAVE_EVERY),
                                "unsorted": padding(lengths, None)}
        log("indexing (embedding every abstract) ...")
        t = time.perf_counter()
        counts = engine.update()
        index_s = time.perf_counter() - t
        out["index"] = {"papers_embedded": counts["vectors"], "lexical_indexed": counts["lexical"],
                        "seconds": round(index_s, 1),
                        "papers_per_s": round(counts["vectors"] / index_s, 1)}
        log(f"index: {out['index']}")
        engine.close()
        store.close()

    n = args.project
    per_record = harvest_s / records
    repeat = records / run.added  # cross-listed papers come once per followed set
    pages = n * repeat / OAI_PAGE
    harvest = max(pages * ARXIV_INTERVAL, n * repeat * per_record)
    embed = n / out["index"]["papers_per_s"]
    out["projection"] = {
        "papers": n,
        "assumes": "the same mix of abstract lengths and cross-listing as this sample; harvest bound by "
                   "arXiv's 1 request / 3 s or by parsing, whichever is slower (arXiv's own response time "
                   "comes on top); embedding on this machine's cores",
        "harvest_h": round(harvest / 3600, 2),
        "embedding_h": round(embed / 3600, 2),
        "total_h": round((harvest + embed) / 3600, 2),
        "gpu": "not measured: no GPU machine was lent to this task",
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
