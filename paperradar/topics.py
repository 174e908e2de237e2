"""Topics and the map: the corpus clustered at two levels from its embeddings, labelled by its own words,
laid out in 2D, and counted over time.

A derived index like the others, in ``<data dir>/index/topics/`` (plain arrays + JSON, rebuildable from
the store and the vector index):

- ``ids.npy`` (int64, sorted), and per paper ``topic.npy`` (its fine topic's id), ``xy.npy`` (float32
  map position), ``day.npy`` (int32 days since 1970-01-01 it was listed, -1 undated), ``text.npy`` (the
  hash of the text its vector was embedded from, to see which papers were re-embedded since);
- ``meta.json``: every topic (id, level, parent, label, distinctive terms, central papers, size, position),
  how the layout was made, and what changed since the last full clustering (the drift report).

:func:`build` clusters everything (``paperradar index --rebuild topics``): spherical k-means
(scikit-learn's) at two levels — about sqrt(N) fine topics and about N^(1/3)/1.6 broad ones, each fine topic
under the broad one most of its papers fall in — and lays the map out with t-SNE (openTSNE). Topic ids are
kept across rebuilds where a new topic holds mostly the papers of an old one, so a saved search
``topic:12`` keeps meaning what it meant.

:func:`update` (every ``paperradar index``) costs what changed: a new or re-embedded paper joins its nearest
fine topic and is placed at the weighted mean of its nearest already-placed neighbours' positions (the
layout is not recomputed); deleted papers leave.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import PaperradarError
from .vectors import swap_directories, writing

FORMAT = 1
ARRAYS = ("ids", "topic", "xy", "day", "text")
PLACE_NEIGHBOURS = 10  # a new paper sits at the similarity-weighted mean of this many placed neighbours
# t-SNE lays out up to this many papers (drawn at random); beyond, the others are placed among them as new
# papers are. bench/map_layouts.py at 119k: t-SNE of every paper keeps 31 % of each paper's 10 nearest
# neighbours in 255 s; of 40,000 with the rest placed, 11 % in 119 s (UMAP 9 % in 93 s, PCA 0.2 %): the
# whole corpus is laid out while that stays within minutes (~200k on 2 cores), a bounded sample above.
LAYOUT_SAMPLE = 200_000
LABEL_TERMS = 8  # distinctive terms kept per topic
CENTRAL = 8  # most central papers kept per topic
MATCH_OVERLAP = 0.5  # a rebuilt topic keeps an old topic's id when they share this much (Jaccard) of papers
DRIFT_ADDED = 0.2  # a rebuild is advised once this share of the papers joined since the last clustering
DRIFT_FIT = 0.9  # ... or once new papers fit their topics this much worse than the clustered ones did
_WORD = re.compile(r"[a-z][a-z0-9\-]*[a-z0-9]|[a-z]")
_CLAUSE = re.compile(r"[.,;:!?()\[\]{}\"]|\s-\s")
_EPOCH = dt.date(1970, 1, 1)


class TopicsUnavailable(PaperradarError):
    """No topics index yet (or an unreadable one)."""

    exit_code = 1
    http_status = 404


def fine_count(n: int) -> int:
    """How many fine topics for ``n`` papers: about sqrt(n) (345 at 119k), at most 1,500."""
    return int(min(1500, max(2, round(math.sqrt(max(n, 1))))))


def broad_count(n: int) -> int:
    """How many broad topics for ``n`` papers: about n^(1/3)/1.6 (31 at 119k, 86 at 2.6M), at least 2."""
    return int(min(fine_count(n), max(2, round(max(n, 1) ** (1 / 3) / 1.6))))


def day_number(value: str | None) -> int:
    """Days since 1970-01-01 of a YYYY-MM-DD[...] date; -1 when missing or not a date."""
    try:
        return (dt.date.fromisoformat((value or "")[:10]) - _EPOCH).days
    except ValueError:
        return -1


def day_text(n: int) -> str:
    return (_EPOCH + dt.timedelta(days=int(n))).isoformat()


def month_of(days: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of day numbers (-1 stays -1)."""
    out = np.full(len(days), -1, dtype=np.int32)
    dated = days >= 0
    d = np.asarray(days[dated], dtype="datetime64[D]")
    out[dated] = d.astype("datetime64[M]").astype(np.int32)
    return out


def month_text(m: int) -> str:
    return str(np.datetime64(int(m), "M"))


@dataclass
class Topic:
    id: int
    level: str  # "broad" or "fine"
    parent: int | None  # a fine topic's broad topic
    label: str
    terms: list[str]
    central: list[int]  # paper ids, most central first
    size: int
    x: float
    y: float

    def to_dict(self) -> dict:
        return {"id": self.id, "level": self.level, "parent": self.parent, "label": self.label,
                "terms": self.terms, "central": self.central, "size": self.size,
                "x": round(self.x, 4), "y": round(self.y, 4)}


# -- labels: pure functions over texts ------------------------------------------------------------------
# Words of every field's papers: no label of their own, but part of a phrase ("language models").
GENERIC = frozenset({"model", "models", "learning", "performance", "task", "tasks", "problem", "problems",
                     "method", "methods", "approach", "approaches", "framework", "based", "data", "network",
                     "networks", "system", "systems", "analysis", "large", "results", "training"})


_NOT_LAST = frozenset({"large", "based", "novel", "new", "different", "various"})


def _stopwords() -> frozenset[str]:
    """Function words and words that say nothing about a topic (they also end a phrase)."""
    from .recommend import _STOP  # one list of stopwords for profile terms and topic labels

    words = frozenset(_STOP) | {"paper", "propose", "proposes", "proposed", "introduce", "introduces",
                                "demonstrate", "achieve", "achieves", "novel", "new", "state-of-the-art",
                                "experiments", "http", "https", "www", "com", "org", "github", "available",
                                "code", "three", "four", "five", "first", "second", "existing", "work",
                                "works", "study", "studies"}
    return words - GENERIC


def text_terms(text: str, stop: frozenset[str]) -> set[str]:
    """Content words and two-word phrases ("diffusion models"), lower-cased: a word of GENERIC counts only
    inside a phrase with a word that is not."""
    out: set[str] = set()
    for part in _CLAUSE.split(text.lower()):  # a phrase does not run across punctuation
        keep = [w if len(w) > 2 and w not in stop and not w.isdigit() else None for w in _WORD.findall(part)]
        out.update(w for w in keep if w and w not in GENERIC)
        # a phrase starts with a word that is not generic ("vision-language models", not "models
        # vision-language") and does not end on an adjective that needs its noun ("reasoning large")
        out.update(f"{a} {b}" for a, b in zip(keep, keep[1:], strict=False)
                   if a and b and a not in GENERIC and b not in _NOT_LAST)
    return out


def _stems(term: str) -> frozenset[str]:
    """A term's words without a plural s: "quantum algorithms" and "quantum algorithm" are one term."""
    def stem(w: str) -> str:
        if len(w) > 4 and w.endswith(("ses", "xes", "ches", "shes")):
            return w[:-2]  # biases, boxes
        plural = w.endswith("s") and not w.endswith(("ss", "us", "is", "as"))  # loss, corpus, analysis, bias
        return w[:-1] if len(w) > 3 and plural else w

    return frozenset(stem(w) for w in term.split())


def distinctive_terms(inside: Counter, n_inside: int, total: Counter, n_total: int,
                      top: int = LABEL_TERMS) -> list[str]:
    """The words that set a topic apart: smoothed log-odds of a term's document frequency in the topic
    (``inside``, over its ``n_inside`` papers) against the rest of the corpus (``total`` minus ``inside``;
    as the For-you profile terms), among terms in at least 5 % of the topic's papers (and 2; in a topic
    whose papers share no such term, any term). A word inside a chosen phrase is left out ("diffusion"
    after "diffusion models"). Reads only the topic's terms: the corpus's counts are not copied."""
    n_outside = n_total - n_inside
    least = max(2, math.ceil(0.05 * n_inside))
    if not any(c >= least for c in inside.values()):
        least = 1
    scored = []
    for t, c in inside.items():
        if c < least:
            continue
        rest = max(total.get(t, 0) - c, 0)
        s = math.log((c + 0.5) / (n_inside - c + 0.5)) - math.log((rest + 0.5) / (n_outside - rest + 0.5))
        # a phrase is as telling as its parts, and reads better: a small edge to it
        scored.append((s + (0.25 if " " in t else 0.0), t))
    scored.sort(key=lambda st: (-st[0], st[1]))
    chosen: list[str] = []
    for _, t in scored:
        if " " not in t and any(t in c.split() for c in chosen):
            continue
        if any(_stems(t) == _stems(c) for c in chosen):  # a plural or reordering of a chosen term
            continue
        if " " in t:  # a phrase replaces a chosen word of its own
            chosen = [c for c in chosen if c not in t.split()]
        if t not in chosen:
            chosen.append(t)
        if len(chosen) >= top:
            break
    return chosen


def label_of(terms: list[str]) -> str:
    return " · ".join(terms[:3]) if terms else "(unlabelled)"


# -- geometry: pure functions over arrays ---------------------------------------------------------------
def _normalised(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def kmeans(x: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means over unit vectors: (assignment per row, unit centroids). scikit-learn's k-means
    (k-means++ seeding, Lloyd) on the unit vectors, centroids renormalised: the same clusters for the same
    vectors and seed (usearch's k-means, tried first, is not reproducible: 3 % agreement between two runs)."""
    from sklearn.cluster import KMeans

    k = max(1, min(k, len(x)))
    if k == 1:
        return np.zeros(len(x), dtype=np.int64), _normalised(x.mean(axis=0, keepdims=True))
    km = KMeans(n_clusters=k, n_init=1, max_iter=50, tol=1e-4, random_state=seed, algorithm="lloyd")
    assign = km.fit_predict(np.ascontiguousarray(x, dtype=np.float32)).astype(np.int64)
    used = np.unique(assign)  # a cluster left empty is dropped
    remap = np.full(k, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return remap[assign], _normalised(np.asarray(km.cluster_centers_)[used])


def nearest(x: np.ndarray, centroids: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """The index of the most similar centroid for each row of ``x`` (unit vectors)."""
    out = np.empty(len(x), dtype=np.int64)
    for i in range(0, len(x), chunk):
        out[i:i + chunk] = np.argmax(np.asarray(x[i:i + chunk], dtype=np.float32) @ centroids.T, axis=1)
    return out


def match_ids(new_rows: np.ndarray, old_ids: np.ndarray, n_new: int, next_id: int,
              least: float = MATCH_OVERLAP) -> tuple[list[int], int]:
    """Ids for ``n_new`` new topics from the papers they share with the old ones: ``new_rows`` is each
    paper's new topic (0..n_new-1), ``old_ids`` its old topic id (-1 for a paper that had none). A new topic
    takes an old topic's id where the two hold mostly the same papers (Jaccard overlap of at least
    ``least``; most overlapping pairs first, each id once), else a fresh id from ``next_id``."""
    new_rows, old_ids = np.asarray(new_rows, dtype=np.int64), np.asarray(old_ids, dtype=np.int64)
    ids: list[int | None] = [None] * n_new
    had = old_ids >= 0
    if had.any():
        new_size = np.bincount(new_rows, minlength=n_new)
        old_values, old_size = np.unique(old_ids[had], return_counts=True)
        sizes = dict(zip(old_values.tolist(), old_size.tolist(), strict=True))
        pairs, shared = np.unique(np.stack([new_rows[had], old_ids[had]]), axis=1, return_counts=True)
        scored = sorted(((c / (new_size[i] + sizes[o] - c), int(i), int(o))
                         for (i, o), c in zip(pairs.T.tolist(), shared.tolist(), strict=True)),
                        key=lambda t: (-t[0], t[1], t[2]))
        taken: set[int] = set()
        for overlap, i, o in scored:
            if overlap < least:
                break
            if ids[i] is None and o not in taken:
                ids[i] = o
                taken.add(o)
    out = []
    for i in ids:
        if i is None:
            i, next_id = next_id, next_id + 1
        out.append(int(i))
    return out, next_id


def place(neighbour_xy: np.ndarray, similarities: np.ndarray) -> np.ndarray:
    """Positions of new papers from their nearest placed neighbours: the mean of the neighbours'
    positions weighted by similarity (sharpened, so the closest count most). Shapes (n, k, 2), (n, k)."""
    w = np.exp((np.asarray(similarities, dtype=np.float64) - 1.0) * 20.0)
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    return (neighbour_xy * w[:, :, None]).sum(axis=1).astype(np.float32)


def layout(x: np.ndarray, seed: int = 0, n_jobs: int = -1, sample: int | None = None) -> np.ndarray:
    """A 2D map of unit vectors, scaled into [-1, 1]: t-SNE (openTSNE: cosine, perplexity 30, FFT-accelerated
    gradients above 10,000 papers) of every paper up to ``sample`` papers (default LAYOUT_SAMPLE); above, of
    that many drawn at random, the others placed as new papers are — at the similarity-weighted mean of
    their nearest laid-out neighbours — so the cost stays bounded at any corpus size. Chosen by measurement
    against UMAP and PCA (bench/map_layouts.py: neighbour preservation against time)."""
    sample = LAYOUT_SAMPLE if sample is None else sample
    n = len(x)
    if n < 5:
        y = np.zeros((n, 2), dtype=np.float32)
        y[:, 0] = np.linspace(-0.5, 0.5, n) if n > 1 else 0.0
        return y
    if n <= sample:
        return tsne(x, seed, n_jobs)
    picked = np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))
    laid = tsne(x[picked], seed, n_jobs)
    rest = np.setdiff1d(np.arange(n), picked, assume_unique=True)
    keys, sims = nearest_neighbours(x[picked], x[rest], PLACE_NEIGHBOURS)
    y = np.empty((n, 2), dtype=np.float32)
    y[picked] = laid
    y[rest] = place(laid[keys], sims)
    return y


def tsne(x: np.ndarray, seed: int = 0, n_jobs: int = -1) -> np.ndarray:
    """openTSNE's t-SNE of unit vectors (cosine), scaled into [-1, 1]."""
    from openTSNE import TSNE

    n = len(x)
    # threads only where they pay: on a few thousand papers, two threads on busy cores took 15x longer
    model = TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3.0), metric="cosine", random_state=seed,
                 n_jobs=n_jobs if n > 20_000 else 1, negative_gradient_method="fft" if n > 10_000 else "bh",
                 verbose=False)
    return scale(np.asarray(model.fit(np.asarray(x, dtype=np.float32)), dtype=np.float32))


def nearest_neighbours(base: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For each query, the rows of its ``k`` most similar ``base`` vectors and their cosine similarities,
    by an HNSW graph over ``base`` (usearch, all cores)."""
    from usearch.index import Index

    index = Index(ndim=base.shape[1], metric="cos", dtype="f32")
    index.add(np.arange(len(base)), np.ascontiguousarray(base, dtype=np.float32), threads=0)
    found = index.search(np.ascontiguousarray(queries, dtype=np.float32), k, threads=0)
    keys = np.asarray(found.keys, dtype=np.int64).reshape(len(queries), -1)
    sims = 1.0 - np.asarray(found.distances, dtype=np.float32).reshape(len(queries), -1)
    missing = keys < 0  # fewer than k found: a slot that weighs nothing
    keys[missing], sims[missing] = 0, -1.0
    return keys, sims


def scale(y: np.ndarray) -> np.ndarray:
    """Centre a layout and scale it so that its bulk (the 0.5th to 99.5th percentile) spans [-1, 1]."""
    y = np.asarray(y, dtype=np.float32)
    if not len(y):
        return y
    lo, hi = np.percentile(y, 0.5, axis=0), np.percentile(y, 99.5, axis=0)
    mid = (lo + hi) / 2
    half = max(float((hi - lo).max()) / 2, 1e-6)
    return ((y - mid) / half).astype(np.float32)


# -- trends: pure functions over day numbers -----------------------------------------------------------
def per_month(days: np.ndarray, first: int | None = None, last: int | None = None) -> list[tuple[str, int]]:
    """[(YYYY-MM, papers)] for every month from ``first`` to ``last`` (months since 1970-01; default the
    span of the dated papers), zeros included; undated papers are not counted."""
    months = month_of(np.asarray(days, dtype=np.int64))
    months = months[months >= 0]
    if not len(months) and (first is None or last is None):
        return []
    lo = int(months.min()) if first is None else first
    hi = int(months.max()) if last is None else last
    counts = np.bincount(months[(months >= lo) & (months <= hi)] - lo, minlength=hi - lo + 1)
    return [(month_text(lo + i), int(c)) for i, c in enumerate(counts)]


def rising(topic: np.ndarray, days: np.ndarray, end: int, span_days: int, least: int = 5,
           prior: float = 5.0) -> list[tuple[int, float, int, int]]:
    """Topics whose share of new papers grew most: the last ``span_days`` up to day ``end`` against the
    ``span_days`` before. [(topic id, growth, papers in the window, papers in the one before)], most risen
    first. Growth is the log-ratio of the two shares, each smoothed towards the topic's share of both
    periods by ``prior`` papers (a topic of 3 papers does not rise by chance); topics with fewer than
    ``least`` papers in the window are left out."""
    topic, days = np.asarray(topic), np.asarray(days)
    now = (days > end - span_days) & (days <= end)
    before = (days > end - 2 * span_days) & (days <= end - span_days)
    n_now, n_before = int(now.sum()), int(before.sum())
    if not n_now or not n_before:
        return []
    ids, inv = np.unique(topic[now | before], return_inverse=True)
    in_now = now[now | before]
    c_now = np.bincount(inv[in_now], minlength=len(ids))
    c_before = np.bincount(inv[~in_now], minlength=len(ids))
    base = (c_now + c_before) / (n_now + n_before)
    share_now = (c_now + prior * base) / (n_now + prior)
    share_before = (c_before + prior * base) / (n_before + prior)
    growth = np.log(share_now / share_before)
    out = [(int(ids[i]), float(growth[i]), int(c_now[i]), int(c_before[i]))
           for i in range(len(ids)) if c_now[i] >= least and growth[i] > 0]
    out.sort(key=lambda t: (-t[1], t[0]))
    return out


# -- the index ------------------------------------------------------------------------------------------
class TopicIndex:
    """A topics index read from its directory (memory-mapped arrays), read-only."""

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        try:
            self.meta = json.loads((self.dir / "meta.json").read_text())
            if self.meta.get("format") != FORMAT:
                raise TopicsUnavailable(f"topics index {self.dir} has format {self.meta.get('format')!r}, "
                                        f"this version reads {FORMAT}",
                                        hint="paperradar index --rebuild topics")
            arrays = {name: np.load(self.dir / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
        except FileNotFoundError as e:
            raise TopicsUnavailable("no topics yet", hint="paperradar index --rebuild topics") from e
        except (OSError, ValueError) as e:
            raise TopicsUnavailable(f"topics index {self.dir} is unreadable: {e}",
                                    hint="paperradar index --rebuild topics") from e
        self.ids, self.topic, self.xy = arrays["ids"], arrays["topic"], arrays["xy"]
        self.day, self.text = arrays["day"], arrays["text"]
        if not (len(self.ids) == len(self.topic) == len(self.xy) == len(self.day) == len(self.text)):
            raise TopicsUnavailable(f"topics index {self.dir} has arrays of different lengths",
                                    hint="paperradar index --rebuild topics")
        self.topics = {t["id"]: Topic(**t) for t in self.meta["topics"]}
        self._members: dict[int, np.ndarray] = {}
        self._points: bytes | None = None
        self._parent_of = {t.id: t.parent for t in self.topics.values()}

    @property
    def version(self) -> str:
        return str(self.meta["version"])

    def __len__(self) -> int:
        return len(self.ids)

    def levels(self, level: str) -> list[Topic]:
        return sorted((t for t in self.topics.values() if t.level == level), key=lambda t: (-t.size, t.id))

    def get(self, topic_id: int) -> Topic | None:
        return self.topics.get(topic_id)

    def children(self, topic_id: int) -> list[Topic]:
        kids = (t for t in self.topics.values() if t.parent == topic_id)
        return sorted(kids, key=lambda t: (-t.size, t.id))

    def broad_of(self) -> np.ndarray:
        """Each paper's broad topic id (parallel to ``ids``)."""
        fine_ids = np.array(sorted(self._parent_of), dtype=np.int64)
        parents = np.array([self._parent_of[i] if self._parent_of[i] is not None else i for i in fine_ids],
                           dtype=np.int64)
        return parents[np.searchsorted(fine_ids, np.asarray(self.topic, dtype=np.int64))]

    def members(self, topic_id: int) -> np.ndarray:
        """The sorted ids of a topic's papers (a broad topic: its fine topics' papers)."""
        if topic_id not in self._members:
            t = self.topics.get(topic_id)
            if t is None:
                found = np.zeros(0, dtype=np.int64)
            elif t.level == "fine":
                found = np.asarray(self.ids[np.asarray(self.topic) == topic_id])
            else:
                kids = [c.id for c in self.children(topic_id)]
                found = np.asarray(self.ids[np.isin(np.asarray(self.topic), kids)])
            self._members[topic_id] = found
        return self._members[topic_id]

    def topic_of(self, paper_id: int) -> Topic | None:
        i = int(np.searchsorted(self.ids, paper_id))
        if i < len(self.ids) and int(self.ids[i]) == paper_id:
            return self.topics.get(int(self.topic[i]))
        return None

    def _mask(self, topic_id: int) -> np.ndarray | None:
        """Which papers (parallel to ``ids``) are in a topic; None for an unknown topic."""
        t = self.topics.get(topic_id)
        if t is None:
            return None
        topic = np.asarray(self.topic)
        if t.level == "fine":
            return topic == topic_id
        return np.isin(topic, [c.id for c in self.children(topic_id)])

    def days_of(self, topic_id: int) -> np.ndarray:
        mask = self._mask(topic_id)
        return np.zeros(0, dtype=np.int32) if mask is None else np.asarray(self.day[mask])

    def recent_members(self, topic_id: int, days: int) -> np.ndarray:
        """The ids of a topic's papers listed in the last ``days`` days (up to the newest paper's day)."""
        mask, end = self._mask(topic_id), self.last_day()
        if mask is None or end < 0:
            return np.zeros(0, dtype=np.int64)
        day = np.asarray(self.day)
        return np.asarray(self.ids)[mask & (day > end - days) & (day <= end)]

    def last_day(self) -> int:
        d = np.asarray(self.day)
        d = d[d >= 0]
        return int(d.max()) if len(d) else -1

    def rising(self, months: int, level: str = "fine", least: int = 5) -> list[tuple[Topic, float, int, int]]:
        """Topics of ``level`` whose share of new papers grew most over the last ``months`` months (30-day
        months, up to the newest paper's day), against the as many months before."""
        end = self.last_day()
        if end < 0:
            return []
        topic = np.asarray(self.topic) if level == "fine" else self.broad_of()
        found = rising(topic, np.asarray(self.day), end, 30 * months, least=least)
        return [(self.topics[t], g, a, b) for t, g, a, b in found if t in self.topics]

    def drift(self) -> dict:
        return dict(self.meta.get("drift", {}))

    # -- the map's data ----------------------------------------------------------------------------------
    COLUMNS = (("x", "float32"), ("y", "float32"), ("id", "uint32"), ("topic", "uint32"), ("month", "int16"))

    def points(self) -> bytes:
        """Every paper's map point as little-endian columns, one after the other (each 4-byte aligned for
        typed arrays): x, y (float32), paper id, fine topic id (uint32), month since 1970-01 (int16; -1
        undated). 18 bytes a paper: 2.1 MB at 119k. Made once per index (a new index is a new object)."""
        if self._points is None:
            self._points = self._make_points()
        return self._points

    def _make_points(self) -> bytes:
        xy = np.asarray(self.xy, dtype="<f4")
        parts = [np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1]),
                 np.asarray(self.ids, dtype="<u4"), np.asarray(self.topic, dtype="<u4"),
                 month_of(np.asarray(self.day, dtype=np.int64)).astype("<i2")]
        return b"".join(p.tobytes() for p in parts)

    def map_meta(self) -> dict:
        """What the map page needs besides the points: the topics with their positions, the months."""
        days = np.asarray(self.day)
        dated = days[days >= 0]
        months = month_of(dated) if len(dated) else np.zeros(0, dtype=np.int32)
        return {
            "version": self.version, "count": len(self), "columns": [list(c) for c in self.COLUMNS],
            "months": {"first": int(months.min()) if len(months) else None,
                       "last": int(months.max()) if len(months) else None},
            "layout": self.meta.get("layout", {}),
            "topics": [t.to_dict() for t in sorted(self.topics.values(), key=lambda t: (t.level, t.id))],
        }


# -- building and updating ------------------------------------------------------------------------------
def _texts_and_days(store, ids: np.ndarray) -> tuple[list[str], np.ndarray]:
    days = np.full(len(ids), -1, dtype=np.int32)
    pos = {int(pid): i for i, pid in enumerate(ids)}
    out: list[str] = [""] * len(ids)
    for i in range(0, len(ids), 2000):
        for p in store.get_many(int(pid) for pid in ids[i:i + 2000]):
            j = pos[p.id]
            out[j] = f"{p.title}\n{p.abstract or ''}"
            days[j] = day_number(p.announced or p.submitted or p.updated)
    return out, days


def build(store, vectors, directory: str | Path, seed: int = 0,
          progress: Callable[[str], None] | None = None) -> dict:
    """Cluster and lay out every paper of ``vectors`` (a VectorIndex) again; returns a summary."""
    directory = Path(directory)
    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    with writing(directory, "topics index"):
        ids, hashes, x = vectors.everything()
        n = len(ids)
        x = _normalised(x)
        old = _old(directory)
        say(f"topics: clustering {n:,} papers")
        timings = {}
        t = time.perf_counter()
        fine_assign, fine_c = kmeans(x, fine_count(n), seed=seed)
        broad_assign, broad_c = kmeans(x, broad_count(n), seed=seed + 1)
        timings["cluster_s"] = time.perf_counter() - t
        # each fine topic under the broad topic most of its papers fall in
        nf, nb = len(fine_c), len(broad_c)
        votes = np.zeros((nf, nb), dtype=np.int64)
        np.add.at(votes, (fine_assign, broad_assign), 1)
        parent_row = votes.argmax(axis=1)
        used_broad = np.unique(parent_row)  # a broad topic no fine topic chose is dropped
        broad_c = broad_c[used_broad]
        parent_row = np.searchsorted(used_broad, parent_row)
        # stable ids across rebuilds: by the papers a new topic shares with an old one
        next_id = int(old["meta"].get("next_id", 1)) if old else 1
        old_fine, old_broad = _old_assignment(directory, ids)
        broad_ids, next_id = match_ids(parent_row[fine_assign], old_broad, len(broad_c), next_id)
        fine_ids, next_id = match_ids(fine_assign, old_fine, nf, next_id)
        say("topics: labelling")
        t = time.perf_counter()
        texts, days = _texts_and_days(store, ids)
        timings["read_s"] = time.perf_counter() - t
        t = time.perf_counter()
        stop = _stopwords()
        doc_terms = [text_terms(s, stop) for s in texts]
        total = Counter(term for terms in doc_terms for term in terms)
        fine_counts = [Counter() for _ in range(nf)]
        for terms, f in zip(doc_terms, fine_assign, strict=True):
            fine_counts[f].update(terms)
        fine_sizes = np.bincount(fine_assign, minlength=nf)
        broad_counts = [Counter() for _ in range(len(broad_c))]
        broad_sizes = np.zeros(len(broad_c), dtype=np.int64)
        for f in range(nf):
            broad_counts[parent_row[f]].update(fine_counts[f])
            broad_sizes[parent_row[f]] += fine_sizes[f]
        del doc_terms
        timings["label_s"] = time.perf_counter() - t
        say(f"topics: laying out {n:,} papers")
        t = time.perf_counter()
        xy = layout(x, seed=seed)
        timings["layout_s"] = time.perf_counter() - t
        t = time.perf_counter()
        topics = []
        fine_id_of_row = np.array(fine_ids, dtype=np.int64)
        for f, members in enumerate(_groups(fine_assign, nf)):
            terms = distinctive_terms(fine_counts[f], len(members), total, n)
            central = members[np.argsort(-(x[members] @ fine_c[f]), kind="stable")[:CENTRAL]]
            cx, cy = np.median(xy[members], axis=0) if len(members) else (0.0, 0.0)
            topics.append(Topic(fine_ids[f], "fine", broad_ids[parent_row[f]], label_of(terms), terms,
                                [int(ids[c]) for c in central], len(members), float(cx), float(cy)))
        for b, members in enumerate(_groups(parent_row[fine_assign], len(broad_c))):
            size = int(broad_sizes[b])
            terms = distinctive_terms(broad_counts[b], size, total, n)
            central = members[np.argsort(-(x[members] @ broad_c[b]), kind="stable")[:CENTRAL]]
            cx, cy = np.median(xy[members], axis=0) if len(members) else (0.0, 0.0)
            topics.append(Topic(broad_ids[b], "broad", None, label_of(terms), terms,
                                [int(ids[c]) for c in central], size, float(cx), float(cy)))
        timings["describe_s"] = time.perf_counter() - t
        fit = float(np.mean(np.einsum("ij,ij->i", x, fine_c[fine_assign]))) if n else 0.0
        meta = {
            "format": FORMAT, "version": f"{int(time.time())}-{n}", "model": vectors.model,
            "built": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "next_id": next_id,
            "papers": n, "fine": nf, "broad": len(broad_c),
            "layout": {"method": "openTSNE", "perplexity": 30, "metric": "cosine",
                       "laid_out": min(n, LAYOUT_SAMPLE), "placed": max(0, n - LAYOUT_SAMPLE),
                       "placed_among": PLACE_NEIGHBOURS},
            "drift": {"clustered": n, "added": 0, "removed": 0, "fit_clustered": round(fit, 4),
                      "fit_added": None, "advice": None},
            "topics": [t.to_dict() for t in topics],
            "timings": {k: round(v, 2) for k, v in timings.items()},
        }
        arrays = {"ids": np.asarray(ids, dtype=np.int64), "topic": fine_id_of_row[fine_assign],
                  "xy": xy, "day": days, "text": np.asarray(hashes, dtype=np.uint64)}
        _save(directory, arrays, meta, fine_c, np.array(fine_ids), broad_c,
                             np.array(broad_ids))
    return {"papers": n, "fine": nf, "broad": len(broad_c), "seconds": round(time.perf_counter() - t0, 1),
            **meta["timings"]}


def _save(directory: Path, arrays: dict, meta: dict, fine_c, fine_ids, broad_c, broad_ids):
    """Write a complete index beside ``directory`` and swap it in (readers see the old or the new one)."""
    new = directory.with_name(directory.name + ".new")
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    for name in ARRAYS:
        np.save(new / f"{name}.npy", arrays[name])
    np.save(new / "fine_centroids.npy", np.asarray(fine_c, dtype=np.float32))
    np.save(new / "fine_ids.npy", np.asarray(fine_ids, dtype=np.int64))
    np.save(new / "broad_centroids.npy", np.asarray(broad_c, dtype=np.float32))
    np.save(new / "broad_ids.npy", np.asarray(broad_ids, dtype=np.int64))
    (new / "meta.json").write_text(json.dumps(meta, indent=1))
    swap_directories(new, directory)
    shutil.rmtree(new, ignore_errors=True)


def _groups(assign: np.ndarray, k: int) -> list[np.ndarray]:
    """The rows of each cluster 0..k-1 (ascending), from one sort rather than k scans."""
    order = np.argsort(assign, kind="stable")
    return np.split(order, np.cumsum(np.bincount(assign, minlength=k))[:-1])


def _old_assignment(directory: Path, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each of ``ids``'s fine and broad topic ids in the index there now (-1 where none)."""
    fine = np.full(len(ids), -1, dtype=np.int64)
    broad = np.full(len(ids), -1, dtype=np.int64)
    try:
        index = TopicIndex(directory)
    except TopicsUnavailable:
        return fine, broad
    old_ids = np.asarray(index.ids)
    if not len(old_ids):
        return fine, broad
    at = np.minimum(np.searchsorted(old_ids, ids), len(old_ids) - 1)
    found = old_ids[at] == ids
    fine[found] = np.asarray(index.topic)[at[found]]
    broad[found] = index.broad_of()[at[found]]
    return fine, broad


def _old(directory: Path) -> dict | None:
    try:
        return {"meta": json.loads((directory / "meta.json").read_text()),
                "fine_c": np.load(directory / "fine_centroids.npy"),
                "fine_ids": np.load(directory / "fine_ids.npy").tolist(),
                "broad_c": np.load(directory / "broad_centroids.npy"),
                "broad_ids": np.load(directory / "broad_ids.npy").tolist()}
    except (OSError, ValueError):
        return None


def update(store, vectors, directory: str | Path) -> dict:
    """Bring the topics index up to date with ``vectors``: new and re-embedded papers join their nearest
    fine topic and are placed among their nearest placed neighbours; removed papers leave. Costs what
    changed (plus one vectorised comparison of the id and text-hash arrays). Returns counts; a summary
    with ``"built": False`` when there is no topics index yet (build one with :func:`build`)."""
    directory = Path(directory)
    with writing(directory, "topics index"):
        try:
            index = TopicIndex(directory)
        except TopicsUnavailable:
            return {"built": False, "added": 0, "moved": 0, "removed": 0}
        old = _old(directory)
        ids, hashes = vectors.id_hashes()  # sorted by id
        old_ids = np.asarray(index.ids)
        old_text = np.asarray(index.text)
        at = np.minimum(np.searchsorted(old_ids, ids), max(len(old_ids) - 1, 0))
        known = (old_ids[at] == ids) if len(old_ids) else np.zeros(len(ids), dtype=bool)
        changed = ~known | (old_text[at] != hashes) if len(old_ids) else ~known
        gone = ~np.isin(old_ids, ids, assume_unique=True)
        todo = ids[changed]
        if not len(todo) and not gone.any():
            return {"built": True, "added": 0, "moved": 0, "removed": 0}
        keep = ~gone & ~np.isin(old_ids, todo, assume_unique=True)
        base_ids, base_topic = old_ids[keep], np.asarray(index.topic)[keep]
        base_xy, base_day, base_text = np.asarray(index.xy)[keep], np.asarray(index.day)[keep], old_text[keep]
        new_ids, x = vectors.rows(todo.tolist())
        new_ids = np.asarray(new_ids, dtype=np.int64)
        x = _normalised(x)
        fine_c, fine_ids = old["fine_c"], np.asarray(old["fine_ids"], dtype=np.int64)
        topic = fine_ids[nearest(x, fine_c)] if len(new_ids) else np.zeros(0, dtype=np.int64)
        # placed among neighbours already on the map (not among each other: a batch of new papers about
        # a new subject would otherwise float wherever the first of them landed)
        xy = np.zeros((len(new_ids), 2), dtype=np.float32)
        if len(new_ids) and len(base_ids):
            nb_xy = np.zeros((len(new_ids), PLACE_NEIGHBOURS, 2), dtype=np.float32)
            nb_sim = np.full((len(new_ids), PLACE_NEIGHBOURS), -1.0, dtype=np.float32)
            placed = set(base_ids.tolist())
            for i, v in enumerate(x):
                found = [(pid, s) for pid, s in vectors.search(v, k=PLACE_NEIGHBOURS * 3) if pid in placed]
                found = found[:PLACE_NEIGHBOURS]
                if not found:
                    continue
                rows = np.searchsorted(base_ids, [pid for pid, _ in found])
                nb_xy[i, :len(found)] = base_xy[rows]
                nb_sim[i, :len(found)] = [s for _, s in found]
            xy = place(nb_xy, nb_sim)
        papers = {p.id: p for p in store.get_many(new_ids.tolist())}
        day = np.array([day_number((papers[i].announced or papers[i].submitted or papers[i].updated)
                                   if i in papers else None) for i in new_ids.tolist()], dtype=np.int32)
        text = np.asarray(hashes[np.searchsorted(ids, new_ids)], dtype=np.uint64)
        all_ids = np.concatenate([base_ids, new_ids])
        order = np.argsort(all_ids, kind="stable")
        arrays = {"ids": all_ids[order], "topic": np.concatenate([base_topic, topic])[order],
                  "xy": np.concatenate([base_xy, xy])[order], "day": np.concatenate([base_day, day])[order],
                  "text": np.concatenate([base_text, text])[order]}
        meta = dict(index.meta)
        drift = dict(meta.get("drift", {}))
        fit_new = float(np.mean(np.einsum("ij,ij->i", x, fine_c[np.searchsorted(fine_ids, topic)]))) \
            if len(new_ids) else None
        added_before = drift.get("added", 0)
        if fit_new is not None:
            prev = drift.get("fit_added")
            drift["fit_added"] = round(fit_new if prev is None else
                                       (prev * added_before + fit_new * len(new_ids))
                                       / max(added_before + len(new_ids), 1), 4)
        drift["added"] = added_before + int((~known).sum())
        drift["removed"] = drift.get("removed", 0) + int(gone.sum())
        drift["advice"] = drift_advice(drift)
        values, counts = np.unique(arrays["topic"], return_counts=True)  # vectorised: 2.6M rows in ms
        sizes = dict(zip(values.tolist(), counts.tolist(), strict=True))
        for t in meta["topics"]:
            if t["level"] == "fine":
                t["size"] = sizes.get(t["id"], 0)
        for t in meta["topics"]:
            if t["level"] == "broad":
                t["size"] = sum(sizes.get(c["id"], 0) for c in meta["topics"] if c["parent"] == t["id"])
        meta.update(drift=drift, papers=len(all_ids), version=f"{int(time.time())}-{len(all_ids)}")
        _save(directory, arrays, meta, fine_c, fine_ids, old["broad_c"],
                             np.asarray(old["broad_ids"]))
    return {"built": True, "added": int((~known).sum()), "moved": int(known[changed].sum()),
            "removed": int(gone.sum()), "advice": drift["advice"]}


def drift_advice(drift: dict) -> str | None:
    """Why a full recluster is due, or None: many papers joined since the clustering, or the new ones
    fit their topics clearly worse than the clustered ones did."""
    clustered = max(1, drift.get("clustered", 1))
    if drift.get("added", 0) >= DRIFT_ADDED * clustered:
        return (f"{drift['added']:,} papers joined since the topics were clustered from {clustered:,}: "
                "run `paperradar index --rebuild topics`")
    fit, base = drift.get("fit_added"), drift.get("fit_clustered")
    if fit is not None and base and drift.get("added", 0) >= 100 and fit < DRIFT_FIT * base:
        return (f"new papers fit their topics worse (mean similarity {fit:.3f} against {base:.3f}): "
                "run `paperradar index --rebuild topics`")
    return None
