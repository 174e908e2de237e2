"""The lexical (BM25) index: a tantivy index derived from the store, caught up by its change sequence.

One directory holds tantivy's files plus ``paperradar-index.json`` (engine, schema version, analyzer,
document count, the last store change sequence indexed). The store stays the source of truth: the index
can always be rebuilt from it, and a mismatch (older schema, another engine) is an error that says so
instead of a silently wrong search.

Queries are built as tantivy query objects from a parsed :class:`~paperradar.query.Query`, never through
tantivy's query-string parser, so no user input can reach the engine as syntax.

Text fields use ``paperradar_en``: tantivy's ``en_stem`` chain (simple tokenizer, tokens of 40+ bytes
dropped, lower case, English Snowball stemmer) plus ASCII folding, so that ``Müller`` finds ``Muller``.
:func:`highlight` runs the very same analyzer from Python, so what it marks is what the index matched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from .errors import PaperradarError
from .models import parse_arxiv_id
from .query import FieldTerm, Query, QueryError
from .shorthand import FILE as SHORTHAND_FILE
from .shorthand import Shorthand
from .vectors import IndexBusy, swap_directories

try:
    import tantivy
except ImportError:  # pragma: no cover - exercised only without the dependency
    tantivy = None

ENGINE = "tantivy"
SCHEMA_VERSION = 2
ANALYZER = "paperradar_en"
NAME_ANALYZER = "paperradar_name"  # author names: folded, not stemmed (Pauling is not Paul)
META_FILE = "paperradar-index.json"  # tantivy owns meta.json in the same directory
REBUILD_HINT = "run `paperradar index --rebuild`"

# Field weights of BM25. Title and abstract are scored as separate BM25 fields, so a matching short title
# already counts for much on its own: equal weights for a query of a few words, which names a topic as a
# title does. A longer query describes what a paper says, as its abstract does: its title matches weigh
# LONG_QUERY_TITLE as much. Measured (bench/results/eval_scifact_train.json, shorthand.json): SciFact train
# (claims, nearly all of 5+ words) hybrid nDCG@10 / Recall@100 .7467 / .9569 with the title at 1.0, .7457 /
# .9619 so (0.5 .. 0.8 for every query measured); on the 119k arXiv corpus, 2-4 title words find their paper
# lexically less often with the title at 0.7 (Recall@10 .656 -> .620, MRR .479 -> .436): left at 1.0.
# Title boosts 3 / 2 / 1.5 / 1 had given lexical nDCG@10 .580 / .624 / .654 / .677 with the first index.
DEFAULT_BOOSTS: dict[str, float] = {"title": 1.0, "abstract": 1.0, "authors": 1.0}
SHORT_QUERY_WORDS = 4  # free words (phrases' included) of a query whose title matches weigh in full
LONG_QUERY_TITLE = 0.7
ID_BOOST = 10.0  # a free word that is an arXiv id puts that paper first
MAX_TIE_FETCH = 10_000  # hits read at most to break ties at the cut-off by paper id
TEXT_FIELDS = ("title", "abstract", "authors")
OPEN_TRIES = 3  # opens of an index that a rebuild swapped meanwhile, before giving up
# Weight of an acronym's expansion ("RAG" -> "retrieval augmented generation" as a phrase) and of a long
# form's acronym, relative to the words typed; a typo's correction weighs as the word itself (the word typed
# matches little or nothing). Measured in bench/results/shorthand.json and on SciFact.
EXPANSION_WEIGHT = 0.3
ACRONYM_WEIGHT = 0.5
CORRECTION_WEIGHT = 1.0
RARE_CORRECTION_WEIGHT = 0.5
CORRECTIONS_CACHE = 4096  # queries whose typo corrections are kept


class IndexMismatch(PaperradarError):
    """The index on disk was built by another engine, schema or store and must be rebuilt."""

    http_status = 503


def _require_tantivy() -> None:
    if tantivy is None:
        raise PaperradarError("the lexical index needs the tantivy package", hint="pip install tantivy")


@lru_cache(maxsize=2)
def _build_analyzer(stem: bool):
    _require_tantivy()
    builder = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
    )
    if stem:
        builder = builder.filter(tantivy.Filter.stemmer("english"))
    return builder.build()


def _analyzer():
    return _build_analyzer(True)


@lru_cache(maxsize=200_000)
def _analyze_word(word: str) -> tuple[str, ...]:
    return tuple(_analyzer().analyze(word))


def analyze(text: str) -> list[str]:
    """The index terms of ``text``, in order (lower-cased, folded, stemmed)."""
    return list(_analyzer().analyze(text))


def _name_analyzer():
    return _build_analyzer(False)


def analyze_field(field: str, text: str) -> list[str]:
    """The index terms of ``text`` in ``field``: names are not stemmed, other text is."""
    if field == "authors":
        return list(_name_analyzer().analyze(text))
    return analyze(text)


def _schema():
    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("id", indexed=True, fast=True)  # the store's paper id: results, deletion by term
    for name in TEXT_FIELDS:
        sb.add_text_field(name, tokenizer_name=NAME_ANALYZER if name == "authors" else ANALYZER,
                          index_option="position")
    # Exact, lower-cased terms: every category plus its archive (cs.CL -> cs.cl, cs), and identifiers.
    sb.add_text_field("category", tokenizer_name="raw", index_option="basic")
    sb.add_text_field("ids", tokenizer_name="raw", index_option="basic")
    sb.add_integer_field("date", indexed=True, fast=True)  # yyyymmdd: announced, else submitted, else updated
    return sb.build()


def category_terms(categories: Iterable[str]) -> list[str]:
    """Index terms of a paper's categories: each one and its archive, lower case (``cs.CL`` -> cs.cl, cs)."""
    out: dict[str, None] = {}
    for c in categories:
        c = c.strip().lower()
        if c:
            out[c] = None
            out[c.split(".", 1)[0]] = None
    return list(out)


def facet_terms(paper) -> list[str]:
    """The facets of a stored paper (query.py's has:, venue:, org:), as index terms: ``has:code`` for each
    kind of link and ``has:venue``, ``venue:iclr`` and ``venue:iclr 2026``, ``org:<name>`` and
    ``org:<full name>``, lower case. They share the exact-term field with the categories (a category never
    holds a ':')."""
    out: dict[str, None] = {}
    for link in getattr(paper, "links", None) or ():
        out[f"has:{link.get('kind')}"] = None
    venue = getattr(paper, "venue", None)
    if venue:
        out["has:venue"] = None
        name = " ".join(str(venue.get("name") or venue.get("text") or "").lower().split())
        if name:
            out[f"venue:{name}"] = None
            if venue.get("year"):
                out[f"venue:{name} {venue['year']}"] = None
    org = getattr(paper, "organization", None)
    if org:
        for value in (org.get("name"), org.get("fullname")):
            if value:
                out["org:" + " ".join(str(value).lower().split())] = None
    return list(out)


def _id_terms(paper) -> list[str]:
    out = {paper.key.lower(): None}
    if paper.arxiv_id:
        out[paper.arxiv_id.lower()] = None
    if paper.doi:
        out[paper.doi.strip().lower()] = None
    return list(out)


_YMD = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def date_number(paper) -> int | None:
    """The date a paper is filtered by, as yyyymmdd: announced, else submitted, else updated."""
    for value in (paper.announced, paper.submitted, paper.updated):
        m = _YMD.match(value or "")
        if m:
            return int(m.group(1) + m.group(2) + m.group(3))
    return None


def _document(paper):
    doc = tantivy.Document()
    doc.add_integer("id", paper.id)
    doc.add_text("title", paper.title)
    if paper.abstract:
        doc.add_text("abstract", paper.abstract)
    for author in paper.authors or ():  # one value each: a phrase cannot run from one author into the next
        doc.add_text("authors", author)
    for c in category_terms(paper.categories or ()):
        doc.add_text("category", c)
    for f in facet_terms(paper):
        doc.add_text("category", f)
    for i in _id_terms(paper):
        doc.add_text("ids", i)
    d = date_number(paper)
    if d is not None:
        doc.add_integer("date", d)
    return doc


class LexicalIndex:
    """A BM25 index of the store's papers in the directory ``path``.

    ``boosts`` weighs a match in each text field (title, abstract, authors); missing ones keep
    :data:`DEFAULT_BOOSTS`. Writing takes tantivy's lock: one writer at a time, any number of readers.
    """

    def __init__(self, path: str | Path, boosts: Mapping[str, float] | None = None, *,
                 heap_size: int = 64_000_000, threads: int = 1, shorthand: bool = True):
        _require_tantivy()
        self.path = Path(path)
        self.expand = shorthand  # acronym expansion and typo correction at query time
        self._shorthand: tuple[tuple[int, int] | None, Shorthand] | None = None
        self._corrections: dict[tuple, dict[str, tuple[str, int]]] = {}
        self.boosts = self._boosts(boosts)
        self.long_query_title = LONG_QUERY_TITLE  # 1.0: the same boosts for every query (benchmarks)
        self.heap_size = heap_size
        self.threads = threads
        self._index = None
        self._schema = None
        self._dir_id: tuple[int, int] | None = None
        self.meta: dict = {}

    @staticmethod
    def _boosts(boosts: Mapping[str, float] | None) -> dict[str, float]:
        out = dict(DEFAULT_BOOSTS)
        for name, value in (boosts or {}).items():
            if name not in DEFAULT_BOOSTS:
                raise ValueError(f"unknown boost field {name!r}; known: {', '.join(DEFAULT_BOOSTS)}")
            if not value >= 0:
                raise ValueError(f"boost for {name} must be >= 0, not {value!r}")
            out[name] = float(value)
        return out

    def _boosts_for(self, query: Query) -> dict[str, float]:
        """The index's boosts for ``query``: a title match of a query longer than SHORT_QUERY_WORDS free
        words weighs ``long_query_title`` times as much (see LONG_QUERY_TITLE)."""
        if query.free_words <= SHORT_QUERY_WORDS or self.long_query_title == 1.0:
            return self.boosts
        return {**self.boosts, "title": self.boosts["title"] * self.long_query_title}

    # -- opening -------------------------------------------------------------------------------------
    @property
    def _meta_path(self) -> Path:
        return self.path / META_FILE

    def _fresh_meta(self) -> dict:
        return {"engine": ENGINE, "engine_version": str(getattr(tantivy, "__version__", "")),
                "schema_version": SCHEMA_VERSION, "analyzer": ANALYZER, "count": 0, "last_seq": 0}

    def open_or_create(self) -> LexicalIndex:
        """Open the index, creating an empty one if the directory holds none; check its metadata."""
        if self._index is not None:
            return self
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise PaperradarError(f"cannot open the lexical index {self.path}: {e}") from None
        # A rebuild (perhaps in another process) may swap the directory while tantivy reads its files one
        # by one: a failure, or a success, counts only if the directory stayed the same meanwhile.
        for attempt in range(OPEN_TRIES):
            before = self._current_dir_id()
            try:
                self._open()
            except IndexMismatch:
                if attempt == OPEN_TRIES - 1 or self._current_dir_id() == before:
                    raise
                continue
            if self._current_dir_id() == before or attempt == OPEN_TRIES - 1:
                self._dir_id = before
                return self
        return self  # not reached

    def _open(self) -> None:
        try:
            exists = tantivy.Index.exists(str(self.path))
        except (OSError, ValueError) as e:
            raise IndexMismatch(f"cannot open the lexical index {self.path}: {e}",
                                hint=REBUILD_HINT) from None
        if exists or self._meta_path.exists():
            self._check_meta(self._read_meta())
        # Without tantivy's files the index is empty whatever a leftover metadata file says.
        meta = self._read_meta() if exists else self._fresh_meta()
        self._schema = _schema()
        try:
            index = tantivy.Index(self._schema, path=str(self.path), reuse=True)
        except (ValueError, OSError) as e:
            raise IndexMismatch(f"cannot open the lexical index {self.path}: {e}",
                                hint=REBUILD_HINT) from None
        index.register_tokenizer(ANALYZER, _analyzer())
        index.register_tokenizer(NAME_ANALYZER, _name_analyzer())
        self._index, self.meta = index, meta
        if not exists:
            self._write_meta()

    def _current_dir_id(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino

    def _reopen_if_swapped(self) -> None:
        """Open the index afresh if a rebuild (perhaps in another process) swapped its directory: tantivy
        keeps per-directory state (the files it manages) that must not carry over into the new one."""
        if self._index is not None and self._current_dir_id() != self._dir_id:
            self._index = None
            self.open_or_create()

    def _read_meta(self) -> dict:
        try:
            meta = json.loads(self._meta_path.read_text())
        except FileNotFoundError:
            raise IndexMismatch(f"{self.path} holds a search index paperradar did not make (no {META_FILE})",
                                hint=REBUILD_HINT) from None
        except (OSError, ValueError) as e:
            raise IndexMismatch(f"unreadable {self._meta_path}: {e}", hint=REBUILD_HINT) from None
        if not isinstance(meta, dict):
            raise IndexMismatch(f"unreadable {self._meta_path}: not a JSON object", hint=REBUILD_HINT)
        return meta

    def _check_meta(self, meta: dict) -> None:
        want = self._fresh_meta()
        for key in ("engine", "schema_version", "analyzer"):
            if meta.get(key) != want[key]:
                raise IndexMismatch(
                    f"the lexical index in {self.path} has {key} {meta.get(key)!r}; this paperradar uses "
                    f"{want[key]!r}", hint=REBUILD_HINT)
        if not isinstance(meta.get("last_seq"), int) or not isinstance(meta.get("count"), int):
            raise IndexMismatch(f"{self._meta_path} has no valid last_seq/count", hint=REBUILD_HINT)

    def _write_meta(self) -> None:
        tmp = self._meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.meta, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, self._meta_path)  # atomic: a crash leaves the old cursor or the new one

    def close(self) -> None:
        self._index = None

    def reload(self) -> None:
        """See commits another process made since this one opened the index (or the index another
        process's rebuild swapped in)."""
        if self._index is None:
            return
        self._reopen_if_swapped()
        try:
            self._index.reload()
            self.meta = self._read_meta()
        except (ValueError, OSError, IndexMismatch):
            if self._current_dir_id() == self._dir_id:
                raise
            self._reopen_if_swapped()  # swapped while reloading: open the new one

    def __enter__(self) -> LexicalIndex:
        return self.open_or_create()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------------
    @property
    def last_seq(self) -> int:
        self.open_or_create()
        return self.meta["last_seq"]

    def count(self) -> int:
        """Documents in the index."""
        self.open_or_create()
        return self._index.searcher().num_docs

    def _writer(self):
        try:
            return self._index.writer(self.heap_size, self.threads)
        except ValueError as e:
            if "LockBusy" in str(e):
                raise IndexBusy(f"another process is updating the lexical index {self.path}",
                                hint="wait for it to finish") from None
            raise

    def update_from(self, store, batch: int = 5000,
                    progress: Callable[[int, int], None] | None = None) -> int:
        """Index the papers the store changed since the last update; return how many were written.

        Each batch is one tantivy commit followed by the cursor in the metadata file. A crash between the
        two re-indexes that batch next time, which is harmless: a changed paper's old document is deleted
        by id before the new one is added. ``progress(done, total)`` is called after each batch; ``total``
        is an upper bound (the change numbers still to read).
        """
        self.open_or_create()
        self._reopen_if_swapped()
        self.meta = self._read_meta()  # another process may have moved the cursor since we opened
        if self.meta["last_seq"] == store.max_seq():
            if not (self.path / SHORTHAND_FILE).exists():  # an index made before the tables existed
                self._recount_shorthand(store, self.meta["last_seq"])
            return 0
        writer = self._writer()
        try:
            if self._current_dir_id() != self._dir_id:  # swapped by a rebuild before we got the lock
                raise IndexBusy(f"the lexical index {self.path} was just rebuilt", hint="run it again")
            self.meta = self._read_meta()  # now under the lock
            self.meta["engine_version"] = self._fresh_meta()["engine_version"]
            seq, top = self.meta["last_seq"], store.max_seq()
            if seq > top:
                raise IndexMismatch(
                    f"the lexical index is ahead of the store (change {seq} > {top}): it was built from "
                    "another database", hint=REBUILD_HINT)
            fresh = seq == 0 and self.count() == 0  # nothing to replace: skip the deletes
            total, done = top - seq, 0
            # The shorthand tables are counted along, when they are as far as the index; else recounted.
            tables = Shorthand() if fresh else Shorthand.load(self.path)
            if tables is not None and tables.last_seq != seq:
                tables = None
            while True:
                papers = store.changed_since(seq, limit=batch)
                if not papers:
                    break
                for paper in papers:
                    # A fresh build skips the deletes, except for papers changed since it began (a
                    # concurrent ingest): those may already have been added in an earlier batch.
                    if not fresh or paper.seq > top:
                        writer.delete_documents_by_term("id", paper.id)
                    writer.add_document(_document(paper))
                    if tables is not None:
                        tables.add(paper.title, paper.abstract)
                writer.commit()
                seq = papers[-1].seq
                done += len(papers)
                self._index.reload()
                self.meta.update(last_seq=seq, count=self._index.searcher().num_docs)
                self._write_meta()
                if progress:
                    progress(done, max(total, done))
            if tables is None:
                self._recount_shorthand(store, seq)
            else:
                tables.last_seq = seq
                tables.save(self.path)
        except BaseException:
            writer.rollback()
            raise
        finally:
            writer.wait_merging_threads()  # releases the lock
            self._index.reload()
        return done

    def _recount_shorthand(self, store, upto: int, batch: int = 5000) -> None:
        """Count the shorthand tables (see paperradar/shorthand.py) over the whole store again, as of
        change ``upto``: an index whose tables are missing, or lag behind after a crash. A changed paper
        counted by an incremental update counts twice until then (a rebuild recounts)."""
        tables, seq = Shorthand(), 0
        while True:
            papers = store.changed_since(seq, limit=batch)
            if not papers:
                break
            for paper in papers:
                tables.add(paper.title, paper.abstract)
            seq = papers[-1].seq
        tables.last_seq = upto
        tables.save(self.path)

    def rebuild(self, store, batch: int = 5000,
                progress: Callable[[int, int], None] | None = None) -> int:
        """Build a new index from the whole store beside the old one, then swap it in.

        Searches keep using the old index until the swap, which is atomic on Linux (a reader in another
        process opens the old directory or the new one, never none); a failed or interrupted rebuild
        leaves the old one untouched, and the next rebuild deletes what it left. Works on an index that
        fails :meth:`open_or_create` (other schema or engine).
        """
        new_path = self.path.with_name(self.path.name + ".rebuild")
        shutil.rmtree(new_path, ignore_errors=True)
        fresh = LexicalIndex(new_path, self.boosts, heap_size=self.heap_size, threads=self.threads)
        try:
            n = fresh.update_from(store, batch=batch, progress=progress)
        except BaseException:
            fresh.close()
            shutil.rmtree(new_path, ignore_errors=True)
            raise
        fresh.close()
        with self._live_writer_held():
            swap_directories(new_path, self.path)
        shutil.rmtree(new_path, ignore_errors=True)  # the previous index (open readers keep their files)
        self.close()
        self.open_or_create()
        return n

    @contextmanager
    def _live_writer_held(self, wait: float = 60.0):
        """Hold the writer lock of the index in place while it is swapped out: a writer in another
        process would otherwise commit its segments into the new directory."""
        live = LexicalIndex(self.path, self.boosts, heap_size=15_000_000, threads=1)
        try:
            opened = tantivy.Index.exists(str(self.path)) and live.open_or_create() is live
        except (IndexMismatch, OSError, ValueError):  # another schema or engine: nobody can write it
            opened = False
        if not opened:
            yield
            return
        deadline = time.monotonic() + wait
        while True:
            try:
                writer = live._writer()
                break
            except IndexBusy:  # an incremental update commits in short batches: wait for it
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        try:
            yield
        finally:
            writer.rollback()
            writer.wait_merging_threads()
            live.close()

    # -- searching -----------------------------------------------------------------------------------
    def search(self, query: Query, limit: int = 100, boosts: Mapping[str, float] | None = None,
               expansion: Mapping[str, float] | None = None, within=None) -> list[tuple[int, float]]:
        """The best ``limit`` papers for ``query`` as (paper id, BM25 score), best first, ties by id.

        A query with words is ranked by BM25 over title, abstract and authors, weighted by the boosts;
        at least one free word must match, and every phrase, field term and filter. ``expansion`` adds
        analyzed terms ({token: weight}, e.g. from pseudo-relevance feedback) as further optional words
        of the title and abstract, each weighing ``weight`` times a typed word.
        A query of filters alone (cat:, id:, dates, exclusions) matches by date, newest first (undated
        papers last), score 0.
        ``query.sort`` is not applied here: the caller ranks the fused results.
        ``within`` (paper ids) keeps only those papers: the search engine resolves ``topic:`` into it.
        """
        self.open_or_create()
        if limit <= 0:
            return []
        weights = self._boosts(boosts) if boosts is not None else self._boosts_for(query)
        q, ranked = self._compile(query, weights, expansion, within)
        if query.has_text and not ranked:
            return []  # every word was dropped by the analyzer (40+ characters): nothing can match
        searcher = self._index.searcher()
        order = {} if ranked else {"order_by_field": "date"}
        # Hits that tie with the last one kept must all be seen to break the tie by paper id: tantivy
        # breaks it by position in the index, which differs between an updated and a rebuilt index.
        n = limit
        while True:
            hits = searcher.search(q, n + 1, count=False, **order).hits
            if len(hits) <= n or hits[n][0] != hits[limit - 1][0] or n >= MAX_TIE_FETCH:
                break
            n = min(n * 4, MAX_TIE_FETCH)
        if not hits:
            return []
        ids = searcher.fast_field_values("id", [address for _, address in hits])
        # A paper without a date (a saved Hugging Face page gives none) has no value to order by: tantivy
        # puts it last with key None, and so does this sort, which must be total.
        rows = sorted(zip(ids, (key for key, _ in hits), strict=True),
                      key=lambda r: (r[1] is None, -(r[1] or 0), r[0]))[:limit]
        return [(i, float(key) if ranked else 0.0) for i, key in rows]

    @property
    def shorthand(self) -> Shorthand:
        """The shorthand tables beside the index (empty when there are none), read again when an update or
        a rebuild wrote new ones."""
        try:
            st = (self.path / SHORTHAND_FILE).stat()
            stamp: tuple[int, int] | None = (st.st_ino, st.st_mtime_ns)
        except OSError:
            stamp = None
        cached = self._shorthand
        if cached is None or cached[0] != stamp:
            tables = (Shorthand.load(self.path) if stamp else None) or Shorthand()
            self._shorthand = cached = (stamp, tables)
        return cached[1]

    def corrections(self, query: Query) -> dict[str, str]:
        """Typo corrections of the query's free words, {word typed (lower case): word meant}: only words that
        the index holds rarely or not at all (document frequency in any text field), see
        :meth:`~paperradar.shorthand.Shorthand.correction`."""
        return {w: right for w, (right, _) in self._typos(query).items()}

    def corrections_of_absent_words(self, query: Query) -> dict[str, str]:
        """The :meth:`corrections` of words no paper holds: only those are safe to search instead of the
        word typed (a rare word may be a real one: "spores" is not "scores")."""
        return {w: right for w, (right, df) in self._typos(query).items() if df == 0}

    def _typos(self, query: Query) -> dict[str, tuple[str, int]]:
        """{word typed (lower case): (word meant, papers that hold the word typed)}."""
        if not self.expand or not query.terms:
            return {}
        self.open_or_create()
        tables = self.shorthand
        if not tables.vocab:
            return {}
        # Asked for by the lexical query, the dense query and the result page: computed once per query
        # and index version.
        key = (query.terms, self.meta.get("last_seq"), self._shorthand[0] if self._shorthand else None)
        cached = self._corrections.get(key)
        if cached is not None:
            return cached
        searcher = self._index.searcher()
        seen: dict[str, int] = {}

        def known(word: str) -> int:
            n = 0
            for f in TEXT_FIELDS:
                tokens = analyze_field(f, word)
                if tokens:
                    n = max(n, min(searcher.doc_freq(f, t) for t in tokens))
            seen[word] = n
            return n

        out: dict[str, tuple[str, int]] = {}
        for word in query.terms:
            w = word.lower()
            if w not in out:
                right = tables.correction(w, known)
                if right:
                    out[w] = (right, seen.get(w, 0))
        if len(self._corrections) >= CORRECTIONS_CACHE:
            self._corrections.clear()
        self._corrections[key] = out
        return out

    def _shorthand_clauses(self, query: Query, boosts: dict[str, float]) -> list:
        """Extra should clauses for the query's free words: each acronym's long form as a phrase (the one
        the corpus uses most, or the one that goes with the other words of the query), each long form's
        acronym, and each typo's correction."""
        Q, Occur, schema = tantivy.Query, tantivy.Occur, self._schema
        tables = self.shorthand
        if not query.terms or not (tables.pairs or tables.vocab):
            return []
        searcher = self._index.searcher()
        fields = [f for f in ("title", "abstract") if boosts[f] > 0]

        def in_text(tokens: list[str], weight: float):
            parts = [(Occur.Should, Q.boost_query(Q.term_query(schema, f, tokens[0]) if len(tokens) == 1
                                                  else Q.phrase_query(schema, f, tokens), boosts[f] * weight))
                     for f in fields]
            return Q.boolean_query(parts) if parts else None

        counts: dict = {}

        def count(q) -> int:
            return searcher.search(q, 1, count=True).count

        def cooccurring(form: str, word: str) -> float:
            tokens, other = analyze(form), analyze(word)
            if not tokens or not other:
                return 0.0
            if form not in counts:
                counts[form] = count(in_text(tokens, 1.0))
            both = Q.boolean_query([(Occur.Must, in_text(tokens, 1.0)), (Occur.Must, in_text(other, 1.0))])
            return count(both) / max(1, counts[form])

        out = []
        words = list(query.terms)
        lowered = [w.lower() for w in words]
        for i, word in enumerate(words):
            if not tables.long_forms(word):
                continue
            context = [w for j, w in enumerate(words) if j != i and not tables.long_forms(w)]
            # The two rarest other words tell the meaning best, and bound the count queries it costs.
            rarity = {w: min((searcher.doc_freq("abstract", t) for t in _analyze_word(w)), default=0)
                      for w in context}
            context = sorted((w for w in context if rarity[w] > 0), key=lambda w: (rarity[w], w))[:2]
            form = tables.resolve(word, context, cooccurring)
            tokens = analyze(form) if form else []
            if len(tokens) > 1 and not set(tokens) <= {t for w in lowered for t in _analyze_word(w)}:
                out.append(in_text(tokens, EXPANSION_WEIGHT))
        for _form, key in tables.acronyms_in(words):
            tokens = analyze(key)
            if tokens and key not in lowered:
                out.append(in_text(tokens, ACRONYM_WEIGHT))
        for right, df in self._typos(query).values():
            tokens = analyze(right)
            if tokens:  # a rare word may be a real one: its correction weighs less than an absent one's
                out.append(in_text(tokens, CORRECTION_WEIGHT if df == 0 else RARE_CORRECTION_WEIGHT))
        return [(Occur.Should, q) for q in out if q is not None]

    def _compile(self, query: Query, boosts: dict[str, float], expansion: Mapping[str, float] | None = None,
                 within=None):
        """The tantivy query for ``query``, and whether it ranks (has words) or only filters."""
        Q, Occur, schema = tantivy.Query, tantivy.Occur, self._schema
        must, should, must_not = [], [], []

        def in_field(field: str, tokens: list[str]):
            if len(tokens) == 1:
                return Q.term_query(schema, field, tokens[0])
            return Q.phrase_query(schema, field, tokens)  # tantivy panics on a 1-word phrase

        def anywhere(text: str):
            parts = [(Occur.Should, Q.boost_query(in_field(f, tokens), boosts[f]))
                     for f in TEXT_FIELDS if boosts[f] > 0 and (tokens := analyze_field(f, text))]
            return Q.boolean_query(parts) if parts else None

        def filter_(q):
            return Q.const_score_query(q, 0.0)

        seen: set[tuple[str, str]] = set()
        for word in query.terms:
            for f in TEXT_FIELDS:
                if boosts[f] <= 0:
                    continue
                for token in analyze_field(f, word):
                    if (f, token) not in seen:
                        seen.add((f, token))
                        # One flat disjunction of term queries (not one group per word): same scores,
                        # and tantivy's block-max pruning makes it twice as fast.
                        term = Q.term_query(schema, f, token)
                        should.append((Occur.Should, Q.boost_query(term, boosts[f])))
            parsed = parse_arxiv_id(word)
            if parsed:
                should.append((Occur.Should, Q.boost_query(Q.term_query(schema, "ids", parsed[0].lower()),
                                                           ID_BOOST)))
        if self.expand and should:
            should.extend(self._shorthand_clauses(query, boosts))
        if should:
            for token, weight in sorted((expansion or {}).items()):
                for f in ("title", "abstract"):
                    if boosts[f] > 0 and weight > 0:
                        term = Q.term_query(schema, f, token)
                        should.append((Occur.Should, Q.boost_query(term, boosts[f] * weight)))
        for phrase in query.phrases:
            clause = anywhere(phrase)
            if clause is not None:
                must.append((Occur.Must, clause))
        for ft in query.fields:
            tokens = analyze_field(ft.field, ft.value)
            if tokens:
                must.append((Occur.Must, Q.boost_query(in_field(ft.field, tokens), boosts[ft.field] or 1.0)))
        ranked = bool(should or must)
        if query.categories:
            must.append((Occur.Must, filter_(Q.term_set_query(schema, "category", list(query.categories)))))
        if query.ids:
            must.append((Occur.Must, filter_(Q.term_set_query(schema, "ids", list(query.ids)))))
        if query.topics and within is None:
            raise QueryError("topic: filters need the topics index (search through the search engine)")
        if within is not None:
            must.append((Occur.Must, filter_(Q.term_set_query(schema, "id", [int(i) for i in within]))))
        for group in query.facet_groups():
            must.append((Occur.Must, filter_(Q.term_set_query(schema, "category", list(group)))))
        if query.since or query.until:
            lo = int(query.since.replace("-", "")) if query.since else None
            hi = int(query.until.replace("-", "")) if query.until else None
            dates = Q.range_query(schema, "date", tantivy.FieldType.Integer, lo, hi)
            must.append((Occur.Must, filter_(dates)))
        for ft in query.exclude:
            clause = self._exclusion(ft)
            if clause is not None:
                must_not.append((Occur.MustNot, clause))
        if should and must:  # any free word must match, also beside required phrases and filters
            must.append((Occur.Must, Q.boolean_query(should)))
        elif should:  # a query of should clauses alone already requires one of them
            return Q.boolean_query(should + must_not), ranked
        if not must:
            must.append((Occur.Must, Q.all_query()))  # exclusions alone: everything but them
        return Q.boolean_query(must + must_not), ranked

    def _exclusion(self, ft: FieldTerm):
        Q, schema = tantivy.Query, self._schema
        if ft.field in ("category", "facet"):
            return Q.term_query(schema, "category", ft.value)
        if ft.field == "id":
            return Q.term_query(schema, "ids", ft.value)
        fields = TEXT_FIELDS if ft.field == "any" else (ft.field,)
        parts = []
        for f in fields:
            tokens = analyze_field(f, ft.value)
            if tokens:
                parts.append((tantivy.Occur.Should, Q.term_query(schema, f, tokens[0]) if len(tokens) == 1
                              else Q.phrase_query(schema, f, tokens)))
        return Q.boolean_query(parts) if parts else None

    def highlight(self, text: str, query: Query, field: str | None = None) -> list[tuple[int, int]]:
        """See :func:`highlight`."""
        return highlight(text, query, field)


_WORD = re.compile(r"[^\W_]+")  # tantivy's simple tokenizer: runs of letters and digits


def highlight(text: str, query: Query, field: str | None = None) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` in ``text`` of the words ``query`` matches, sorted, disjoint.

    Words are compared after the index's own analyzer (tantivy's stemmer, run from Python), so
    ``networks`` marks ``network``. A phrase is marked only where its words follow each other, as one span.
    ``field`` (title, abstract, authors) adds that field's ti:/abs:/au: terms; None adds all of them.
    Exclusions are never marked.
    """
    units: set[tuple[str, ...]] = set()
    for word in query.terms:
        units.update((t,) for t in analyze(word))
    for value in query.phrases:
        units.add(tuple(analyze(value)))
    for ft in query.fields:
        if field is None or ft.field == field:
            units.add(tuple(analyze(ft.value)))
    units.discard(())
    if not units or not text:
        return []
    tokens = [(m.start(), m.end(), _analyze_word(m.group())) for m in _WORD.finditer(text)]
    tokens = [(s, e, t[0]) for s, e, t in tokens if t]
    spans: list[tuple[int, int]] = []
    singles = {u[0] for u in units if len(u) == 1}
    phrases = [u for u in units if len(u) > 1]
    for k, (start, end, term) in enumerate(tokens):
        if term in singles:
            spans.append((start, end))
        for p in phrases:
            if term == p[0] and tuple(t for _, _, t in tokens[k:k + len(p)]) == p:
                spans.append((start, tokens[k + len(p) - 1][1]))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
