"""Suggestions while typing: titles, authors, categories and frequent phrases that start with what was typed.

A derived index, rebuilt from the store at will and kept current with ``store.changed_since(seq)`` like the
other indexes. It lives in memory as plain sorted arrays (a ``Snapshot``): the normalized keys as a
fixed-width bytes array (binary search with ``numpy.searchsorted``), beside each key its kind, a score and a
reference (a paper id for a title, else an index into the snapshot's display texts). A prefix is one range
of the sorted keys; the best entries of the range are picked with ``argpartition`` — linear in the range,
which stays well under a millisecond even for a one-letter prefix (measured in bench/suggest_speed.py).

Titles are not kept in memory: the few a suggestion list shows are read back from the store by id. New and
changed papers go to a small second snapshot (the delta), merged into the base once it grows; a title that
changed is hidden in the base by its paper id. Phrase counts and author counts of the base stay as they
were until a rebuild (``Suggester.rebuild``), which is what a stale count costs.

Each built base is saved (``<data dir>/index/suggest/``: the arrays as ``.npy`` files, the display texts as
JSON, the change sequence it reflects), so a restarted server or a new worker loads it memory-mapped in
well under a second instead of building it (37 s at 119k), then catches up from its sequence.

Matching: a whole-text prefix ("attention is all y" -> the title), or a word prefix (an author's surname:
"lecun"), whole-text before word; and the last words being typed completed with a frequent phrase ("robust
diffusion mod" -> "robust diffusion models"), or with a category or author after ``cat:`` / ``au:``.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import re
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np

from .models import normalize_title
from .urls import paper_path
from .vectors import swap_directories

log = logging.getLogger("paperradar.suggest")
KINDS = ("title", "author", "category", "phrase")
TITLE, AUTHOR, CATEGORY, PHRASE = range(4)
KEY_BYTES = 32  # keys are cut here (most of the index's memory); a longer prefix is checked on the full text
MAX_Q = 200
MAX_LIMIT = 20
PAGE = 5_000  # papers read from the store at a time
MERGE_AT = 0.05  # the delta is merged into the base once it holds this share of the base's entries
FORMAT = 1  # of the saved base
ARRAYS = ("keys", "kinds", "whole", "scores", "refs")
_TOKEN = re.compile(r"[a-z][a-z0-9]+(?:-[a-z0-9]+)*")
STOPWORDS = frozenset("""a an and are as at be by can for from has have in is it its of on or our that the
their this these those to we with which via using based towards toward new not into over under than then there
when where while how what why who all also both each more most such only other some very vs non like
http https www com org github html pdf et al""".split())


def normalize(text: str) -> str:
    """The form of keys and queries: case-, accent- and punctuation-insensitive, single spaces."""
    return normalize_title(text)


def _phrases(text: str) -> set[str]:
    """The 2- and 3-word phrases of ``text`` that neither begin nor end with a stopword."""
    words = _TOKEN.findall(text.lower())
    out = set()
    for i, w in enumerate(words):
        if w in STOPWORDS:
            continue
        for n in (2, 3):
            if i + n <= len(words):
                last = words[i + n - 1]
                if last not in STOPWORDS:
                    out.add(" ".join(words[i:i + n]))
    return out


def phrase_threshold(papers: int) -> int:
    """How many papers a phrase must occur in to be suggested: 5, or 1 in 5,000 papers on a large store."""
    return max(5, papers // 5_000)


@dataclass(frozen=True)
class Suggestion:
    text: str
    kind: str
    url: str

    def to_dict(self) -> dict:
        return {"text": self.text, "kind": self.kind, "url": self.url}


class Snapshot:
    """Sorted arrays of (key, kind, whole, score, ref), and the display texts of non-title entries."""

    def __init__(self, keys: list[bytes], kinds: list[int], whole: list[bool], scores: list[float],
                 refs: list[int], texts: list[str]):
        order = np.argsort(np.array(keys, dtype=f"S{KEY_BYTES}"), kind="stable")
        self.keys = np.array(keys, dtype=f"S{KEY_BYTES}")[order]
        self.kinds = np.array(kinds, dtype=np.uint8)[order]
        self.whole = np.array(whole, dtype=bool)[order]
        self.scores = np.array(scores, dtype=np.float32)[order]
        self.refs = np.array(refs, dtype=np.int32)[order]
        self.texts = texts

    def __len__(self) -> int:
        return len(self.keys)

    def save(self, directory: Path, seq: int, phrases_from_abstracts: bool) -> None:
        """Write the snapshot beside ``directory`` and swap it in: a reader finds the old one or the new."""
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}-"))
        try:
            for name in ARRAYS:
                np.save(tmp / f"{name}.npy", np.asarray(getattr(self, name)))
            (tmp / "texts.json").write_text(json.dumps(self.texts))
            (tmp / "meta.json").write_text(json.dumps({"format": FORMAT, "seq": seq, "entries": len(self),
                                                       "phrases_from_abstracts": phrases_from_abstracts}))
            swap_directories(tmp, directory)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # the snapshot swapped out (or a half-written one)

    @classmethod
    def load(cls, directory: Path, phrases_from_abstracts: bool) -> tuple[Snapshot, int] | None:
        """A saved snapshot (memory-mapped) and its change sequence, or None when there is none usable:
        missing, of another format or settings, or damaged (then the caller builds a new one)."""
        try:
            meta = json.loads((directory / "meta.json").read_text())
            if (not isinstance(meta, dict) or meta.get("format") != FORMAT
                    or meta.get("phrases_from_abstracts") != phrases_from_abstracts):
                return None
            arrays = {name: np.load(directory / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
            texts = json.loads((directory / "texts.json").read_text())
            seq = int(meta["seq"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        n = len(arrays["keys"])
        if (arrays["keys"].dtype != np.dtype(f"S{KEY_BYTES}") or not isinstance(texts, list)
                or any(a.shape != (n,) for a in arrays.values()) or n != meta.get("entries")):
            return None
        snap = cls.__new__(cls)
        for name, a in arrays.items():
            setattr(snap, name, a)
        snap.texts = texts
        return snap, seq

    @property
    def nbytes(self) -> int:
        """Memory held, in bytes: the arrays plus the display strings (and the list's pointers)."""
        import sys

        arrays = sum(a.nbytes for a in (self.keys, self.kinds, self.whole, self.scores, self.refs))
        return arrays + sys.getsizeof(self.texts) + sum(sys.getsizeof(t) for t in self.texts)

    def range(self, prefix: bytes) -> tuple[int, int]:
        lo = int(np.searchsorted(self.keys, prefix, side="left"))
        hi = int(np.searchsorted(self.keys, prefix + b"\xff", side="right"))
        return lo, hi

    def best(self, prefix: bytes, n: int, kinds: tuple[int, ...] | None = None) -> list[int]:
        """Indexes of the ``n`` best entries under ``prefix``: whole-text matches first, then by score."""
        lo, hi = self.range(prefix)
        if hi <= lo:
            return []
        rank = self.scores[lo:hi] + self.whole[lo:hi] * np.float32(10.0)
        if kinds is not None:
            rank = np.where(np.isin(self.kinds[lo:hi], kinds), rank, np.float32(-1.0))
        if hi - lo > n:
            top = np.argpartition(-rank, n)[:n]
        else:
            top = np.arange(hi - lo)
        top = top[np.argsort(-rank[top], kind="stable")]
        return [lo + int(i) for i in top if rank[i] >= 0]


class _Entries:
    """Columns being gathered for a Snapshot."""

    def __init__(self):
        self.keys: list[bytes] = []
        self.kinds: list[int] = []
        self.whole: list[bool] = []
        self.scores: list[float] = []
        self.refs: list[int] = []
        self.texts: list[str] = []

    def add(self, key: str, kind: int, score: float, ref: int, whole: bool = True) -> None:
        b = key.encode()[:KEY_BYTES]
        if b:
            self.keys.append(b)
            self.kinds.append(kind)
            self.whole.append(whole)
            self.scores.append(score)
            self.refs.append(ref)

    def text(self, text: str) -> int:
        self.texts.append(text)
        return len(self.texts) - 1

    def add_counted(self, counts: Counter, kind: int, top: int) -> None:
        """One entry per counted text (authors also under each later word of their name: the surname)."""
        scale = math.log1p(max(top, 1))
        for text, n in counts.items():
            key = normalize(text)
            ref = self.text(text)
            score = math.log1p(n) / scale
            self.add(key, kind, score, ref)
            if kind == AUTHOR:
                words = key.split()
                for i in range(1, len(words)):
                    self.add(" ".join(words[i:]), kind, score, ref, whole=False)

    def snapshot(self) -> Snapshot:
        return Snapshot(self.keys, self.kinds, self.whole, self.scores, self.refs, self.texts)


def _recency(date: str | None) -> float:
    """0 for 1990 or earlier (or unknown), 1 for 2030: a paper's age as a share of the title score."""
    try:
        year = int((date or "")[:4]) + int((date or "")[5:7] or 1) / 12
    except ValueError:
        return 0.0
    return min(max((year - 1990) / 40, 0.0), 1.0)


def _title_score(p) -> float:
    # newer and upvoted papers first; a title score stays below 1 like the others
    votes = min(math.log1p(p.upvotes or 0) / math.log(1000), 1.0)
    return 0.5 * _recency(p.submitted or p.announced) + 0.5 * votes


def _add_titles(entries: _Entries, papers: Iterable) -> None:
    for p in papers:
        entries.add(normalize(p.title), TITLE, _title_score(p), p.id)


def _pages(store, since: int) -> Iterator[list]:
    while True:
        page = store.changed_since(since, limit=PAGE)
        if not page:
            return
        yield page
        since = page[-1].seq


def build(store, *, phrases_from_abstracts: bool = True) -> tuple[Snapshot, int]:
    """A base snapshot of the whole store, and the change sequence it reflects."""
    entries = _Entries()
    authors: Counter = Counter()
    categories: Counter = Counter()
    phrases: Counter = Counter()
    batch: Counter = Counter()
    in_titles: Counter = Counter()
    seq = n = 0
    for page in _pages(store, 0):
        _add_titles(entries, page)
        for p in page:
            authors.update(set(p.authors))
            categories.update(set(p.categories))
            found = _phrases(p.title)
            in_titles.update(found)
            if phrases_from_abstracts:
                found |= _phrases(p.abstract)
            batch.update(found)
        n += len(page)
        seq = page[-1].seq
        # Lossy counting keeps memory bounded: a phrase seen once in a page of papers is dropped unless it
        # is already counted. A frequent phrase is seen twice in some page long before it reaches the
        # threshold; what is lost is a rare phrase, which is never suggested anyway.
        phrases.update({k: v for k, v in batch.items() if v > 1 or k in phrases})
        batch.clear()
    keep = phrase_threshold(n)
    # a phrase must also name what papers are about (be in two titles): abstracts alone give "across various"
    phrases = Counter({k: v for k, v in phrases.items() if v >= keep and in_titles[k] >= 2})
    entries.add_counted(authors, AUTHOR, max(authors.values(), default=1))
    entries.add_counted(categories, CATEGORY, max(categories.values(), default=1))
    entries.add_counted(phrases, PHRASE, max(phrases.values(), default=1))
    return entries.snapshot(), seq


def _search_url(q: str) -> str:
    return "/search?q=" + quote(q, safe="")


def _filter_value(kind: int, text: str) -> str:
    if kind == CATEGORY:
        return f"cat:{text}"
    if kind == AUTHOR:
        return f'au:"{text}"'
    return text


class Suggester:
    """The suggestion index over one store: ``suggest(q)`` answers, ``catch_up()`` follows the store."""

    def __init__(self, store, *, phrases_from_abstracts: bool = True, directory: str | Path | None = None):
        """``directory``: where the base is saved after each build and loaded from (None: memory only)."""
        self.store = store
        self.directory = Path(directory) if directory is not None else None
        self.phrases_from_abstracts = phrases_from_abstracts
        self._lock = threading.Lock()
        self._state: tuple[Snapshot, Snapshot, frozenset[int], int] | None = None  # base, delta, stale, seq
        self._delta_papers: dict[int, object] = {}

    @property
    def ready(self) -> bool:
        return self._state is not None

    @property
    def seq(self) -> int:
        return self._state[3] if self._state else 0

    def rebuild(self) -> None:
        """Build the whole index from the store (and drop the delta); saved when there is a directory."""
        base, seq = build(self.store, phrases_from_abstracts=self.phrases_from_abstracts)
        if self.directory is not None:
            try:
                base.save(self.directory, seq, self.phrases_from_abstracts)
            except OSError as e:  # a read-only data directory: suggestions work, the next start builds again
                log.warning("suggestion index not saved to %s: %s", self.directory, e)
        with self._lock:
            self._delta_papers = {}
            self._state = (base, _Entries().snapshot(), frozenset(), seq)

    def load(self) -> bool:
        """Take the saved base, when there is one for this store (a sequence beyond the store's means
        another store's, or one replaced since). The papers changed since it are left to catch_up."""
        if self.directory is None:
            return False
        found = Snapshot.load(self.directory, self.phrases_from_abstracts)
        if found is None or found[1] > self.store.max_seq():
            return False
        with self._lock:
            self._delta_papers = {}
            self._state = (found[0], _Entries().snapshot(), frozenset(), found[1])
        return True

    def catch_up(self) -> int:
        """Take in papers added or changed since the index was built; returns how many. Loads the saved
        base, or builds it, first if there is none in memory. Cheap when nothing changed: one indexed
        count."""
        if self._state is None and not self.load():
            self.rebuild()
            return 0
        with self._lock:
            base, _, stale, seq = self._state
            if not self.store.count_changed_since(seq):
                return 0
            changed = [p for page in _pages(self.store, seq) for p in page]
            for p in changed:
                self._delta_papers[p.id] = p
            delta = self._delta_snapshot(list(self._delta_papers.values()))
            stale = stale | {p.id for p in changed}
            self._state = (base, delta, stale, changed[-1].seq)
        if len(delta) > MERGE_AT * max(len(base), 1):
            self.rebuild()
        return len(changed)

    @staticmethod
    def _delta_snapshot(papers: list) -> Snapshot:
        entries = _Entries()
        _add_titles(entries, papers)
        authors = Counter(a for p in papers for a in set(p.authors))
        categories = Counter(c for p in papers for c in set(p.categories))
        # new entries are scored as if rare: an author already in the base keeps the base's higher score
        entries.add_counted(authors, AUTHOR, 1000)
        entries.add_counted(categories, CATEGORY, 1000)
        return entries.snapshot()

    def memory(self) -> int:
        """Bytes held by the index (its arrays and display strings)."""
        if self._state is None:
            return 0
        return self._state[0].nbytes + self._state[1].nbytes

    def __len__(self) -> int:
        return len(self._state[0]) + len(self._state[1]) if self._state else 0

    # -- answering -----------------------------------------------------------------------------------------
    def suggest(self, q: str, limit: int = 8) -> list[Suggestion]:
        """Up to ``limit`` suggestions for the text typed so far: whole-text matches (titles, authors,
        categories, phrases), then the last words completed. Never raises on any text."""
        state = self._state
        limit = max(0, min(int(limit), MAX_LIMIT))
        if state is None or not limit or not isinstance(q, str):
            return []
        q = q[:MAX_Q]
        base, delta, stale, _ = state
        out: list[Suggestion] = []
        seen: set[tuple[int, str]] = set()

        def take(found: list[tuple[float, Snapshot, int]], want: str, head: str, room: int) -> None:
            # one kind may fill at most half the list while others have candidates (a common first name
            # should not hide every title); what is left over is filled in a second pass
            per_kind = Counter()
            cap = max(2, (limit + 1) // 2)
            found = found + [(0.0, s, -1 - i) for _, s, i in found]
            titles = [int(s.refs[i]) for _, s, i in found if i >= 0 and s.kinds[i] == TITLE]
            papers = {p.id: p for p in self.store.get_many(titles)} if titles else {}
            for _, s, i in found:
                if len(out) >= limit or room <= 0:
                    return
                second = i < 0
                i = -1 - i if second else i
                kind = int(s.kinds[i])
                if not second and per_kind[kind] >= cap:
                    continue
                kind, ref = int(s.kinds[i]), int(s.refs[i])
                if kind == TITLE:
                    p = papers.get(ref)
                    if p is None or (s is base and ref in stale) or not normalize(p.title).startswith(want):
                        continue
                    text, url = p.title, paper_path(p)
                else:
                    text = s.texts[ref]
                    if s.whole[i] and not normalize(text).startswith(want):  # a key cut at KEY_BYTES
                        continue
                    if kind == PHRASE:
                        text = f"{head} {text}" if head else text
                        url = _search_url(text)
                    else:  # an author or category searches as a filter, after what was typed before it
                        value = _filter_value(kind, text)
                        url = _search_url(f"{head} {value}" if head else value)
                if (kind, text.casefold()) in seen:
                    continue
                seen.add((kind, text.casefold()))
                out.append(Suggestion(text, KINDS[kind], url))
                per_kind[kind] += 1
                room -= 1

        def ranked(prefix: str, n: int, kinds: tuple[int, ...] | None = None) -> list:
            b = prefix.encode()
            if len(b) >= KEY_BYTES - 1:  # keys cut short match more than the prefix: take more, check each
                b, n = b[:KEY_BYTES - 1], n * 10
            found = []
            for s in (base, delta):
                if len(s):
                    found += [(float(s.scores[i]) + 10.0 * bool(s.whole[i]), s, i)
                              for i in s.best(b, n, kinds)]
            return heapq.nlargest(n, found, key=lambda t: t[0])

        raw = " ".join(q.split())
        # the filters of the query language: complete the value being typed after cat: or au:
        m = re.search(r'(?:^|\s)-?(cat|category|au|author):"?([^"\s:][^":]*)?$', raw)
        if m:
            head = raw[:m.start()].strip()
            want = normalize(m.group(2) or "")
            kind = CATEGORY if m.group(1).startswith("cat") else AUTHOR
            if want or kind == CATEGORY:
                take(ranked(want, limit * 2, (kind,)), want, head, limit)
            return out
        want = normalize(q)
        if not want:
            return out
        # keep room for the completions of the last words, and for titles beside many authors of one name
        found = [f for k in range(len(KINDS)) for f in ranked(want, limit, (k,))]
        take(sorted(found, key=lambda t: -t[0]), want, "", limit)
        words = want.split()
        for n in (3, 2, 1):
            if len(out) >= limit or len(words) <= n:
                continue
            tail = " ".join(words[-n:])
            if len(tail) < 2:
                continue
            head_words = raw.split()[:-n] if len(raw.split()) == len(words) else words[:-n]
            take(ranked(tail, limit * 2, (PHRASE,)), tail, " ".join(head_words), limit - len(out))
        return out
