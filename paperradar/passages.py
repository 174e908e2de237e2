"""Sentence-level evidence for dense search: how a paper is read in passages, and its sentence vectors.

A claim or a question usually matches one sentence of an abstract, and a whole-abstract vector blurs it
with the rest. So the model reads each paper as passages of :data:`WINDOW` sentences with the title in
front (``"Title. Sentence one. Sentence two."``), and from that one pass
(:meth:`~paperradar.embed.Embedder.encode_spans`) each sentence gets a vector of its own, pooled from its
tokens read in the context of the title and its neighbour ("late chunking"). The paper's vector (the
one in the vector index, used by recommendations, topics and the map) is the normalised mean of its
passages' vectors, so the whole abstract counts, not its first 256 tokens.

Search then scores a candidate by its best sentence (:meth:`SentenceIndex.best`). Measured on SciFact train
(bench/eval_late_chunks.py, bench/results/eval_sentences_train.json) and for the cost of indexing
(bench/eval_passage_cost.py): see the README's quality table.

:class:`SentenceIndex` keeps the sentence vectors, derived from the store like every index: append-only
segments of int8 rows (one scale per row), the latest rows of a paper winning, compacted when most rows are
stale. Searches read it memory-mapped, without locks; an update writes new segment files and swaps a small
``meta.json``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .errors import PaperradarError

__all__ = ["WINDOW", "RECIPE", "passages", "embed_papers", "SentenceIndex"]

WINDOW = 2  # sentences per passage
#: Names the way papers are embedded; part of the vector index's model name, so an index embedded
#: another way is rebuilt rather than mixed.
RECIPE = f"passages-{WINDOW}"
MAX_SENTENCE = 600  # characters: longer "sentences" (formulas, lists, no full stops) are cut at words
FORMAT = 1
META = "meta.json"
COMPACT_FRACTION = 0.5  # stale rows above this share of all rows: rewrite the live ones as one segment
COMPACT_MIN = 50_000  # ... and only once there are this many stale rows
# Segments merge by size tier, as a log-structured index does: once TIER_MERGE segments hold a number of rows
# within the same power of TIER_FACTOR, a save rewrites those (their live rows) as one. A row is rewritten
# about log(rows) / log(TIER_FACTOR) times in all, and a query visits a few segments per tier: each costs a
# pass of numpy calls (119k papers, 100 candidates: 1.5 ms over the 30 segments a first indexing run left
# without merging, 0.37 ms over one).
TIER_FACTOR = 4
TIER_MERGE = 4
READ_TRIES = 5

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


def sentences(text: str) -> list[str]:
    """The sentences of an abstract, none longer than MAX_SENTENCE characters (cut at spaces)."""
    out = []
    for s in _SENTENCE_END.split(text or ""):
        s = s.strip()
        while len(s) > MAX_SENTENCE:
            cut = s.rfind(" ", MAX_SENTENCE // 2, MAX_SENTENCE)
            cut = cut if cut > 0 else MAX_SENTENCE
            out.append(s[:cut].strip())
            s = s[cut:].strip()
        if s:
            out.append(s)
    return out


def passages(title: str, abstract: str | None) -> list[tuple[str, list[tuple[int, int]]]]:
    """The texts the model reads for a paper, each with the character spans of its sentences: windows of
    WINDOW sentences behind the title. A paper without an abstract is its title, without spans (its one
    "sentence" is then its paper vector, see embed_papers)."""
    title = (title or "").strip()
    sents = sentences(abstract or "")
    if not sents:  # no sentences: the title's own vector (as a text, [CLS] and [SEP] included) stands
        return [(title, [])]
    head = f"{title}. " if title else ""
    out = []
    for i in range(0, len(sents), WINDOW):
        text, spans = head, []
        for s in sents[i:i + WINDOW]:
            if len(text) > len(head):
                text += " "
            spans.append((len(text), len(text) + len(s)))
            text += s
        out.append((text, spans))
    return out


def embed_papers(embedder, papers: Sequence) -> tuple[np.ndarray, list[np.ndarray]]:
    """Paper vectors ``(n, dim)`` and each paper's sentence vectors, in one pass of the model over all
    their passages (sorted by length together, so short passages batch with short ones)."""
    texts, spans, owner = [], [], []
    for i, p in enumerate(papers):
        for text, sp in passages(p.title, p.abstract):
            texts.append(text)
            spans.append(sp)
            owner.append(i)
    vectors, parts = embedder.encode_spans(texts, spans)
    owner_arr = np.array(owner, dtype=np.int64)
    papers_out = np.zeros((len(papers), embedder.dim), dtype=np.float32)
    np.add.at(papers_out, owner_arr, vectors)
    norms = np.linalg.norm(papers_out, axis=1, keepdims=True)
    papers_out /= np.maximum(norms, 1e-12)
    per_paper: list[list[np.ndarray]] = [[] for _ in papers]
    for o, rows in zip(owner, parts, strict=True):
        if len(rows):
            per_paper[o].append(rows)
    sents = [np.concatenate(x) if x else papers_out[i:i + 1].copy() for i, x in enumerate(per_paper)]
    return papers_out, sents


def _runs(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The row numbers of runs (start, count), concatenated: [3, 4, 9] for starts [3, 9], counts [2, 1]."""
    counts = counts.astype(np.int64)
    before = np.cumsum(counts) - counts  # rows of the earlier runs
    return np.repeat(starts.astype(np.int64) - before, counts) + np.arange(int(counts.sum()))


class SentenceIndexError(PaperradarError):
    """The sentence index cannot be read (damaged files): rebuild the vectors."""

    http_status = 503


def _quantize(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows and one float32 scale per row (the row's largest magnitude / 127)."""
    scale = np.maximum(np.abs(v).max(axis=1), 1e-12) / 127.0
    return np.round(v / scale[:, None]).astype(np.int8), scale.astype(np.float32)


class SentenceIndex:
    """Sentence vectors by paper, in ``directory``: segments ``NNNNNN.{vec,scale,owner}.npy`` (int8 rows,
    float32 scales, paper ids; a paper's rows contiguous in one segment) listed by ``meta.json`` with the
    model name. Reading: :meth:`best`. Writing (one writer, under the vector index's lock): :meth:`add`
    then :meth:`save`; readers keep the object they hold and see the new rows after :meth:`reopen`."""

    def __init__(self, directory: str | Path, model: str, dim: int):
        self.directory = Path(directory)
        self.model, self.dim = model, dim
        self._segments: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []  # (paper ids, rows per id) to save
        self._lookup = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32),
                        np.zeros(0, np.int32))  # sorted paper ids -> segment, start, count
        self._rows = 0
        self._lock = threading.Lock()  # add/save from one writer thread; reads need none
        self._read()

    # -- reading -----------------------------------------------------------------------------------------
    def _read(self) -> None:
        for _ in range(READ_TRIES):
            try:
                return self._read_once()
            except FileNotFoundError:
                continue  # a compaction removed a segment between our reads of meta.json and of it
        raise SentenceIndexError(f"the sentence index {self.directory} keeps changing under the reader",
                                 hint="try again")

    def _read_once(self) -> None:
        try:
            meta = json.loads((self.directory / META).read_text())
        except FileNotFoundError:
            if (self.directory / META).exists():
                raise
            return
        except (OSError, ValueError) as err:
            raise SentenceIndexError(f"cannot read {self.directory / META}: {err}",
                                     hint="run `paperradar index --rebuild vectors`") from None
        if meta.get("format") != FORMAT or meta.get("model") != self.model or meta.get("dim") != self.dim:
            return  # another model's sentences: not used, and replaced by the next rebuild
        segments = []
        try:
            for name in meta["segments"]:
                vec = np.load(self.directory / f"{name}.vec.npy", mmap_mode="r")
                scale = np.load(self.directory / f"{name}.scale.npy", mmap_mode="r")
                owner = np.load(self.directory / f"{name}.owner.npy")
                if vec.shape != (len(owner), self.dim) or scale.shape != (len(owner),):
                    raise ValueError(f"segment {name} has mismatched arrays")
                segments.append((name, vec, scale, owner))
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError) as err:
            raise SentenceIndexError(f"damaged sentence index {self.directory}: {err}",
                                     hint="run `paperradar index --rebuild vectors`") from None
        self._segments = segments
        self._rebuild_lookup()

    def _rebuild_lookup(self) -> None:
        keys, seg, start, count = [], [], [], []
        for s, (_, _, _, owner) in enumerate(self._segments):
            if not len(owner):
                continue
            # A paper's rows are contiguous: the first row of each run and its length.
            ids, first, n = np.unique(owner, return_index=True, return_counts=True)
            keys.append(ids)
            seg.append(np.full(len(ids), s, np.int32))
            start.append(first.astype(np.int64))
            count.append(n.astype(np.int32))
        if not keys:
            self._lookup = (np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64),
                            np.zeros(0, np.int32))
            self._rows = 0
            return
        k, g, f, c = (np.concatenate(x) for x in (keys, seg, start, count))
        # The latest segment wins: stable sort by id, keep each id's last entry.
        order = np.lexsort((g, k))
        k, g, f, c = k[order], g[order], f[order], c[order]
        last = np.r_[k[1:] != k[:-1], True]
        self._lookup = (k[last], g[last], f[last], c[last])
        self._rows = sum(len(o) for *_, o in self._segments)

    def __len__(self) -> int:
        """Papers with sentence vectors."""
        return len(self._lookup[0])

    @property
    def stale(self) -> int:
        """Rows of papers embedded again since (kept until a compaction)."""
        return self._rows - int(self._lookup[3].sum())

    def rows(self, paper_id: int) -> np.ndarray:
        """A paper's sentence vectors (float32, L2-normalised up to int8 rounding); none: shape (0, dim)."""
        keys, seg, start, count = self._lookup
        i = int(np.searchsorted(keys, paper_id))
        if i >= len(keys) or keys[i] != paper_id:
            return np.zeros((0, self.dim), np.float32)
        _, vec, scale, _ = self._segments[seg[i]]
        s, n = int(start[i]), int(count[i])
        return vec[s:s + n].astype(np.float32) * scale[s:s + n, None]

    def best(self, query: np.ndarray, paper_ids: Iterable[int]) -> dict[int, float]:
        """Each paper's best sentence cosine to ``query`` (a unit vector); papers without sentence
        vectors are left out (the caller uses their paper vector)."""
        ids = np.fromiter((int(i) for i in paper_ids), dtype=np.int64)
        keys, seg, start, count = self._lookup
        if not len(ids) or not len(keys):
            return {}
        pos = np.clip(np.searchsorted(keys, ids), 0, len(keys) - 1)
        found = keys[pos] == ids
        out: dict[int, float] = {}
        q = np.asarray(query, dtype=np.float32)
        for s, (_, vec, scale, _) in enumerate(self._segments):
            here = found & (seg[pos] == s)
            if not here.any():
                continue
            p = pos[here]
            starts, counts = start[p], count[p]
            rows = _runs(starts, counts)
            sims = (vec[rows].astype(np.float32) @ q) * scale[rows]
            best = np.maximum.reduceat(sims, np.r_[0, np.cumsum(counts)[:-1]])
            out.update(zip(ids[here].tolist(), best.tolist(), strict=True))
        return out

    # -- writing ------------------------------------------------------------------------------------------
    def add(self, paper_ids: Sequence[int], rows: Sequence[np.ndarray]) -> None:
        """Queue each paper's sentence vectors (replacing what it had once saved)."""
        if len(paper_ids) != len(rows):
            raise ValueError("one array of sentence vectors per paper")
        with self._lock:
            for pid, r in zip(paper_ids, rows, strict=True):
                r = np.asarray(r, dtype=np.float32).reshape(-1, self.dim)
                if len(r):
                    self._pending.append((np.full(len(r), int(pid), np.int64), r))

    def save(self) -> None:
        """Write what was added as a new segment (compacting when most rows are stale), then the meta file
        that lists it: a reader sees all of it or none."""
        with self._lock:
            if not self._pending:
                return
            # A paper added twice since the last save keeps its last rows (a paper's rows stay contiguous).
            last = {int(o[0]): i for i, (o, _) in enumerate(self._pending)}
            latest = [self._pending[i] for i in sorted(last.values())]
            owner = np.concatenate([o for o, _ in latest])
            rows = np.concatenate([r for _, r in latest])
            self._pending = []
            self.directory.mkdir(parents=True, exist_ok=True)
            name = self._next_name()
            self._write_segment(name, owner, *_quantize(rows))
            vec = np.load(self.directory / f"{name}.vec.npy", mmap_mode="r")
            scale = np.load(self.directory / f"{name}.scale.npy", mmap_mode="r")
            self._segments.append((name, vec, scale, owner))
            self._rebuild_lookup()
            if self.stale > max(COMPACT_MIN, COMPACT_FRACTION * self._rows):
                self._compact()
            else:
                self._merge_tiers()
            self._write_meta()
            self._remove_unlisted()

    def _next_name(self) -> str:
        taken = [int(n) for n, *_ in self._segments] + [
            int(p.name.split(".")[0]) for p in self.directory.glob("*.owner.npy") if p.name[:6].isdigit()]
        return f"{max(taken, default=0) + 1:06d}"

    def _write_segment(self, name: str, owner: np.ndarray, q: np.ndarray, scale: np.ndarray) -> None:
        for suffix, array in (("vec", q), ("scale", scale), ("owner", owner)):
            tmp = self.directory / f".{name}.{suffix}.npy.tmp"
            with open(tmp, "wb") as f:
                np.save(f, array)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.directory / f"{name}.{suffix}.npy")

    def _merge_tiers(self) -> None:
        """Merge segments of the same size tier while some tier holds TIER_MERGE of them."""
        while True:
            tiers: dict[int, list[int]] = {}
            for i, (*_, owner) in enumerate(self._segments):
                tiers.setdefault(int(np.log(max(len(owner), 1)) / np.log(TIER_FACTOR)), []).append(i)
            full = [t for t, members in tiers.items() if len(members) >= TIER_MERGE]
            if not full:
                return
            self._compact(only=set(tiers[min(full)]))

    def _compact(self, only: set[int] | None = None) -> None:
        """Rewrite the live rows of the segments numbered ``only`` (all of them by default: a cost of the
        whole index, once per many updates) as one new segment, after the others. Only live rows move, so a
        paper's rows still win where they are, and the stale ones left behind lie in earlier segments."""
        keys, seg, start, count = self._lookup
        vecs, scales, owners = [], [], []
        for s, (_, vec, scale, _) in enumerate(self._segments):
            here = seg == s
            if (only is not None and s not in only) or not here.any():
                continue
            rows = _runs(start[here], count[here])
            vecs.append(np.asarray(vec[rows]))
            scales.append(np.asarray(scale[rows]))
            owners.append(np.repeat(keys[here], count[here]))
        kept = [x for s, x in enumerate(self._segments) if only is not None and s not in only]
        if owners:
            name = self._next_name()
            owner = np.concatenate(owners)
            self._write_segment(name, owner, np.concatenate(vecs), np.concatenate(scales))
            vec = np.load(self.directory / f"{name}.vec.npy", mmap_mode="r")
            scale = np.load(self.directory / f"{name}.scale.npy", mmap_mode="r")
            kept.append((name, vec, scale, owner))
        self._segments = kept
        self._rebuild_lookup()

    def compact(self) -> None:
        """Rewrite the live rows as one segment now (the end of a rebuild: the fastest to query)."""
        with self._lock:
            if len(self._segments) > 1 or self.stale:
                self._compact()
                self._write_meta()
                self._remove_unlisted()

    def _write_meta(self) -> None:
        meta = {"format": FORMAT, "model": self.model, "dim": self.dim,
                "segments": [n for n, *_ in self._segments], "papers": len(self), "rows": self._rows}
        tmp = self.directory / f".{META}.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, self.directory / META)

    def _remove_unlisted(self) -> None:
        """Delete segment files no longer listed (a reader that mapped them keeps them until it closes)."""
        listed = {n for n, *_ in self._segments}
        for p in self.directory.glob("*.npy"):
            if p.name.split(".")[0] not in listed:
                p.unlink(missing_ok=True)

    def reopen(self) -> SentenceIndex:
        """A fresh reader of what is saved."""
        return SentenceIndex(self.directory, self.model, self.dim)

    @staticmethod
    def remove(directory: str | Path) -> None:
        shutil.rmtree(directory, ignore_errors=True)
