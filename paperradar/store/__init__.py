"""The paper store: one SQLite file (WAL), numbered migrations, and all SQL of paperradar.

The store is the source of truth; every index is derived from it. Each insert or real change of a paper
takes the next value of a monotonic change sequence (``papers.seq``), so a derived index catches up with
``changed_since(n)`` instead of rescanning, and rebuilds from scratch with ``changed_since(0)``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .. import config
from ..clock import stamp
from ..errors import NotFound, PaperradarError, StoreError
from ..merge import COLUMNS, merge_paper, paper_to_row
from ..models import Paper, normalize_title, parse_arxiv_id
from .accounts import AccountStore, Marks, Tag, User
from .schema import MIGRATIONS
from .subscriptions import OutboxMail, Subscriber, SubscriptionStore
from .sync import SyncRun, SyncStore

__all__ = ["MIGRATIONS", "AccountStore", "Marks", "OutboxMail", "QueryTimeout", "Store", "StoredPaper",
           "Subscriber", "SubscriptionStore", "SyncRun", "SyncStore", "Tag", "UpsertCounts", "User"]

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
    hf_comments: int | None = None
    hf_summary: str | None = None  # Hugging Face's AI summary and keywords (labelled as theirs)
    hf_keywords: list[str] = field(default_factory=list)
    organization: dict | None = None  # {"name", "fullname"} from Hugging Face
    code_url: str | None = None  # the repository a source named
    project_url: str | None = None
    github_stars: int | None = None
    links: list[dict] = field(default_factory=list)  # derived: [{"url", "kind", "host"}] (paperradar.extract)
    venue: dict | None = None  # derived: {"name", "year", "note", "text"}

    @property
    def tldr(self) -> tuple[str, str] | None:
        """(one-sentence summary, where it comes from): Hugging Face's AI summary where it gave one
        ("huggingface"), else the abstract's sentence that states the contribution ("abstract")."""
        if self.hf_summary:
            return self.hf_summary, "huggingface"
        from ..extract import summary

        found = summary(self.abstract)
        return (found, "abstract") if found else None

    @property
    def venue_label(self) -> str | None:
        """"NeurIPS 2025 (oral)", "Findings of ACL 2025"-like text of the venue, or its text as written."""
        v = self.venue
        if not v:
            return None
        if not v.get("name"):
            return v.get("text")
        label = f"{v['name']} {v['year']}" if v.get("year") else v["name"]
        return f"{label} ({v['note']})" if v.get("note") else label

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


def _create_private(path: Path) -> None:
    """Create an empty database file (a valid, empty SQLite database) readable by its owner only, unless it
    exists: it holds e-mail addresses and what each person reads. SQLite gives the -wal and -shm files it
    makes the database file's permissions. (Not umask: that is the whole process's, other threads'
    files included.)"""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


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
            _create_private(self.path)
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
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self.migrate()

    @property
    def _r(self) -> sqlite3.Connection:
        """The connection for reads: the write connection inside this thread's transaction (so a multi-step
        operation reads what it is about to change, and sees its own writes), else one connection per
        thread — a web server's worker threads then read in parallel, never block the writer (WAL), and
        never see another thread's uncommitted writes."""
        if getattr(self._local, "tx", False):
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

    def in_transaction(self) -> bool:
        """Whether this thread is inside :meth:`transaction`."""
        return bool(getattr(self._local, "tx", False))

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
        for version, (name, step) in enumerate(MIGRATIONS, start=1):
            if version in done:
                continue
            with self.transaction():
                if callable(step):  # a data migration, in Python (see schema.py)
                    step(self.db, self.path)
                else:
                    for statement in step.split(";"):
                        if statement.strip():
                            self.db.execute(statement)
                self.db.execute(
                    "INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, stamp()),
                )
            applied.append(version)
        return applied

    def schema_version(self) -> int:
        return self.db.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction (BEGIN IMMEDIATE): all or nothing, one writer at a time.

        Every write goes through one of these, and so does every multi-step operation of the core (check,
        then write): threads sharing this Store take turns (the write connection is shared; without the
        lock a second thread would see the first one's open transaction and silently join it), and other
        processes wait on SQLite's lock. Inside, this thread's reads use the write connection. Nested, in
        this thread: the outer transaction decides. Keep slow work (parsing, mail, embedding) outside.
        """
        with self._tx_lock:
            if getattr(self._local, "tx", False):
                yield
                return
            self.db.execute("BEGIN IMMEDIATE")
            self._local.tx = True
            try:
                yield
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:  # also when COMMIT itself failed: never leave it open
                    self.db.execute("ROLLBACK")
                raise
            finally:
                self._local.tx = False

    # -- state ---------------------------------------------------------------------------------------
    def get_state(self, key: str) -> dict | None:
        """A saved JSON state (harvest checkpoint, index cursor), or None."""
        row = self._r.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_state(self, key: str, value: dict) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT INTO state(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value, sort_keys=True)),
            )

    def delete_state(self, key: str) -> None:
        with self.transaction():
            self.db.execute("DELETE FROM state WHERE key = ?", (key,))

    def states_with_prefix(self, prefix: str) -> dict[str, dict]:
        """Every saved state whose key starts with ``prefix`` (e.g. the open alerts)."""
        rows = self._r.execute("SELECT key, value FROM state WHERE key >= ? AND key < ?",
                               (prefix, prefix + "\uffff")).fetchall()
        return {k: json.loads(v) for k, v in rows}

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
            now = stamp()
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
            hf_comments=d["hf_comments"], hf_summary=d["hf_summary"],
            hf_keywords=json.loads(d["hf_keywords"]),
            organization=json.loads(d["organization"]) if d["organization"] else None,
            code_url=d["code_url"], project_url=d["project_url"], github_stars=d["github_stars"],
            links=json.loads(d["links"]), venue=json.loads(d["venue"]) if d["venue"] else None,
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

    def find(self, arxiv_id: str | None = None, doi: str | None = None,
             title: str | None = None) -> StoredPaper | None:
        """The paper with this arXiv id (bare, no version), else this DOI, else a title it has been seen
        with (the most recent such paper); None if none matches. For matching outside references."""
        if arxiv_id:
            r = self._r.execute(_SELECT + " WHERE key = ?", (arxiv_id,)).fetchone()
            if r:
                return self._stored(r)
        if doi:
            r = self._r.execute(_SELECT + " WHERE lower(p.doi) = ?", (doi.lower(),)).fetchone() or \
                self._r.execute(_SELECT + " WHERE key = ?", ("doi:" + doi.lower(),)).fetchone()
            if r:
                return self._stored(r)
        norm = normalize_title(title) if title else ""
        if norm:
            r = self._r.execute(_SELECT + " WHERE p.id IN (SELECT paper_id FROM titles WHERE title_norm = ?) "
                                "ORDER BY p.submitted DESC, p.id DESC LIMIT 1", (norm,)).fetchone()
            if r:
                return self._stored(r)
        return None

    def get_many(self, ids: Iterable[int]) -> list[StoredPaper]:
        """Papers by integer id, in the order given (missing ids are left out)."""
        ids = list(ids)
        found: dict[int, StoredPaper] = {}
        for chunk in _chunks(ids):
            q = _SELECT + f" WHERE id IN ({','.join('?' * len(chunk))})"
            for r in self._r.execute(q, chunk):
                found[r[0]] = self._stored(r)
        return [found[i] for i in ids if i in found]

    def listing_days(self, ids: Iterable[int]) -> dict[int, str | None]:
        """{id: the day a paper was listed (announced, else submitted, else updated; YYYY-MM-DD) or None},
        for counting papers per month (a search's trend)."""
        ids = list(ids)
        out: dict[int, str | None] = {}
        for chunk in _chunks(ids):
            q = ("SELECT id, substr(coalesce(announced, submitted, updated), 1, 10) FROM papers "
                 f"WHERE id IN ({','.join('?' * len(chunk))})")
            out.update(self._r.execute(q, chunk).fetchall())
        return out

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
                                  (paper_id, voter, stamp()))
        return cur.rowcount == 1

    @property
    def subscriptions(self) -> SubscriptionStore:
        return SubscriptionStore(self)

    @property
    def accounts(self) -> AccountStore:
        return AccountStore(self)

    @property
    def sync(self) -> SyncStore:
        return SyncStore(self)

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

    def primary_categories(self) -> dict[str, int]:
        """{primary category: papers} over the whole store (one scan: callers remember the answer)."""
        return dict(self._r.execute("SELECT primary_category, count(*) FROM papers WHERE primary_category "
                                    "IS NOT NULL GROUP BY primary_category").fetchall())

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


