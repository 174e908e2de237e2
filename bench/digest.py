"""Digest throughput on the 119k-paper corpus: compose and send the daily digest of 10,000 subscribers with
3 saved searches each, to a local SMTP sink (aiosmtpd in a thread of this process).

    .venv/bin/python bench/digest.py [--subscribers 10000] [--searches 3] [--queries 8000] [--seed 1]
                                     [--profile]
    .venv/bin/python bench/digest.py > bench/results/digest.json

Uses the store and indexes that bench/search_speed.py built in bench/.cache/speed/ (run that first): the
SQLite file is copied (SQLite's backup API, from a read-only connection) into a temporary directory, where
the subscribers and the outbox are written; the indexes and the model are read in place, so the cache
stays as it was. Subscribers go straight into the store (SubscriptionStore.upsert + set_status active,
confirmed two days before), each with trending on, 10 papers per section, and 3 saved searches drawn from
a pool of ``--queries`` distinct queries (2-4 consecutive words of random corpus titles) with a Zipf-like
popularity, so popular searches repeat across subscribers (as they do) while the pool is larger than the
engine's query-embedding cache. Their time zones and hours make every digest due at ``now``, a morning
after the corpus's newest listing day (2026-07-01, 300 papers).

Timed separately: Digests.compose_due(now) (every digest into the outbox) and Digests.send_due(now)
(claim, SMTP, mark sent, one mail at a time, one SMTP session); the sink shares this process and its GIL
with the sender. The model load is excluded (a warm-up first). Prints JSON; the committed result is
bench/results/digest.json. --profile prints the compose step's top functions (cProfile) to stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import resource
import secrets
import shutil
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

from _machine import describe
from aiosmtpd.controller import Controller

from paperradar import config
from paperradar.clock import stamp
from paperradar.digest import Digests, Preferences
from paperradar.search import QUERY_CACHE, SearchEngine
from paperradar.store import Store

CACHE = Path(__file__).resolve().parent / ".cache" / "speed"
NOW = dt.datetime(2026, 7, 2, 13, 0, tzinfo=dt.UTC)  # Thursday: 09:00 in New York, 22:00 in Tokyo
# (time zone, latest hour of delivery that has come by NOW there)
ZONES = [("UTC", 9), ("Europe/London", 9), ("Europe/Paris", 9), ("Europe/Berlin", 9),
         ("America/New_York", 9), ("America/Chicago", 8), ("America/Los_Angeles", 6),
         ("America/Sao_Paulo", 9), ("Asia/Kolkata", 9), ("Asia/Shanghai", 9), ("Asia/Tokyo", 9),
         ("Australia/Sydney", 9)]
TARGET_S = 600  # 10,000 digests composed and sent within 10 minutes on 2 cores
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]+")
_OPERATORS = {"and", "or", "not"}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class Sink:
    """An SMTP server that accepts everything and keeps counts (not the messages)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = 0
        self.bytes = 0
        self.message_ids: set[bytes] = set()
        self.recipients: set[str] = set()
        self.papers = 0  # from the subjects ("N papers for you")

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content
        found = re.search(rb"^Message-ID: *(\S+)", content, re.M | re.I)
        papers = re.search(rb"^Subject: paperradar \S+: (\d+) papers", content, re.M)
        with self.lock:
            self.messages += 1
            self.bytes += len(content)
            self.message_ids.add(found.group(1) if found else b"")
            self.recipients.update(envelope.rcpt_tos)
            self.papers += int(papers.group(1)) if papers else 0
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_store(src: Path, dst: Path) -> None:
    """A consistent copy (WAL content included) that leaves the cached database untouched."""
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    target = sqlite3.connect(dst)
    with target:
        source.backup(target)
    source.close()
    target.close()


def query_pool(db: Path, n: int, rng: random.Random) -> list[str]:
    """n distinct searches: 2-4 consecutive words of random titles, with at least one word of 5+ letters."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    titles = [words for (title,) in con.execute("SELECT title FROM papers")
              if len(words := [w.lower() for w in _WORD.findall(title or "")
                               if w.lower() not in _OPERATORS]) >= 2]
    con.close()
    pool: dict[str, None] = {}
    while len(pool) < n:
        words = rng.choice(titles)
        k = rng.randint(2, min(4, len(words)))
        start = rng.randint(0, len(words) - k)
        span = words[start:start + k]
        if any(len(w) >= 5 for w in span):
            pool[" ".join(span)] = None
    return list(pool)


def add_subscribers(digests: Digests, n: int, searches: int, pool: list[str], rng: random.Random) -> int:
    """n active subscribers, in one transaction; returns how many distinct searches they saved."""
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(pool))]  # Zipf-like popularity
    confirmed = stamp(NOW - dt.timedelta(days=2))
    used: set[str] = set()
    with digests.store.transaction():
        for i in range(n):
            tz, latest_hour = rng.choice(ZONES)
            chosen: list[str] = []
            while len(chosen) < searches:
                q = rng.choices(pool, weights)[0]
                if q not in chosen:
                    chosen.append(q)
            used.update(chosen)
            p = Preferences(trending=True, searches=chosen, max_papers=10, hour=rng.randint(5, latest_hour),
                            tz=tz).validate()
            sub = digests.subs.upsert(f"reader{i:05d}@bench.example", trending=p.trending,
                                      searches=p.searches, max_papers=p.max_papers, hour=p.hour, tz=p.tz,
                                      nonce=secrets.token_hex(8), now=confirmed)
            digests.subs.set_status(sub.id, "active", now=confirmed)
    return len(used)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=10_000)
    ap.add_argument("--searches", type=int, default=3, help="saved searches per subscriber")
    ap.add_argument("--queries", type=int, default=8000, help="distinct searches in the pool")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", action="store_true", help="cProfile the compose step (stderr)")
    args = ap.parse_args()
    db = CACHE / "paperradar.sqlite3"
    if not db.exists():
        print(json.dumps({"skipped": f"no store at {db}: run bench/search_speed.py first"}))
        return
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="paperradar-digest-bench-"))
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        t = time.perf_counter()
        copy_store(db, tmp / "paperradar.sqlite3")
        store = Store(tmp / "paperradar.sqlite3")  # migrates the copy: subscribers, outbox
        copy_s = time.perf_counter() - t
        engine = SearchEngine(store, index_dir=CACHE / "index")
        settings = config.load({"PAPERRADAR_DATA_DIR": str(tmp), "PAPERRADAR_SMTP_HOST": "127.0.0.1",
                                  "PAPERRADAR_SMTP_PORT": str(controller.port),
                                  "PAPERRADAR_MAIL_FROM": "digest@paperradar.bench",
                                  "PAPERRADAR_SECRET_KEY": secrets.token_hex(16),
                                  "PAPERRADAR_BASE_URL": "https://papers.example.org"})
        digests = Digests(store, engine, settings)
        t = time.perf_counter()
        engine.warm()
        warm_s = time.perf_counter() - t
        pool = query_pool(db, args.queries, rng)
        t = time.perf_counter()
        distinct = add_subscribers(digests, args.subscribers, args.searches, pool, rng)
        insert_s = time.perf_counter() - t
        latest = store.latest_day(NOW.date().isoformat())
        listed = len(store.trending_candidates(latest, latest))
        log(f"{args.subscribers} subscribers ({distinct} distinct searches) in {insert_s:.1f} s; "
            f"composing for {latest} ({listed} papers listed)")

        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        t = time.perf_counter()
        composed = digests.compose_due(NOW)
        compose_s = time.perf_counter() - t
        if profiler:
            import pstats

            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
        cache = engine._embed_query.cache_info()
        log(f"composed {composed} in {compose_s:.1f} s; sending")
        t = time.perf_counter()
        counts = digests.send_due(NOW)
        send_s = time.perf_counter() - t
        log(f"sent {counts['sent']} in {send_s:.1f} s")
        outbox = store.subscriptions.outbox_counts()
        total_s = compose_s + send_s
        n = args.subscribers
        out = {
            "subscribers": n,
            "saved_searches_per_subscriber": args.searches,
            "saved_searches": n * args.searches,
            "distinct_searches": distinct,
            "query_pool": len(pool),
            # compose_due runs each distinct search once per run (over the same new papers), so every
            # distinct search is embedded once; the engine's LRU only helps across runs
            "query_embedding_cache": {"size": QUERY_CACHE, "hits": cache.hits, "misses": cache.misses},
            "corpus_papers": store.count(),
            "listing_day": latest,
            "papers_listed_that_day": listed,
            "now": NOW.isoformat(),
            "compose": {"digests": composed, "seconds": round(compose_s, 1),
                        "subscribers_per_s": round(composed / compose_s, 1)},
            "send": {**counts, "seconds": round(send_s, 1),
                     "subscribers_per_s": round(counts["sent"] / send_s, 1)},
            "together": {"seconds": round(total_s, 1), "subscribers_per_s": round(n / total_s, 1),
                         "target_seconds": TARGET_S, "within_target": total_s <= TARGET_S},
            "sink": {"mails_received": sink.messages, "distinct_message_ids": len(sink.message_ids),
                     "distinct_recipients": len(sink.recipients),
                     "mean_mail_kib": round(sink.bytes / max(sink.messages, 1) / 1024, 1),
                     "mean_papers_per_digest": round(sink.papers / max(sink.messages, 1), 1)},
            "outbox": outbox,
            "setup_seconds": {"copy_store": round(copy_s, 1), "model_warm_up": round(warm_s, 1),
                              "insert_subscribers": round(insert_s, 1)},
            "peak_rss_mib": round(peak_rss_mib(), 1),
            "machine": describe(),
        }
        store.close()
        print(json.dumps(out, indent=2))
    finally:
        controller.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
