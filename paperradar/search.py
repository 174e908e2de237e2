"""Search: the core API the CLI and the web app call. Hybrid lexical (BM25) + dense (embeddings) retrieval.

The engine owns derived indexes in ``<data dir>/index/`` — ``lexical/`` (tantivy), ``vectors/`` (a vector
per paper, numpy arrays + HNSW) with ``sentences/`` beside it (a vector per sentence, see
paperradar/passages.py) — caught up from the store's change sequence by :meth:`SearchEngine.update`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import clock, passages, rank, topics, trending
from .lexical import SHORT_QUERY_WORDS, LexicalIndex, analyze_field, date_number, facet_terms
from .lexical import highlight as highlight_spans
from .passages import SentenceIndex, SentenceIndexError
from .query import Query, QueryError, parse_query
from .shorthand import corrected_text
from .store import Store, StoredPaper
from .vectors import IndexBusy, IndexMismatch, VectorIndex, swap_directories, text_hash
from .vectors import writing as vectors_writing

MODES = ("hybrid", "lexical", "dense")
MAX_LIMIT = 200
CANDIDATES = 100  # per engine, before fusion
# Tuned on SciFact train (bench/results/eval_scifact_train.json): weight of the dense side in the convex
# combination of min-max normalised scores. 0.5 while the dense side was a whole-abstract cosine; scored by
# the best sentence (paperradar/passages.py) it is the stronger engine: 0.6 (0.5 .. 0.7 measured; with the
# title of long queries at 0.7 in BM25, paperradar/lexical.py, 0.55 ranks the top ten a little better,
# .7472 vs .7457, and 0.6 keeps more of the relevant papers in the top hundred, .9619 vs .9607).
DEFAULT_ALPHA = 0.6
# Convex fusion scores every candidate by both engines: a paper in the dense top CANDIDATES but not in the
# lexical one gets its BM25 score (0 when it has none of the words), a lexical-only paper its cosine,
# instead of each engine's lowest score. SciFact train, end to end (bench/results/eval_scifact_train.json):
# nDCG@10 .7232 -> .7237, Recall@100 .9473 -> .9539, MRR@10 .6937 -> .6924 (eval_variants_train.json has
# the variants tried); it costs a lexical query confined to ~100 papers (bench/results/eval_latency.json).
RESCORE = True
# A saved search's digest keeps a new paper found only by meaning when its paper vector's cosine similarity
# reaches this (bench/digest_threshold.py -> digest_threshold.json, the demo corpus): the 10th best paper of
# 24 saved searches a researcher would write scores 0.36-0.64 (median 0.51, 21 of 24 at 0.39 or more), the
# best paper for 40 texts no paper is about (random letters, "chocolate cake recipe") at most 0.38. It was
# 0.35 with whole-abstract vectors (gibberish at most 0.27); the mean of passage vectors sits higher for
# every text. Best-sentence cosines separate the two worse (noise up to 0.44).
DIGEST_MIN_SIMILARITY = 0.39
QUERY_CACHE = 4096  # query embeddings kept (1.5 KB each)
EMBED_CHUNK = 256  # papers per encode call (progress granularity)
SAVE_EVERY = 4096  # papers embedded between two saves of the vector index (the resume granularity)
TREND_POOL = 1000  # a search's papers per month are counted among its best this many
TOPICS_MIN = 500  # papers before topics and a map are built on their own (a rebuild builds them anyway)


def paper_text(p: StoredPaper) -> str:
    """What the embedding model sees of a paper."""
    return f"{p.title}. {p.abstract}" if p.abstract else p.title


@dataclass
class Hit:
    """One search result: the paper, its score, and highlight spans (character offsets) per field."""

    paper: StoredPaper
    score: float
    highlights: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"score": round(self.score, 6), "highlights": self.highlights, **self.paper.to_dict()}


@dataclass
class Results:
    query: str
    mode: str
    sort: str
    hits: list[Hit]
    took_ms: float
    did_you_mean: str | None = None  # the query with its typos corrected, when it had some
    # Quoted phrases no paper holds (with the query's other conditions): their words were searched as
    # free words instead, as a web search engine does, rather than answering with nothing.
    loosened: tuple[str, ...] = ()


def _short(q: Query) -> bool:
    """A query of a few words (see :func:`_dense_score` and paperradar/lexical.py)."""
    return q.free_words <= SHORT_QUERY_WORDS


def _dense_score(short: bool, paper: float, sentence: float | None) -> float:
    """A candidate's dense score: its best sentence's cosine (``sentence``; None when it has no sentence
    vectors: the paper vector's, ``paper``), or for a ``short`` query (a few words) the better of the two.
    Every passage the paper vector is the mean of holds the title, a sentence vector only its own words; a
    short query names a topic or a title, as a title does (the lexical side weighs titles likewise,
    paperradar/lexical.py). Measured in bench/results/shorthand.json and eval_scifact_train.json."""
    if sentence is None:
        return paper
    return max(paper, sentence) if short else sentence


def _loosened(q: Query) -> Query:
    """The query with its quoted phrases searched as free words (its other conditions kept)."""
    words = tuple(w for phrase in q.phrases for w in phrase.split())
    return dataclasses.replace(q, phrases=(), terms=q.terms + words)


def _matches(p: StoredPaper, q: Query) -> bool:
    """Whether a dense candidate satisfies the query's filters and required terms (the lexical engine
    applies the same rules inside its index; this is the same logic over one stored paper)."""
    if q.categories and not any(c.lower() == want or c.lower().startswith(want + ".")
                                for c in p.categories for want in q.categories):
        return False
    if q.ids and p.key.lower() not in q.ids:
        return False
    if q.facets or any(ft.field == "facet" for ft in q.exclude):
        facets = set(facet_terms(p))
        if not all(facets.intersection(group) for group in q.facet_groups()):
            return False
        if any(ft.field == "facet" and ft.value in facets for ft in q.exclude):
            return False
    if q.since or q.until:
        d = date_number(p)
        if d is None or (q.since and d < int(q.since.replace("-", ""))) or \
                (q.until and d > int(q.until.replace("-", ""))):
            return False
    texts = {"title": p.title, "abstract": p.abstract, "authors": " ".join(p.authors)}
    tokens: dict[str, set[str]] = {}

    def has(where: str, value: str) -> bool:
        fields = [where] if where in texts else list(texts)
        for f in fields:
            want = analyze_field(f, value)
            if f not in tokens:
                tokens[f] = set(analyze_field(f, texts[f]))
            if want and all(t in tokens[f] for t in want):
                return True
        return False

    for phrase in q.phrases:
        if not has("any", phrase):
            return False
    for ft in q.fields:
        if ft.field in texts and not has(ft.field, ft.value):
            return False
    for ft in q.exclude:
        if ft.field == "category":
            if any(c.lower() == ft.value or c.lower().startswith(ft.value + ".") for c in p.categories):
                return False
        elif ft.field == "id":
            if p.key.lower() == ft.value:
                return False
        elif ft.field == "facet":
            continue  # checked above
        elif has(ft.field, ft.value):
            return False
    return True


def sort_newest(scored: list[tuple[StoredPaper, float]]) -> None:
    """Sort (paper, score) pairs in place, newest first: dated papers by their listing day (announced,
    else submitted), latest first; undated ones (a saved Hugging Face page gives no date) last; ties by
    id, so that pages of a sorted result neither repeat nor skip a paper."""
    scored.sort(key=lambda ps: ps[0].id)
    # Stable, also in reverse: papers of the same day keep the ascending ids of the first pass.
    scored.sort(key=lambda ps: (bool(ps[0].announced or ps[0].submitted),
                                ps[0].announced or ps[0].submitted or ""), reverse=True)


def filter_papers(papers: list[StoredPaper], text: str) -> list[StoredPaper]:
    """The papers that contain every word of a query and satisfy its filters and exclusions (search inside
    a small set, e.g. a user's library, without an index). QueryError for a malformed query."""
    q = parse_query(text)
    every_word = dataclasses.replace(q, phrases=q.phrases + q.terms)
    return [p for p in papers if _matches(p, every_word)]


class SearchEngine:
    """Hybrid search over a store. ``embedder`` defaults to the bundled MiniLM (loaded on first use)."""

    def __init__(self, store: Store, index_dir: str | Path | None = None, *, embedder=None,
                 alpha: float = DEFAULT_ALPHA, fusion: str = "convex", boosts: dict | None = None,
                 embed_threads: int | None = None, shorthand: bool = True, rescore: bool = RESCORE):
        self.store = store
        self.embed_threads = embed_threads  # onnxruntime threads; a web worker uses 1 (no spinning)
        self.index_dir = Path(index_dir) if index_dir else store.path.parent / "index"
        self.alpha = alpha
        self.fusion = fusion
        self.rescore = rescore  # convex fusion: every candidate scored by both engines (see RESCORE)
        self._embedder = embedder
        # Opened on first use, so that `paperradar index --rebuild` can replace a mismatched index.
        # shorthand: acronyms expanded both ways and typos corrected (paperradar/shorthand.py)
        self.lexical = LexicalIndex(self.index_dir / "lexical", boosts=boosts, shorthand=shorthand)
        self._vectors: VectorIndex | None = None
        self._sentences: SentenceIndex | None = None  # loaded and swapped with the vector index
        self._vectors_stamp: tuple[int, int] | None = None
        # A vector index that failed to load, by the stamp of its files: a corrupt index is reported on
        # every request without reading (and hashing) its files again, until they change.
        self._vectors_failed: tuple[tuple[int, int] | None, IndexMismatch] | None = None
        self._topics: tuple[tuple[int, int] | None, topics.TopicIndex | None] = (None, None)
        self._load_lock = threading.Lock()  # web servers query from several threads
        # One indexing run at a time in this process (other processes: the indexes' own locks). Searches
        # never take it: they use the indexes in place until a finished update swaps the new ones in.
        self._indexing = threading.Lock()
        # Query embeddings are the bulk of a hybrid query's time; people repeat and paginate queries.
        self._embed_query = functools.lru_cache(maxsize=QUERY_CACHE)(self._encode_query)

    # -- parts, loaded on first use --------------------------------------------------------------------
    @property
    def embedder(self):
        if self._embedder is None:
            with self._load_lock:
                if self._embedder is None:
                    from .embed import Embedder

                    self._embedder = Embedder.load(self.index_dir.parent / "models",
                                                   threads=self.embed_threads)
        return self._embedder

    @property
    def vectors(self) -> VectorIndex:
        """The vector index; IndexMismatch (IndexCorrupt for damaged files) when it cannot be used."""
        vectors = self._vectors
        if vectors is None:
            embedder = self.embedder
            with self._load_lock:
                if self._vectors is None:
                    stamp = self._stamp()
                    failed = self._vectors_failed
                    if failed is not None and failed[0] == stamp:
                        raise failed[1].with_traceback(None)
                    try:
                        self._vectors = VectorIndex(self._vectors_dir, self.model_name, embedder.dim)
                        self._sentences = SentenceIndex(self._sentences_dir, self.model_name, embedder.dim)
                    except (IndexMismatch, SentenceIndexError) as e:
                        self._vectors = None
                        self._vectors_failed = (stamp, e)
                        raise
                    self._vectors_stamp, self._vectors_failed = stamp, None
                vectors = self._vectors
        return vectors

    @property
    def sentences(self) -> SentenceIndex:
        """The sentence vectors (paperradar/passages.py) saved with the vector index in use."""
        vectors = self.vectors  # loads both
        sentences = self._sentences
        if sentences is None or sentences.model != vectors.model:
            sentences = SentenceIndex(self._sentences_dir, vectors.model, vectors.dim)
        return sentences

    @property
    def model_name(self) -> str:
        """The vector index's model: the embedder and how papers are read (passages of sentences)."""
        return f"{self.embedder.name}/{passages.RECIPE}"

    @property
    def _sentences_dir(self) -> Path:
        return self.index_dir / "sentences"

    @property
    def topics(self) -> topics.TopicIndex:
        """The topics index (paperradar/topics.py), reopened when another process saved a new one;
        TopicsUnavailable when there is none yet."""
        try:
            st = (self._topics_dir / "meta.json").stat()
            stamp = (st.st_ino, st.st_mtime_ns)
        except FileNotFoundError:
            raise topics.TopicsUnavailable("no topics yet: they are built with the indexes",
                                           hint="paperradar index") from None
        seen, index = self._topics
        if index is None or seen != stamp:
            index = topics.TopicIndex(self._topics_dir)
            self._topics = (stamp, index)
        return index

    def has_topics(self) -> bool:
        return (self._topics_dir / "meta.json").exists()

    @property
    def _topics_dir(self) -> Path:
        return self.index_dir / "topics"

    def _within(self, q: Query):
        """The ids a query's ``topic:`` filters allow (sorted array), or None without any."""
        if not q.topics:
            return None
        try:
            index = self.topics
        except topics.TopicsUnavailable as e:
            raise QueryError(f"topic: filters need the topics, and there are none yet ({e})") from None
        unknown = [t for t in q.topics if index.get(t) is None]
        if unknown:
            raise QueryError(f"there is no topic {unknown[0]}; the topics page lists them")
        return np.unique(np.concatenate([index.members(t) for t in q.topics]))

    @property
    def _vectors_dir(self) -> Path:
        return self.index_dir / "vectors"

    def _stamp(self) -> tuple[int, int] | None:
        """Identifies the vector index on disk: every save writes a new meta.json (a new inode)."""
        try:
            st = (self._vectors_dir / "meta.json").stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns

    def version(self) -> tuple:
        """Changes whenever either index changes (as this process sees them): a cache key part."""
        return self.lexical.meta.get("last_seq"), self._vectors_stamp, self.store.max_seq()

    def refresh(self) -> None:
        """Pick up index changes another process wrote since (``paperradar index``, another web worker's
        ingest): the lexical index reloads its reader, the vector index is reopened if its files changed."""
        self.lexical.reload()
        if self._vectors is not None and self._stamp() != self._vectors_stamp:
            with self._load_lock:
                if self._vectors is not None and self._stamp() != self._vectors_stamp:
                    self._vectors = None

    def close(self) -> None:
        self.lexical.close()

    def warm(self, dense: bool = True) -> None:
        """Load what the first query would otherwise load: the lexical index, the model, the vectors.

        Raises the PaperradarError of an index that cannot be used (IndexMismatch; IndexCorrupt, with
        the rebuild command as its hint, for damaged files) instead of failing at the first query."""
        self.lexical.open_or_create()
        self.lexical.search(parse_query("warm"), limit=1)
        if dense:
            self.embedder.encode(["warm up"])
            self.vectors.search(self.embedder.encode(["warm"])[0], k=1)

    # -- indexing --------------------------------------------------------------------------------------
    def pending(self) -> dict[str, int]:
        """How many store changes each index has not seen yet."""
        head = self.store.max_seq()
        return {"lexical": self.store.count_changed_since(self.lexical.last_seq) if head else 0,
                "vectors": self.store.count_changed_since(self.vectors.last_seq) if head else 0}

    def update(self, progress: Callable[[str, int, int], None] | None = None, rebuild: str | None = None,
               dense: bool = True) -> dict[str, int]:
        """Bring the indexes up to date with the store; returns papers indexed per index.

        ``rebuild`` ("lexical", "vectors" or "all") builds that index again from the whole store, beside
        the one in use, and swaps it in when complete: searches (here and in other processes) use the old
        one until then, and an interrupted rebuild leaves it in place.

        Interruptible: the lexical index commits per batch and the vector index saves every
        SAVE_EVERY papers with the last change number it holds, so a re-run resumes (a rebuild starts
        over). IndexBusy when another process is updating an index.
        """
        with self._indexing:
            lex_progress = (lambda done, total: progress("lexical", done, total)) if progress else None
            if rebuild in ("all", "lexical"):
                n_lex = self.lexical.rebuild(self.store, progress=lex_progress)
            else:
                n_lex = self.lexical.update_from(self.store, progress=lex_progress)
            n_vec = self._update_vectors(progress, rebuild in ("all", "vectors")) if dense else 0
        return {"lexical": n_lex, "vectors": n_vec}

    def update_topics(self, rebuild: bool = False, least: int = TOPICS_MIN,
                      progress: Callable[[str], None] | None = None) -> dict:
        """Bring the topics index (paperradar/topics.py) up to date with the vector index: new and
        re-embedded papers join their nearest topic and are placed on the map (cost: what changed). With
        ``rebuild``, or when there is none yet and the corpus has at least ``least`` papers, cluster and
        lay out everything (minutes at 119k). Returns what was done; IndexBusy when another process is
        building it."""
        vectors = self.vectors
        if not rebuild and self._topics_model() not in (None, vectors.model):
            rebuild = True  # the vectors were embedded another way since: the old clusters do not fit them
        if rebuild or not (self._topics_dir / "meta.json").exists():
            if len(vectors) < (1 if rebuild else max(least, 1)):
                return {"built": False, "papers": len(vectors),
                        "reason": f"topics start at {least:,} papers"}
            return {"built": True, "rebuilt": True, **topics.build(self.store, vectors, self._topics_dir,
                                                                   progress=progress)}
        return topics.update(self.store, vectors, self._topics_dir)

    def _topics_model(self) -> str | None:
        """The vector model the topics index was built from (None when there is none, or unreadable)."""
        try:
            return json.loads((self._topics_dir / "meta.json").read_text()).get("model")
        except (OSError, ValueError, AttributeError):
            return None

    def catch_up(self, dense: bool = True) -> dict[str, int]:
        """Index what the store changed since the indexes last saw it; returns papers indexed per index.

        For a server's background thread, called every few seconds: when nothing changed it costs one
        SQL query (the store's last change number). Searches keep working on the indexes in place while
        papers are embedded, and see the new ones once each index is saved. Returns zeros at once when
        an update is already running (in this process, or in another one that holds an index's lock):
        the next call picks up what is left. The lexical index is caught up first; a vector index that
        cannot be used then raises its PaperradarError (IndexCorrupt, IndexMismatch), without reading its
        files again until they change.
        """
        head = self.store.max_seq()
        done = {"lexical": 0, "vectors": 0}
        lexical_behind = self.lexical.last_seq < head  # in memory, once the index is open
        vectors = self._vectors
        vectors_behind = dense and (vectors is None or vectors.last_seq < head)
        if not (lexical_behind or vectors_behind) or not self._indexing.acquire(blocking=False):
            return done
        try:
            if lexical_behind:
                try:
                    done["lexical"] = self.lexical.update_from(self.store)
                except IndexBusy:
                    pass
                if not done["lexical"]:
                    self.lexical.reload()  # another process indexed meanwhile: see its commits
            if vectors_behind:
                self.vectors  # noqa: B018 - loads the index, or raises why it cannot be used
                try:
                    done["vectors"] = self._update_vectors(None, rebuild=False)
                except IndexBusy:
                    pass
        finally:
            self._indexing.release()
        return done

    def _update_vectors(self, progress, rebuild: bool) -> int:
        """Embed what changed into a copy of the vector index (the whole store for a rebuild), save it
        and swap it in: the object searches use is never changed while they run. Returns papers embedded.

        A changed paper whose embedded text (:func:`paper_text`) hashes as its vector's did is not
        embedded again (a change of upvotes, dates or links): the index only records that it saw the
        change. New and re-embedded papers go to the index's small added segment: its base arrays and
        HNSW graph are linked unchanged, and folded into only now and then (see paperradar/vectors.py);
        the saved index is reopened without hashing those files again."""
        embedder = self.embedder
        with vectors_writing(self._vectors_dir):
            # Under the lock, what is on disk is final: the index in use if it is still that one, else
            # what another process saved since. A rebuild starts empty and leaves the index in place (of
            # another model, or corrupt) until its save.
            current = self._vectors
            in_use = not rebuild and current is not None and self._stamp() == self._vectors_stamp
            if in_use:
                vectors = current.copy()
            else:
                vectors = VectorIndex(self._vectors_dir, self.model_name, embedder.dim, load=not rebuild)
            # Sentence vectors: appended beside the index in use, or written to a fresh directory that a
            # rebuild swaps in with the vector index (an interrupted rebuild leaves both in place).
            sentences_dir = self._sentences_dir
            if rebuild:
                sentences_dir = sentences_dir.with_name("sentences.rebuild")
                SentenceIndex.remove(sentences_dir)
            sentences = SentenceIndex(sentences_dir, self.model_name, embedder.dim)
            start = seq = vectors.last_seq
            learned = not rebuild and vectors.texts_missing and self._learn_text_hashes(vectors) >= 0
            total = self.store.count_changed_since(seq)
            seen = embedded = 0
            while True:
                papers = self.store.changed_since(seq, limit=SAVE_EVERY)
                if not papers:
                    break
                for i in range(0, len(papers), EMBED_CHUNK):
                    chunk = papers[i:i + EMBED_CHUNK]
                    hashes = [text_hash(paper_text(p)) for p in chunk]
                    had = vectors.text_hashes(p.id for p in chunk)
                    todo = [j for j, (h, old) in enumerate(zip(hashes, had, strict=True)) if h != old]
                    if todo:
                        # One pass of the model over the papers' passages: paper and sentence vectors.
                        paper_vectors, sentence_vectors = passages.embed_papers(embedder,
                                                                                [chunk[j] for j in todo])
                        sentences.add([chunk[j].id for j in todo], sentence_vectors)
                        vectors.add([chunk[j].id for j in todo], paper_vectors, [hashes[j] for j in todo])
                    embedded += len(todo)
                    seen += len(chunk)
                    if progress:
                        progress("vectors", seen, total)
                seq = papers[-1].seq
                sentences.save()  # before the vector index that says these papers are done
                if not rebuild:
                    vectors.save(last_seq=seq)  # the resume point: a crash loses at most this batch
            if seq != start or rebuild or learned or vectors.needs_ann():
                sentences.save()
                if rebuild:
                    sentences.compact()  # one segment: the fastest to query (seconds at 119k, once)
                vectors.save(last_seq=seq, ann=True)
                if rebuild:
                    sentences_dir.mkdir(parents=True, exist_ok=True)  # none written for an empty store
                    swap_directories(sentences_dir, self._sentences_dir)
                    SentenceIndex.remove(sentences_dir)  # the old sentences, swapped out
                    sentences_dir = self._sentences_dir
                # Searched from the files just saved, memory-mapped: the page cache shares them between
                # worker processes, where the arrays built here would be a private copy in each. The
                # files this save wrote or linked are not hashed again (the bulk of a big index).
                vectors = vectors.reopen()
            elif in_use:
                return 0  # nothing changed: keep the index in use (and its float32 matrix)
            sentences = SentenceIndex(sentences_dir, self.model_name, embedder.dim)
            with self._load_lock:
                self._vectors, self._vectors_stamp, self._vectors_failed = vectors, self._stamp(), None
                self._sentences = sentences
        return embedded

    def _learn_text_hashes(self, vectors: VectorIndex) -> int:
        """An index saved before text hashes were kept: record the hash of each paper's current text for
        the papers the index has seen since their last change (their vectors were embedded from that
        very text), so that the changes to come re-embed only papers whose text changed. The papers
        changed since are left unknown: they are embedded again, once. One pass over the store, at the
        first update of such an index (even with nothing to embed: then it saves the hashes)."""
        seq, learned = 0, 0
        while seq < vectors.last_seq:
            papers = [p for p in self.store.changed_since(seq, limit=SAVE_EVERY) if p.seq <= vectors.last_seq]
            if not papers:
                break
            learned += vectors.set_text_hashes([p.id for p in papers],
                                               [text_hash(paper_text(p)) for p in papers])
            seq = papers[-1].seq
        return learned

    # -- querying --------------------------------------------------------------------------------------
    def retrieve(self, text: str | Query, mode: str = "hybrid",
                 limit: int = CANDIDATES) -> list[tuple[int, float]]:
        """Ranked (paper id, score) for a query, by relevance; the building block of :meth:`search`.
        Quoted phrases that no paper holds are searched as free words (see :func:`_loosened`)."""
        return self._retrieve_loosening(text, mode, limit)[0]

    def _retrieve_loosening(self, text: str | Query, mode: str,
                            limit: int) -> tuple[list[tuple[int, float]], tuple[str, ...]]:
        """:meth:`_retrieve`, and again with the phrases as free words when it finds nothing: the ranked
        papers and the phrases loosened (none when the query as typed found papers, or the loosened one
        found none either)."""
        if mode not in MODES:
            raise QueryError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        q = text if isinstance(text, Query) else parse_query(text)
        ranked = self._retrieve(q, mode, limit)
        if ranked or not q.phrases:
            return ranked, ()
        loose = self._retrieve(_loosened(q), mode, limit)
        return loose, (q.phrases if loose else ())

    def _retrieve(self, q: Query, mode: str, limit: int) -> list[tuple[int, float]]:
        n = max(limit, CANDIDATES)
        within = self._within(q)
        lexical = self.lexical.search(q, limit=n, within=within) if mode != "dense" or not q.text else []
        if mode == "lexical" or not q.text.strip():
            return lexical[:limit]
        # The model sees the words meant instead of words no paper holds (a rare word may be a real one).
        meant = self._meant(q, absent_only=True)[1] or q
        dense = self._by_sentences(meant, self._dense(meant, n, within))
        if mode == "dense":
            return dense[:limit]
        if self.fusion == "rrf":
            return rank.rrf([lexical, dense], limit=limit)
        if self.rescore and dense:
            lexical, dense = self._rescored(q, meant, lexical, dense)
        return rank.convex(lexical, dense, alpha=self.alpha, limit=limit)

    def _by_sentences(self, meant: Query, found: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """The dense run scored by each paper's best sentence (paperradar/passages.py) instead of its
        paper vector, best first (see :func:`_dense_score`); papers without sentence vectors keep their
        paper cosine."""
        if not found:
            return found
        best = self.sentences.best(self._embed_query(meant.text), [pid for pid, _ in found])
        short = _short(meant)
        return rank.sort_ranked({pid: _dense_score(short, s, best.get(pid)) for pid, s in found})

    def _rescored(self, q: Query, meant: Query, lexical: list[tuple[int, float]],
                  dense: list[tuple[int, float]]) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """Both runs completed with the other's papers (see RESCORE): the dense-only ones scored by BM25 in
        one lexical query confined to them (0 when they hold none of the words), the lexical-only ones by
        their cosine to the query's embedding (left out when they have no vector yet)."""
        in_lexical, in_dense = {pid for pid, _ in lexical}, {pid for pid, _ in dense}
        dense_only = [pid for pid, _ in dense if pid not in in_lexical]
        lexical_only = [pid for pid, _ in lexical if pid not in in_dense]
        bm25 = dict(self.lexical.search(q, limit=len(dense_only), within=dense_only)) if dense_only else {}
        qv = self._embed_query(meant.text)
        cosines = dict(self.vectors.similarities(qv, lexical_only))  # only papers with a vector
        best = self.sentences.best(qv, cosines)
        short = _short(meant)
        cosines = {pid: _dense_score(short, s, best.get(pid)) for pid, s in cosines.items()}
        return (rank.complete(lexical, dense_only, bm25, default=0.0),
                rank.complete(dense, lexical_only, cosines))

    def _meant(self, q: Query, absent_only: bool = False) -> tuple[str | None, Query | None]:
        """The query with its typos corrected (see paperradar/shorthand.py), as text and parsed; Nones
        when it has none. ``absent_only``: only the words no paper holds."""
        fixes = self.lexical.corrections_of_absent_words(q) if absent_only else self.lexical.corrections(q)
        if not fixes:
            return None, None
        meant = corrected_text(q.raw, fixes)
        try:
            return meant, parse_query(meant)
        except QueryError:  # one letter more can pass the length limit
            return None, None

    def did_you_mean(self, text: str) -> str | None:
        """The query with its typos corrected, or None when it has none."""
        return self._meant(parse_query(text))[0]

    def clear_query_cache(self) -> None:
        """Forget the cached query embeddings (a benchmark times queries with their embedding)."""
        self._embed_query.cache_clear()

    def _encode_query(self, text: str):
        v = self.embedder.encode([text])[0]
        v.setflags(write=False)  # shared by every caller of the cache
        return v

    def _dense(self, q: Query, n: int, within=None) -> list[tuple[int, float]]:
        qv = self._embed_query(q.text)
        constrained = q.has_filters or q.phrases or q.fields
        if within is not None:  # a topic's papers: every one of them compared exactly
            found = rank.sort_ranked(dict(self.vectors.similarities(qv, within.tolist())))[:n * 5]
        else:
            found = self.vectors.search(qv, k=n * 5 if constrained else n)
        if not constrained:
            return found
        papers = {p.id: p for p in self.store.get_many(pid for pid, _ in found)}
        return [(pid, s) for pid, s in found if pid in papers and _matches(papers[pid], q)][:n]

    def search(self, text: str, limit: int = 20, offset: int = 0, mode: str = "hybrid",
               sort: str | None = None) -> Results:
        """Search papers. ``sort`` (relevance, newest, trending) overrides the query's ``sort:``."""
        t = time.perf_counter()
        q = parse_query(text)
        limit = max(1, min(limit, MAX_LIMIT))
        sort = sort or q.sort
        if sort not in ("relevance", "newest", "trending"):
            raise QueryError(f"unknown sort {sort!r}; choose relevance, newest or trending")
        want = offset + limit
        ranked, loosened = self._retrieve_loosening(q, mode, max(want, CANDIDATES))
        if loosened:
            q = _loosened(q)
        if sort == "relevance":  # only the page shown needs its papers read
            ranked = ranked[offset:want]
            offset, want = 0, limit
        papers = {p.id: p for p in self.store.get_many(pid for pid, _ in ranked)}
        scored = [(papers[pid], s) for pid, s in ranked if pid in papers]
        if sort == "newest":
            sort_newest(scored)
        elif sort == "trending":
            votes = self.store.vote_totals(p.id for p, _ in scored)
            w = trending.window(self.store, "day")
            now = w[2] if w else clock.utc()

            def score(p: StoredPaper) -> float:
                age = trending.age_hours(p.announced or p.submitted, now)
                return rank.trending_score(votes.get(p.id, 0), age)

            # An undated paper's age is unknown, not old: it goes last, whatever its votes.
            scored.sort(key=lambda ps: (not (ps[0].announced or ps[0].submitted), -score(ps[0]), ps[0].id))
        # A typo's correction is searched too (lexical.py): mark what it matched.
        meant, shown = self._meant(q)
        hits = [Hit(p, s, self._highlights(p, shown or q)) for p, s in scored[offset:want]]
        return Results(text, mode, sort, hits, round(1000 * (time.perf_counter() - t), 2), did_you_mean=meant,
                       loosened=loosened)

    @staticmethod
    def _highlights(p: StoredPaper, q: Query) -> dict[str, list[tuple[int, int]]]:
        return {"title": highlight_spans(p.title, q, "title"),
                "abstract": highlight_spans(p.abstract, q, "abstract")}

    def new_matches(self, text: str, candidates: list[int], limit: int = 10,
                    min_similarity: float = DIGEST_MIN_SIMILARITY, since: str | None = None) -> list[Hit]:
        """The best of ``candidates`` (paper ids, e.g. the papers listed since a subscriber's last digest)
        for a saved search, leaving weak matches out: a paper qualifies by matching the query lexically
        (its words, phrases and filters) or by an embedding similarity of at least ``min_similarity``.
        The qualifying papers are ranked like search (convex fusion). ``since`` (a day) narrows the
        lexical side to papers listed from then on, so it looks among the new papers, not the whole store.
        """
        q = parse_query(text)
        allowed = set(candidates)
        within = self._within(q)
        if within is not None:
            allowed.intersection_update(within.tolist())
        if not allowed:
            return []
        lexical_q = dataclasses.replace(q, since=max(q.since or "", since)) if since else q
        lexical = [(pid, s) for pid, s in self.lexical.search(lexical_q, limit=max(CANDIDATES, 4 * limit),
                                                              within=within)
                   if pid in allowed]
        if lexical and q.terms:
            # A lexical match qualifies only with every free word: the engine's OR lets one common word,
            # or a stopword the analyzer keeps ("on", "the"), bring in an off-topic paper.
            every_word = dataclasses.replace(q, phrases=q.phrases + q.terms)
            papers = {p.id: p for p in self.store.get_many(pid for pid, _ in lexical)}
            lexical = [(pid, s) for pid, s in lexical if pid in papers and _matches(papers[pid], every_word)]
        dense: list[tuple[int, float]] = []
        if q.text.strip():
            sims = self.vectors.similarities(self._embed_query(q.text), sorted(allowed))
            strong = [(pid, s) for pid, s in sims if s >= min_similarity]
            if strong and (q.has_filters or q.phrases or q.fields):
                papers = {p.id: p for p in self.store.get_many(pid for pid, _ in strong)}
                strong = [(pid, s) for pid, s in strong if pid in papers and _matches(papers[pid], q)]
            dense = rank.sort_ranked(dict(strong))
        fused = rank.convex(lexical, dense, alpha=self.alpha, limit=limit) if dense else lexical[:limit]
        papers = {p.id: p for p in self.store.get_many(pid for pid, _ in fused)}
        return [Hit(papers[pid], s, self._highlights(papers[pid], q)) for pid, s in fused if pid in papers]

    def related(self, ref: str, limit: int = 10) -> list[Hit]:
        """Papers most similar to a stored paper (by embedding), the paper itself left out."""
        paper = self.store.get(ref)
        v = self.vectors.vector(paper.id)
        if v is None:
            v = passages.embed_papers(self.embedder, [paper])[0][0]
        found = [(pid, s) for pid, s in self.vectors.search(v, k=limit + 1) if pid != paper.id][:limit]
        return self._hits(found)

    def like_text(self, text: str, limit: int = 10) -> list[Hit]:
        """Papers most similar to a pasted text (e.g. an abstract)."""
        text = (text or "").strip()
        if not text:
            raise QueryError("paste some text to find papers like it")
        if len(text) > 20_000:
            raise QueryError("text is too long (limit 20,000 characters)")
        return self._hits(self.vectors.search(self.embedder.encode([text])[0], k=limit))

    def _hits(self, found: list[tuple[int, float]]) -> list[Hit]:
        papers = {p.id: p for p in self.store.get_many(pid for pid, _ in found)}
        return [Hit(papers[pid], s) for pid, s in found if pid in papers]

    def trend(self, text: str, mode: str = "hybrid", pool: int = TREND_POOL,
              months: int | None = None) -> dict:
        """Papers per month among a search's ``pool`` best matches (a query of filters alone: all its
        papers up to ``pool``), from its first month to its last (or the last ``months`` months), zeros
        included; undated papers are counted apart."""
        found = self.retrieve(text, mode=mode, limit=pool)
        days = self.store.listing_days(pid for pid, _ in found)
        numbers = np.array([topics.day_number(d) for d in days.values()], dtype=np.int64)
        dated = numbers[numbers >= 0]
        series = topics.per_month(dated)
        if months and len(series) > months:
            series = series[-months:]
        return {"query": text, "mode": mode, "pool": pool, "matches": len(found),
                "undated": int(len(numbers) - len(dated)),
                "months": [{"month": m, "papers": c} for m, c in series]}

