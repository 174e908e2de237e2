"""The paper store: one SQLite file (WAL), numbered migrations, and all SQL of paperradar.

The store is the source of truth; every index is derived from it. Each insert or real change of a paper
takes the next value of a monotonic change sequence (``papers.seq``), so a derived index catches up with
``changed_since(n)`` instead of rescanning, and rebuilds from scratch with ``changed_since(0)``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import config
from .errors import NotFound, PaperradarError, StoreError
from .merge import COLUMNS, merge_paper, paper_to_row
from .models import Paper, normalize_title, parse_arxiv_id

# Numbered migrations; each runs once, in order, recorded in schema_migrations. Never edit a released one:
# append a new one.
MIGRATIONS: list[tuple[str, str]] = [
    (
        "papers",
        """
        CREATE TABLE papers (
            id INTEGER PRIMARY KEY,          -- stable integer id, used by derived indexes
            key TEXT NOT NULL UNIQUE,        -- arXiv id without version, or doi:..., or title:...
            arxiv_id TEXT,
            version INTEGER,
            title TEXT NOT NULL,
            title_norm TEXT NOT NULL,
            abstract TEXT NOT NULL DEFAULT '',
            authors TEXT NOT NULL DEFAULT '[]',     -- JSON array, in order
            categories TEXT NOT NULL DEFAULT '[]',  -- JSON array, primary first
            primary_category TEXT,
            submitted TEXT,
            updated TEXT,
            announced TEXT,
            comment TEXT,
            journal_ref TEXT,
            doi TEXT,
            abs_url TEXT,
            pdf_url TEXT,
            sources TEXT NOT NULL DEFAULT '[]',     -- JSON array of contributing source names
            meta_rank INTEGER NOT NULL DEFAULT 0,   -- authority of the source that set the metadata
            upvotes INTEGER,
            first_seen TEXT NOT NULL,
            seq INTEGER NOT NULL                    -- change sequence: bumped on every real change
        );
        CREATE INDEX papers_seq ON papers(seq);
        CREATE INDEX papers_title_norm ON papers(title_norm);
        CREATE INDEX papers_doi ON papers(lower(doi));
        CREATE INDEX papers_announced ON papers(announced);
        -- every normalized title a paper has been seen with, so a saved page still finds its paper
        -- after arXiv renamed it in a new version
        CREATE TABLE titles (
            title_norm TEXT NOT NULL,
            paper_id INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
            PRIMARY KEY (title_norm, paper_id)
        ) WITHOUT ROWID;
        -- where a record without an arXiv id (key title:... or doi:...) from a source was merged, so
        -- re-ingesting it lands on the same paper even when several papers share its title
        CREATE TABLE record_links (
            source TEXT NOT NULL,
            record_key TEXT NOT NULL,
            paper_id INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
            PRIMARY KEY (source, record_key)
        ) WITHOUT ROWID;
        CREATE TABLE state (
            key TEXT PRIMARY KEY,   -- 'seq' (last change sequence), harvest checkpoints, index cursors
            value TEXT NOT NULL
        );
        INSERT INTO state(key, value) VALUES ('seq', '0');
        """,
    ),
    (
        "votes",
        """
        -- Local votes, one row per (paper, voter). Imported votes (Hugging Face upvotes) stay in
        -- papers.upvotes, the count the source reported. A paper's vote total is papers.upvotes plus its
        -- rows here. `voter` is 'user:<id>' for a local account (the accounts feature). Other prefixes are
        -- free for future voters (e.g. another instance).
        CREATE TABLE votes (
            paper_id INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
            voter TEXT NOT NULL,
            created TEXT NOT NULL,
            PRIMARY KEY (paper_id, voter)
        ) WITHOUT ROWID;
        CREATE INDEX votes_voter ON votes(voter);
        CREATE INDEX papers_submitted ON papers(submitted);
        """,
    ),
    (
        "subscriptions",
        """
        -- Digest subscribers. status: pending (until the address owner confirms), active, unsubscribed,
        -- bouncing (permanent delivery failures). Every mailed link is signed over the id and `nonce`.
        CREATE TABLE subscribers (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE COLLATE NOCASE,
            status TEXT NOT NULL DEFAULT 'pending',
            trending INTEGER NOT NULL DEFAULT 1,
            max_papers INTEGER NOT NULL DEFAULT 10,
            hour INTEGER NOT NULL DEFAULT 8,
            tz TEXT NOT NULL DEFAULT 'UTC',
            nonce TEXT NOT NULL,
            created TEXT NOT NULL,
            confirmed TEXT,
            last_digest_day TEXT,       -- the subscriber's local day of the last digest composed
            last_listing_day TEXT,      -- the newest listing day that digest covered
            bounces INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE saved_searches (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            query TEXT NOT NULL
        );
        CREATE INDEX saved_searches_subscriber ON saved_searches(subscriber_id);
        -- Every mail, composed once and sent at most once. (subscriber, kind, day) is unique: a digest
        -- day cannot be composed twice, whatever runs at the same time.
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,                 -- confirm | digest
            day TEXT NOT NULL,
            recipient TEXT NOT NULL,
            message_id TEXT NOT NULL UNIQUE,
            message BLOB NOT NULL,              -- the whole RFC 5322 message
            status TEXT NOT NULL DEFAULT 'queued',  -- queued | sending | sent | failed
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt TEXT NOT NULL,
            claimed_by TEXT,
            claimed_at TEXT,
            last_error TEXT,
            created TEXT NOT NULL,
            sent_at TEXT,
            UNIQUE (subscriber_id, kind, day)
        );
        CREATE INDEX outbox_due ON outbox(status, next_attempt);
        -- subscribe requests, for the per-address and per-client rate limits
        CREATE TABLE subscribe_requests (
            email TEXT NOT NULL COLLATE NOCASE,
            client TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX subscribe_requests_email ON subscribe_requests(email, at);
        CREATE INDEX subscribe_requests_client ON subscribe_requests(client, at);
        """,
    ),
]

# a paper's vote total: the imported count plus its local votes
_VOTES = "coalesce(p.upvotes, 0) + (SELECT count(*) FROM votes v WHERE v.paper_id = p.id)"
_SELECT = "SELECT " + ", ".join(f"p.{c}" for c in ["id", *COLUMNS, "first_seen", "seq"]) + " FROM papers p"


@dataclass(frozen=True)
class StoredPaper:
    """A paper as the store holds it (the merge of every source that contributed it)."""

    id: int
    key: str
    arxiv_id: str | None
    version: int | None
    title: str
    abstract: str
    authors: list[str]
    categories: list[str]
    submitted: str | None
    updated: str | None
    announced: str | None
    comment: str | None
    journal_ref: str | None
    doi: str | None
    abs_url: str | None
    pdf_url: str | None
    sources: list[str]
    upvotes: int | None
    first_seen: str
    seq: int

    @property
    def primary_category(self) -> str | None:
        return self.categories[0] if self.categories else None

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class UpsertCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    keys: list[str] = field(default_factory=list, repr=False)

    def __iadd__(self, other: UpsertCounts) -> UpsertCounts:
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        return self


class QueryTimeout(PaperradarError):
    """A read ran past its time limit (see Store.time_limit)."""

    http_status = 503


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _chunks(items: list, n: int = 500) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


class Store:
    """A paperradar database. Use ``Store.open(data_dir)`` or ``Store(path)``; close() when done."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._tx_lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN ourselves, so a batch is exactly one transaction.
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA busy_timeout = 10000")
            mode = self.db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            # WAL + synchronous=NORMAL never corrupts on a process crash; only the very last commits may
            # be lost on power failure, and re-running an ingest redoes them.
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot open database {self.path}: {e}") from None
        if mode.lower() != "wal":
            raise StoreError(f"{self.path}: could not switch to WAL mode (got {mode})")
        self.migrate()
        self._owner = threading.get_ident()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()

    @property
    def _r(self) -> sqlite3.Connection:
        """The connection for reads: the main one in the thread that opened the store (so it sees its own
        open transaction), else one per thread — a web server's worker threads then read in parallel and
        never block the writer (WAL)."""
        if threading.get_ident() == self._owner:
            return self.db
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @contextmanager
    def time_limit(self, ms: int) -> Iterator[None]:
        """Abort this thread's reads that run longer than ``ms`` milliseconds with QueryTimeout (the web
        app wraps every request's reads in one, so no query can hold a worker for long)."""
        conn = self._r
        deadline = time.monotonic() + ms / 1000
        conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 1000)
        try:
            yield
        except sqlite3.OperationalError as e:
            if "interrupted" in str(e):
                raise QueryTimeout(f"the database query took longer than {ms} ms",
                                   hint="narrow the query or the date range") from None
            raise
        finally:
            conn.set_progress_handler(None, 0)

    @classmethod
    def open(cls, data_dir: str | Path | None = None) -> Store:
        return cls(config.data_dir(str(data_dir) if data_dir else None) / config.DB_FILENAME)

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- schema ------------------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply pending migrations; return the versions applied. Refuses a database from the future."""
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        done = {row[0] for row in self.db.execute("SELECT version FROM schema_migrations")}
        if done and max(done) > len(MIGRATIONS):
            raise StoreError(
                f"{self.path} has schema version {max(done)}, newer than this paperradar knows "
                f"({len(MIGRATIONS)})",
                hint="upgrade paperradar",
            )
        applied = []
        for version, (name, sql) in enumerate(MIGRATIONS, start=1):
            if version in done:
                continue
            with self.transaction():
                for statement in sql.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(
                    "INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, _now()),
                )
            applied.append(version)
        return applied

    def schema_version(self) -> int:
        return self.db.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction (BEGIN IMMEDIATE): all or nothing, one writer at a time.

        Threads sharing this Store take turns (the write connection is shared): without the lock a
        second thread would see the first one's open transaction and silently join it.
        """
        with self._tx_lock:
            if self.db.in_transaction:  # nested, in this thread: the outer transaction decides
                yield
                return
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    # -- state ---------------------------------------------------------------------------------------
    def get_state(self, key: str) -> dict | None:
        """A saved JSON state (harvest checkpoint, index cursor), or None."""
        row = self._r.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_state(self, key: str, value: dict) -> None:
        self.db.execute(
            "INSERT INTO state(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value, sort_keys=True)),
        )

    def _next_seq(self, n: int) -> int:
        """Reserve n change numbers inside the current transaction; returns the first."""
        last = int(self.db.execute("SELECT value FROM state WHERE key = 'seq'").fetchone()[0])
        self.db.execute("UPDATE state SET value = ? WHERE key = 'seq'", (str(last + n),))
        return last + 1

    def max_seq(self) -> int:
        return int(self._r.execute("SELECT value FROM state WHERE key = 'seq'").fetchone()[0])

    # -- papers: writing -----------------------------------------------------------------------------
    def upsert_papers(self, papers: Iterable[Paper]) -> UpsertCounts:
        """Insert or merge papers, idempotently; one transaction for the whole batch.

        Records for the same paper merge (see merge.merge_paper); a paper known only by title or DOI is
        re-keyed when it arrives with an arXiv id. Only real changes take a new change sequence number.
        """
        papers = list(papers)
        counts = UpsertCounts()
        if not papers:
            return counts
        with self.transaction():
            rows, by_title, by_doi, links = self._rows_for(papers)
            new_links: dict[tuple[str, str], int] = {}
            next_id = self.db.execute("SELECT coalesce(max(id), 0) + 1 FROM papers").fetchone()[0]
            inserts: dict[int, dict] = {}  # new rows of this batch, by id
            changed: dict[int, dict] = {}  # existing rows changed in this batch, by id
            aliases: set[tuple[str, int]] = set()  # (normalized title, id) pairs to remember
            for paper in papers:
                title_norm = normalize_title(paper.title)
                key = paper.key
                row = (links.get((paper.source, key)) or rows.get(key)
                       or self._match_without_key(paper, title_norm, by_title, by_doi))
                if row is None:
                    row = paper_to_row(paper)
                    row["id"], row["_titles"] = next_id, set()
                    next_id += 1
                    inserts[row["id"]] = row
                    rows[row["key"]] = row
                    counts.added += 1
                else:
                    new = merge_paper(row, paper)
                    if new is None:
                        counts.unchanged += 1
                    else:
                        if new.get("key", row["key"]) != row["key"]:
                            rows.pop(row["key"], None)
                            rows[new["key"]] = row
                        row.update(new)
                        if row["id"] not in inserts and row["id"] not in changed:
                            changed[row["id"]] = row
                            counts.updated += 1
                if not paper.arxiv_id and (paper.source, key) not in links:
                    links[(paper.source, key)] = row
                    new_links[(paper.source, key)] = row["id"]
                if row["doi"] and row not in by_doi.setdefault(row["doi"].lower(), []):
                    by_doi[row["doi"].lower()].append(row)
                if (title_norm, row["id"]) not in row["_titles"]:
                    row["_titles"].add((title_norm, row["id"]))
                    by_title.setdefault(title_norm, []).append(row)
                    aliases.add((title_norm, row["id"]))
            self._write(list(inserts.values()), list(changed.values()), aliases, new_links)
        return counts

    def _rows_for(self, papers: list[Paper]) -> tuple[dict, dict, dict, dict]:
        """Existing rows a batch may touch: by key, by any title they had, by DOI (lower case), and by
        (source, record key) link for records without an arXiv id."""
        keys = list({p.key for p in papers})
        titles = list({normalize_title(p.title) for p in papers})
        dois = list({p.doi.strip().lower() for p in papers if p.doi})
        cols = ["id", *COLUMNS, "first_seen", "seq"]
        rows: dict[str, dict] = {}

        def row_of(r: tuple) -> dict:
            if r[1] not in rows:
                rows[r[1]] = dict(zip(cols, r, strict=True), _titles=set())
            return rows[r[1]]

        for chunk in _chunks(keys):
            for r in self.db.execute(_SELECT + f" WHERE p.key IN ({','.join('?' * len(chunk))})", chunk):
                row_of(r)
        for chunk in _chunks(dois):
            q = _SELECT + f" WHERE lower(p.doi) IN ({','.join('?' * len(chunk))})"
            for r in self.db.execute(q, chunk):
                row_of(r)
        by_title: dict[str, list[dict]] = {}
        sel = _SELECT.replace("SELECT ", "SELECT t.title_norm, ", 1) + " JOIN titles t ON t.paper_id = p.id"
        for chunk in _chunks(titles):
            for r in self.db.execute(sel + f" WHERE t.title_norm IN ({','.join('?' * len(chunk))})", chunk):
                row = row_of(r[1:])
                row["_titles"].add((r[0], row["id"]))
                by_title.setdefault(r[0], []).append(row)
        links: dict[tuple[str, str], dict] = {}
        keyless = list({(p.source, p.key) for p in papers if not p.arxiv_id})
        sel = _SELECT.replace("SELECT ", "SELECT l.source, l.record_key, ", 1) + \
            " JOIN record_links l ON l.paper_id = p.id"
        for chunk in _chunks(keyless, 250):
            where = " OR ".join(["(l.source = ? AND l.record_key = ?)"] * len(chunk))
            for r in self.db.execute(sel + " WHERE " + where, [x for pair in chunk for x in pair]):
                links[(r[0], r[1])] = row_of(r[2:])
        by_doi: dict[str, list[dict]] = {}
        for row in rows.values():
            if row["doi"]:
                by_doi.setdefault(row["doi"].lower(), []).append(row)
        return rows, by_title, by_doi, links

    @staticmethod
    def _match_without_key(paper: Paper, title_norm: str, by_title: dict, by_doi: dict) -> dict | None:
        """Find the row a paper merges into when its own key is unknown: same DOI, else same title.

        A record with an arXiv id only merges into rows that have none yet (two arXiv ids are two
        papers), and likewise for DOIs. Among several candidates, one this source already
        contributed to wins, then the oldest, so that re-ingesting the same input picks the same row.
        """
        for candidates in (by_doi.get(paper.doi.strip().lower(), []) if paper.doi else [],
                           by_title.get(title_norm, [])):
            if paper.arxiv_id:
                candidates = [r for r in candidates if not r["arxiv_id"]]
            if paper.doi:  # two DOIs are two works, even under one title
                doi = paper.doi.strip().lower()
                candidates = [r for r in candidates if not r["doi"] or r["doi"].strip().lower() == doi]
            if candidates:
                return max(candidates, key=lambda r: (paper.source in r["sources"], -r["id"]))
        return None

    def _write(self, inserts: list[dict], changed: list[dict], aliases: set[tuple[str, int]],
               links: dict[tuple[str, str], int]) -> None:
        n = len(inserts) + len(changed)
        if n:
            seq = self._next_seq(n)
            now = _now()
            for row in inserts:
                row["seq"], row["first_seen"] = seq, now
                seq += 1
            for row in changed:
                row["seq"] = seq
                seq += 1
        cols = ["id", *COLUMNS, "first_seen", "seq"]
        if inserts:
            self.db.executemany(
                f"INSERT INTO papers ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [tuple(r[c] for c in cols) for r in inserts],
            )
        if changed:
            sets = ", ".join(f"{c} = ?" for c in [*COLUMNS, "seq"])
            self.db.executemany(
                f"UPDATE papers SET {sets} WHERE id = ?",
                [tuple(r[c] for c in [*COLUMNS, "seq"]) + (r["id"],) for r in changed],
            )
        if aliases:
            self.db.executemany("INSERT OR IGNORE INTO titles(title_norm, paper_id) VALUES (?, ?)",
                                sorted(aliases))
        if links:
            self.db.executemany("INSERT OR IGNORE INTO record_links(source, record_key, paper_id) "
                                "VALUES (?, ?, ?)",
                                [(src, k, i) for (src, k), i in sorted(links.items())])

    # -- papers: reading -----------------------------------------------------------------------------
    @staticmethod
    def _stored(r: tuple) -> StoredPaper:
        d = dict(zip(["id", *COLUMNS, "first_seen", "seq"], r, strict=True))
        return StoredPaper(
            id=d["id"], key=d["key"], arxiv_id=d["arxiv_id"], version=d["version"], title=d["title"],
            abstract=d["abstract"], authors=json.loads(d["authors"]), categories=json.loads(d["categories"]),
            submitted=d["submitted"], updated=d["updated"], announced=d["announced"], comment=d["comment"],
            journal_ref=d["journal_ref"], doi=d["doi"], abs_url=d["abs_url"], pdf_url=d["pdf_url"],
            sources=json.loads(d["sources"]), upvotes=d["upvotes"], first_seen=d["first_seen"], seq=d["seq"],
        )

    def get(self, ref: str) -> StoredPaper:
        """A paper by key, arXiv id (any version suffix, or abs/pdf URL), DOI, or exact title."""
        ref = ref.strip()
        parsed = parse_arxiv_id(ref)
        candidates = [parsed[0]] if parsed else []
        candidates += [ref, "doi:" + ref.lower()]
        for key in candidates:
            r = self._r.execute(_SELECT + " WHERE key = ?", (key,)).fetchone()
            if r:
                return self._stored(r)
        r = self._r.execute(_SELECT + " WHERE lower(p.doi) = ?", (ref.lower(),)).fetchone()  # indexed
        if r is None:
            r = self._r.execute(_SELECT + " WHERE title_norm = ? ORDER BY submitted DESC, key LIMIT 1",
                                (normalize_title(ref),)).fetchone()
        if r:
            return self._stored(r)
        raise NotFound(f"no paper {ref!r} in the store", hint="try `paperradar stats` to see what is there")

    def get_many(self, ids: Iterable[int]) -> list[StoredPaper]:
        """Papers by integer id, in the order given (missing ids are left out)."""
        ids = list(ids)
        found: dict[int, StoredPaper] = {}
        for chunk in _chunks(ids):
            q = _SELECT + f" WHERE id IN ({','.join('?' * len(chunk))})"
            for r in self._r.execute(q, chunk):
                found[r[0]] = self._stored(r)
        return [found[i] for i in ids if i in found]

    # -- listing days and votes ------------------------------------------------------------------------
    def latest_day(self, until: str) -> str | None:
        """The most recent listing day (announced, else submitted; YYYY-MM-DD) on or before ``until``."""
        until_end = until + "\uffff"  # timestamps of that day sort after the bare date
        days = [self._r.execute(f"SELECT max({col}) FROM papers WHERE {col} <= ?", (until_end,)).fetchone()[0]
                for col in ("announced", "submitted")]
        days = [d[:10] for d in days if d]
        return max(days) if days else None

    def newest(self, limit: int = 20, offset: int = 0) -> list[StoredPaper]:
        """The most recently listed papers (by announcement day, else submission), newest first."""
        for col in ("announced", "submitted"):  # both indexed: no sort of the whole table
            rows = self._r.execute(_SELECT + f" WHERE {col} IS NOT NULL ORDER BY {col} DESC, id DESC "
                                   "LIMIT ? OFFSET ?", (limit, offset)).fetchall()
            if rows:
                return [self._stored(r) for r in rows]
        return []

    def trending_candidates(self, since: str, until: str) -> list[tuple[int, int, str]]:
        """(paper id, vote total, listing day) of papers listed from day ``since`` to ``until`` inclusive.

        The listing day is the announcement day, else the submission day; the vote total is the imported
        count (papers.upvotes) plus local votes.
        """
        end = until + "\uffff"
        # Two index range scans (announced; submitted of papers never announced), not one OR that
        # would walk every paper without an announcement date ("+" keeps SQLite off the announced index).
        return self._r.execute(
            f"SELECT p.id, {_VOTES}, substr(p.announced, 1, 10) FROM papers p "
            "WHERE p.announced >= ? AND p.announced <= ? "
            f"UNION ALL SELECT p.id, {_VOTES}, substr(p.submitted, 1, 10) FROM papers p "
            "WHERE p.submitted >= ? AND p.submitted <= ? AND +p.announced IS NULL",  # +: not that index
            (since, end, since, end)).fetchall()

    def vote_totals(self, ids: Iterable[int]) -> dict[int, int]:
        """Vote total (imported + local) per paper id."""
        out: dict[int, int] = {}
        for chunk in _chunks(list(ids)):
            out.update(self._r.execute(
                f"SELECT p.id, {_VOTES} FROM papers p WHERE p.id IN ({','.join('?' * len(chunk))})", chunk))
        return out

    def add_vote(self, paper_id: int, voter: str) -> bool:
        """Record a local vote; False if this voter already voted for this paper."""
        with self.transaction():
            if self.db.execute("SELECT 1 FROM papers WHERE id = ?", (paper_id,)).fetchone() is None:
                raise NotFound(f"no paper with id {paper_id}")
            cur = self.db.execute("INSERT OR IGNORE INTO votes(paper_id, voter, created) VALUES (?, ?, ?)",
                                  (paper_id, voter, _now()))
        return cur.rowcount == 1

    @property
    def subscriptions(self) -> SubscriptionStore:
        return SubscriptionStore(self)

    def remove_vote(self, paper_id: int, voter: str) -> bool:
        with self.transaction():
            cur = self.db.execute("DELETE FROM votes WHERE paper_id = ? AND voter = ?", (paper_id, voter))
        return cur.rowcount == 1

    def changed_since(self, seq: int, limit: int = 10_000) -> list[StoredPaper]:
        """Papers whose change sequence is above ``seq``, in sequence order (for incremental indexing)."""
        q = _SELECT + " WHERE seq > ? ORDER BY seq LIMIT ?"
        return [self._stored(r) for r in self._r.execute(q, (seq, limit))]

    def count_changed_since(self, seq: int) -> int:
        return self._r.execute("SELECT count(*) FROM papers WHERE seq > ?", (seq,)).fetchone()[0]

    def count(self) -> int:
        return self._r.execute("SELECT count(*) FROM papers").fetchone()[0]

    def stats(self, top: int = 20) -> dict:
        """Counts for `paperradar stats`: papers, by source, by primary category, by month."""
        db = self._r
        by_source = dict(db.execute(
            "SELECT s.value, count(*) FROM papers, json_each(papers.sources) AS s "
            "GROUP BY s.value ORDER BY count(*) DESC, s.value"
        ).fetchall())
        by_category = dict(db.execute(
            "SELECT coalesce(primary_category, '(none)'), count(*) FROM papers "
            "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT ?", (top,)
        ).fetchall())
        by_month = dict(db.execute(
            "SELECT substr(coalesce(announced, submitted, updated), 1, 7) AS m, count(*) FROM papers "
            "WHERE m IS NOT NULL GROUP BY m ORDER BY m DESC LIMIT ?", (top,)
        ).fetchall())
        papers, with_arxiv, with_upvotes = db.execute(
            "SELECT count(*), count(arxiv_id), count(upvotes) FROM papers"
        ).fetchone()
        return {
            "papers": papers,
            "with_arxiv_id": with_arxiv,
            "with_upvotes": with_upvotes,
            "change_seq": self.max_seq(),
            "by_source": by_source,
            "by_primary_category": by_category,
            "by_month": by_month,
            "database": str(self.path),
            "schema_version": self.schema_version(),
        }


# -- subscriptions and the outbox ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    status: str
    trending: bool
    max_papers: int
    hour: int
    tz: str
    nonce: str
    created: str
    confirmed: str | None
    last_digest_day: str | None
    last_listing_day: str | None
    bounces: int
    searches: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutboxMail:
    id: int
    subscriber_id: int
    kind: str
    day: str
    recipient: str
    message_id: str
    message: bytes
    attempts: int


_SUB_COLUMNS = ("id, email, status, trending, max_papers, hour, tz, nonce, created, confirmed, "
                "last_digest_day, last_listing_day, bounces")


class SubscriptionStore:
    """Subscribers, saved searches and the outbox, in the paper store's database (see Store.subscriptions).

    Claiming outbox mail is one UPDATE ... RETURNING inside BEGIN IMMEDIATE, so two senders (threads or
    processes) never claim the same mail.
    """

    def __init__(self, store: Store):
        self.store = store

    @property
    def db(self) -> sqlite3.Connection:
        return self.store.db

    def _sub(self, row: tuple) -> Subscriber:
        searches = tuple(q for (q,) in self.store._r.execute(
            "SELECT query FROM saved_searches WHERE subscriber_id = ? ORDER BY id", (row[0],)))
        return Subscriber(*row[:3], bool(row[3]), *row[4:], searches=searches)

    def get(self, subscriber_id: int) -> Subscriber | None:
        row = self.store._r.execute(f"SELECT {_SUB_COLUMNS} FROM subscribers WHERE id = ?",
                                    (subscriber_id,)).fetchone()
        return self._sub(row) if row else None

    def by_email(self, email: str) -> Subscriber | None:
        row = self.store._r.execute(f"SELECT {_SUB_COLUMNS} FROM subscribers WHERE email = ?",
                                    (email,)).fetchone()
        return self._sub(row) if row else None

    def active(self) -> list[Subscriber]:
        rows = self.store._r.execute(f"SELECT {_SUB_COLUMNS} FROM subscribers WHERE status = 'active' "
                                     "ORDER BY id").fetchall()
        searches: dict[int, list[str]] = {}
        for sid, q in self.store._r.execute(
                "SELECT s.subscriber_id, s.query FROM saved_searches s JOIN subscribers b "
                "ON b.id = s.subscriber_id WHERE b.status = 'active' ORDER BY s.id"):
            searches.setdefault(sid, []).append(q)
        return [Subscriber(*r[:3], bool(r[3]), *r[4:], searches=tuple(searches.get(r[0], ())))
                for r in rows]

    def count_by_status(self) -> dict[str, int]:
        return dict(self.store._r.execute("SELECT status, count(*) FROM subscribers GROUP BY status"))

    def upsert(self, email: str, *, trending: bool, searches: list[str], max_papers: int, hour: int, tz: str,
               nonce: str, now: str) -> Subscriber:
        """Create a pending subscriber, or update the preferences of an existing one (its status is kept:
        a new request for a confirmed address changes nothing until confirmed again)."""
        with self.store.transaction():
            row = self.db.execute("SELECT id, status FROM subscribers WHERE email = ?", (email,)).fetchone()
            if row is None:
                sid = self.db.execute(
                    "INSERT INTO subscribers(email, trending, max_papers, hour, tz, nonce, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (email, int(trending), max_papers, hour, tz, nonce, now)).lastrowid
            else:
                sid = row[0]
                if row[1] in ("unsubscribed", "bouncing"):  # starts over: pending until confirmed again
                    self.db.execute("UPDATE subscribers SET status = 'pending', bounces = 0, nonce = ? "
                                    "WHERE id = ?", (nonce, sid))
                    # digests still queued from before carry links signed with the old nonce: drop them
                    self.db.execute("UPDATE outbox SET status = 'failed', last_error = 'superseded: the "
                                    "subscriber started over' WHERE subscriber_id = ? AND kind = 'digest' "
                                    "AND status = 'queued'", (sid,))
            if row is None or row[1] != "active":
                self._set_preferences(sid, trending, searches, max_papers, hour, tz)
        return self.get(sid)

    def set_preferences(self, sid: int, *, trending: bool, searches: list[str], max_papers: int, hour: int,
                        tz: str) -> None:
        with self.store.transaction():
            self._set_preferences(sid, trending, searches, max_papers, hour, tz)

    def _set_preferences(self, sid, trending, searches, max_papers, hour, tz) -> None:
        self.db.execute("UPDATE subscribers SET trending = ?, max_papers = ?, hour = ?, tz = ? WHERE id = ?",
                        (int(trending), max_papers, hour, tz, sid))
        self.db.execute("DELETE FROM saved_searches WHERE subscriber_id = ?", (sid,))
        self.db.executemany("INSERT INTO saved_searches(subscriber_id, query) VALUES (?, ?)",
                            [(sid, q) for q in searches])

    def set_status(self, sid: int, status: str, *, now: str | None = None, nonce: str | None = None) -> None:
        with self.store.transaction():
            self.db.execute("UPDATE subscribers SET status = ?, confirmed = coalesce(?, confirmed), "
                            "nonce = coalesce(?, nonce) WHERE id = ?",
                            (status, now if status == "active" else None, nonce, sid))

    def record_request(self, email: str, client: str, now: str, since: str) -> tuple[int, int]:
        """Log a subscribe request; return how many this address and this client made since ``since``."""
        with self.store.transaction():
            self.db.execute("DELETE FROM subscribe_requests WHERE at < ?", (since,))
            self.db.execute("INSERT INTO subscribe_requests(email, client, at) VALUES (?, ?, ?)",
                            (email, client, now))
            count = "SELECT count(*) FROM subscribe_requests WHERE {} = ? AND at >= ?"
            by_email = self.db.execute(count.format("email"), (email, since)).fetchone()[0]
            by_client = self.db.execute(count.format("client"), (client, since)).fetchone()[0]
        return by_email, by_client

    # -- outbox ----------------------------------------------------------------------------------------------
    def enqueue(self, sid: int, kind: str, day: str, recipient: str, message_id: str, message: bytes,
                now: str, *, digest_cursor: tuple[str, str | None] | None = None) -> bool:
        """Queue a composed mail; False if (subscriber, kind, day) is already queued. A digest also moves
        the subscriber's digest cursor (day, listing day) in the same transaction."""
        with self.store.transaction():
            cur = self.db.execute(
                "INSERT OR IGNORE INTO outbox(subscriber_id, kind, day, recipient, message_id, message, "
                "next_attempt, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (sid, kind, day, recipient, message_id, message, now, now))
            if cur.rowcount and digest_cursor:
                self.db.execute("UPDATE subscribers SET last_digest_day = ?, "
                                "last_listing_day = coalesce(?, last_listing_day) WHERE id = ?",
                                (*digest_cursor, sid))
        return cur.rowcount == 1

    def has_mail(self, sid: int, kind: str, day: str) -> bool:
        return self.store._r.execute("SELECT 1 FROM outbox WHERE subscriber_id = ? AND kind = ? AND day = ?",
                                     (sid, kind, day)).fetchone() is not None

    def requeue_abandoned(self, now: str, lease_before: str, alive) -> int:
        """Put back mails whose sender died mid-send: its process is gone (``alive(claimed_by)`` False) or
        its lease ran out (claimed before ``lease_before``)."""
        with self.store.transaction():
            rows = self.db.execute("SELECT id, claimed_by, claimed_at FROM outbox WHERE status = 'sending'"
                                   ).fetchall()
            dead = [i for i, who, at in rows if at < lease_before or not alive(who)]
            self.db.executemany("UPDATE outbox SET status = 'queued', next_attempt = ?, claimed_by = NULL "
                                "WHERE id = ? AND status = 'sending'", [(now, i) for i in dead])
        return len(dead)

    def claim(self, worker: str, now: str) -> OutboxMail | None:
        """Take the next due mail for sending (status 'sending'), or None."""
        with self.store.transaction():
            row = self.db.execute(
                "UPDATE outbox SET status = 'sending', claimed_by = ?, claimed_at = ?, "
                "attempts = attempts + 1 "
                "WHERE id = (SELECT o.id FROM outbox o JOIN subscribers s ON s.id = o.subscriber_id "
                "WHERE o.status = 'queued' AND o.next_attempt <= ? "
                "AND (s.status = 'active' OR o.kind = 'confirm') "
                "ORDER BY o.next_attempt, o.id LIMIT 1) "
                "RETURNING id, subscriber_id, kind, day, recipient, message_id, message, attempts",
                (worker, now, now)).fetchone()
        return OutboxMail(*row) if row else None

    def mark_sent(self, mail_id: int, now: str) -> None:
        with self.store.transaction():
            self.db.execute("UPDATE outbox SET status = 'sent', sent_at = ?, last_error = NULL WHERE id = ?",
                            (now, mail_id))
            self.db.execute("UPDATE subscribers SET bounces = 0 WHERE id = "
                            "(SELECT subscriber_id FROM outbox WHERE id = ?)", (mail_id,))

    def mark_retry(self, mail_id: int, error: str, next_attempt: str) -> None:
        with self.store.transaction():
            self.db.execute("UPDATE outbox SET status = 'queued', claimed_by = NULL, last_error = ?, "
                            "next_attempt = ? WHERE id = ?", (error[:500], next_attempt, mail_id))

    def mark_failed(self, mail_id: int, error: str, *, bounce_limit: int) -> bool:
        """A permanent failure: the mail is given up; the subscriber is marked bouncing after
        ``bounce_limit`` of them in a row. Returns True if the subscriber is now bouncing."""
        with self.store.transaction():
            self.db.execute("UPDATE outbox SET status = 'failed', claimed_by = NULL, last_error = ? "
                            "WHERE id = ?", (error[:500], mail_id))
            sid = self.db.execute("SELECT subscriber_id FROM outbox WHERE id = ?", (mail_id,)).fetchone()[0]
            bounces = self.db.execute("UPDATE subscribers SET bounces = bounces + 1 WHERE id = ? "
                                      "RETURNING bounces", (sid,)).fetchone()[0]
            if bounces >= bounce_limit:
                self.db.execute("UPDATE subscribers SET status = 'bouncing' WHERE id = ?", (sid,))
                return True
        return False

    def outbox_counts(self) -> dict[str, int]:
        return dict(self.store._r.execute("SELECT status, count(*) FROM outbox GROUP BY status"))

    def mails(self, sid: int | None = None) -> list[tuple]:
        """(id, subscriber, kind, day, status, attempts, last_error) of outbox mails (operators, tests)."""
        q = "SELECT id, subscriber_id, kind, day, status, attempts, last_error FROM outbox"
        args: tuple = ()
        if sid is not None:
            q += " WHERE subscriber_id = ?"
            args = (sid,)
        return self.store._r.execute(q + " ORDER BY id", args).fetchall()
