"""The vector index: paper embeddings as plain arrays + JSON metadata, exact search, optional HNSW.

Files in the index directory (never pickle):
- ``vectors.npy``  float16 matrix (n, dim), L2-normalised rows
- ``ids.npy``      int64 paper ids (the store's integer ids), row-aligned
- ``meta.json``    model name, dimension, count, format version, last change sequence indexed
- ``hnsw.usearch`` (optional) a usearch HNSW graph over the same rows, built when n >= ann_threshold

Search is exact (one float32 matrix-vector product: ~11 ms at 119k papers on 2 cores) below the
threshold (ANN_THRESHOLD) and approximate above it. A model or dimension mismatch is an error that
says what to do.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .errors import PaperradarError

FORMAT_VERSION = 1
# Below this many papers exact search is fast enough (and exact); above it, HNSW. Measured in
# bench/search_speed.py: exact float32 search costs ~11 ms at 119k papers on 2 cores.
ANN_THRESHOLD = 50_000
# HNSW search breadth: recall@10 against exact search is measured in bench/search_speed.py.
EXPANSION_SEARCH = 512  # 119k real papers: recall@10 .971 at 256, .984 at 512 (+1 ms), .990 at 1024


class IndexMismatch(PaperradarError):
    """The index on disk was built with another model, dimension or format."""

    http_status = 503


def _usearch():
    """usearch's Index class, with onnxruntime loaded first: importing usearch.index and then onnxruntime
    crashes the process (segmentation fault; usearch 2.26.6, onnxruntime 1.31.1, seen here), and the
    embedder may load onnxruntime after the index is open."""
    import onnxruntime  # noqa: F401
    from usearch.index import Index

    return Index


def _atomic_save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


class VectorIndex:
    """Embeddings of papers by id; ``add`` replaces the rows of ids already present."""

    def __init__(self, directory: str | Path, model: str, dim: int, ann_threshold: int = ANN_THRESHOLD):
        self.dir = Path(directory)
        self.model = model
        self.dim = dim
        self.ann_threshold = ann_threshold
        self.last_seq = 0
        self._f16 = np.zeros((0, dim), dtype=np.float16)
        self._ids = np.zeros(0, dtype=np.int64)
        self._row: dict[int, int] = {}
        self._f32: np.ndarray | None = None
        self._by_id: tuple[np.ndarray, np.ndarray] | None = None
        self._ann = None
        self._load()

    # -- persistence ---------------------------------------------------------------------------------
    def _load(self) -> None:
        meta_path = self.dir / "meta.json"
        if not meta_path.exists():
            return
        meta = json.loads(meta_path.read_text())
        want = {"format": FORMAT_VERSION, "model": self.model, "dim": self.dim}
        if any(meta.get(k) != v for k, v in want.items()):
            raise IndexMismatch(
                f"the vector index in {self.dir} was built with model {meta.get('model')!r} "
                f"(dim {meta.get('dim')}, format {meta.get('format')}); this paperradar uses {self.model!r} "
                f"(dim {self.dim}, format {FORMAT_VERSION})",
                hint="run `paperradar index --rebuild` to re-embed the store",
            )
        self._f16 = np.load(self.dir / "vectors.npy", mmap_mode="r")
        self._ids = np.load(self.dir / "ids.npy")
        if len(self._ids) != meta["count"] or self._f16.shape != (meta["count"], self.dim):
            raise IndexMismatch(f"the vector index in {self.dir} is incomplete ({len(self._ids)} ids, "
                                f"{self._f16.shape[0]} vectors, meta says {meta['count']})",
                                hint="run `paperradar index --rebuild`")
        self._row = {int(i): r for r, i in enumerate(self._ids)}
        self.last_seq = int(meta.get("last_seq", 0))
        ann_path = self.dir / "hnsw.usearch"
        if meta.get("ann") and ann_path.exists():
            self._ann = _usearch().restore(str(ann_path), view=True)
            self._ann.expansion_search = EXPANSION_SEARCH  # not stored in the file

    def needs_ann(self) -> bool:
        return len(self._ids) >= self.ann_threshold and self._ann is None

    def save(self, last_seq: int, ann: bool = False) -> None:
        """Write arrays first, metadata last (its count must match), each by atomic rename.

        ``ann``: also (re)build the HNSW graph when the index is big enough for it. Leave it False for
        the intermediate saves of a long indexing run: the graph is built once, at the end.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        f16 = np.ascontiguousarray(self._f16)
        _atomic_save(self.dir / "vectors.npy", f16)
        _atomic_save(self.dir / "ids.npy", self._ids)
        ann = ann and len(self._ids) >= self.ann_threshold
        if ann:
            self._build_ann()
        else:
            (self.dir / "hnsw.usearch").unlink(missing_ok=True)  # stale: rows changed since it was built
            self._ann = None
        self.last_seq = last_seq
        meta = {"format": FORMAT_VERSION, "model": self.model, "dim": self.dim, "count": len(self._ids),
                "last_seq": last_seq, "ann": ann, "dtype": "float16"}
        tmp = self.dir / "meta.json.tmp"
        tmp.write_text(json.dumps(meta, indent=2))
        os.replace(tmp, self.dir / "meta.json")

    def _build_ann(self) -> None:
        index = _usearch()(ndim=self.dim, metric="ip", dtype="f16", connectivity=16, expansion_add=128,
                      expansion_search=EXPANSION_SEARCH)
        index.add(self._ids, np.asarray(self._f16, dtype=np.float32), threads=os.cpu_count() or 1)
        tmp = self.dir / "hnsw.usearch.tmp"
        index.save(str(tmp))
        os.replace(tmp, self.dir / "hnsw.usearch")
        self._ann = index

    # -- content -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._ids)

    def add(self, ids: np.ndarray | list[int], vectors: np.ndarray) -> None:
        """Insert or replace the vectors of ``ids`` (rows must be L2-normalised)."""
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float16)
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"expected ({len(ids)}, {self.dim}) vectors, got {vectors.shape}")
        f16 = np.array(self._f16)  # materialise a memory-mapped array before writing
        fresh_ids, fresh_rows = [], []
        for i, pid in enumerate(ids.tolist()):
            row = self._row.get(pid)
            if row is None:
                self._row[pid] = len(self._ids) + len(fresh_ids)
                fresh_ids.append(pid)
                fresh_rows.append(i)
            else:
                f16[row] = vectors[i]
        if fresh_ids:
            f16 = np.concatenate([f16, vectors[fresh_rows]])
            self._ids = np.concatenate([self._ids, np.asarray(fresh_ids, dtype=np.int64)])
        self._f16 = f16
        self._f32 = None
        self._by_id = None
        self._ann = None

    def vector(self, paper_id: int) -> np.ndarray | None:
        row = self._row.get(paper_id)
        return None if row is None else np.asarray(self._f16[row], dtype=np.float32)

    def ids(self) -> list[int]:
        return self._ids.tolist()

    def rows(self, ids) -> tuple[list[int], np.ndarray]:
        """(the ids that have a vector, their vectors as a float32 matrix), in the order given."""
        wanted = np.fromiter(ids, dtype=np.int64)
        if len(wanted) == 0 or len(self._ids) == 0:
            return [], np.zeros((0, self.dim), dtype=np.float32)
        if self._by_id is None:  # ids sorted, with their rows: a vectorised lookup of many ids at once
            order = np.argsort(self._ids, kind="stable")
            self._by_id = (self._ids[order], order)
        sorted_ids, sorted_rows = self._by_id
        at = np.minimum(np.searchsorted(sorted_ids, wanted), len(sorted_ids) - 1)
        found = sorted_ids[at] == wanted
        rows = sorted_rows[at[found]]
        return wanted[found].tolist(), np.asarray(self._f16[rows], dtype=np.float32)

    def sample(self, n: int, seed: int) -> tuple[list[int], np.ndarray]:
        """Up to ``n`` papers drawn at random (reproducibly, by ``seed``): (ids, float32 vectors)."""
        total = len(self._ids)
        if total == 0:
            return [], np.zeros((0, self.dim), dtype=np.float32)
        picks = np.sort(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False))
        return self._ids[picks].tolist(), np.asarray(self._f16[picks], dtype=np.float32)

    def similarities(self, query: np.ndarray, ids: list[int]) -> list[tuple[int, float]]:
        """Cosine similarity of ``query`` to each of ``ids`` that has a vector (exact; for small sets)."""
        rows = [(pid, self._row[pid]) for pid in ids if pid in self._row]
        if not rows:
            return []
        m = np.asarray(self._f16[np.array([r for _, r in rows])], dtype=np.float32)
        sims = m @ np.asarray(query, dtype=np.float32).reshape(-1)
        return [(pid, float(s)) for (pid, _), s in zip(rows, sims, strict=True)]

    def matrix(self) -> np.ndarray:
        """All vectors as float32 (numpy has no fast float16 GEMV), cached."""
        if self._f32 is None:
            self._f32 = np.asarray(self._f16, dtype=np.float32)
        return self._f32

    # -- search --------------------------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int = 100, exact: bool | None = None) -> list[tuple[int, float]]:
        """The k nearest papers by cosine similarity: [(paper id, similarity)], best first."""
        n = len(self._ids)
        if n == 0 or k <= 0:
            return []
        k = min(k, n)
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        use_ann = self._ann is not None and not exact
        if use_ann:
            found = self._ann.search(q, k)
            return [(int(pid), float(1.0 - d)) for pid, d in zip(found.keys, found.distances, strict=True)]
        sims = self.matrix() @ q
        top = np.argpartition(-sims, k - 1)[:k] if k < n else np.arange(n)
        order = sorted(top.tolist(), key=lambda r: (-sims[r], int(self._ids[r])))
        return [(int(self._ids[r]), float(sims[r])) for r in order]
