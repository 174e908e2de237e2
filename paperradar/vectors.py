"""The vector index: paper embeddings as plain arrays + JSON metadata, exact search, optional HNSW.

Files in the index directory (never pickle):
- ``vectors.npy``  float16 matrix (n, dim), L2-normalised rows
- ``ids.npy``      int64 paper ids (the store's integer ids), row-aligned
- ``texts.npy``    uint64 hash of the text each row was embedded from (:func:`text_hash`), row-aligned; 0 is
                   unknown (an index saved before the hashes were kept has no such file: all unknown). An
                   update re-embeds only papers whose text hash changed (an upvote-only change embeds none)
- ``meta.json``    model name, dimension, count, dtype, format version, last change sequence indexed, and
                   the sha256 of each other file
- ``hnsw.usearch`` (optional) a usearch HNSW graph over the same rows, built when n >= ann_threshold;
                   a save updates an existing graph in place (new rows added, changed rows removed and
                   added again) instead of building it again

Search is exact (one float32 matrix-vector product: ~11 ms at 119k papers on 2 cores) below the
threshold (ANN_THRESHOLD) and approximate above it. A model or dimension mismatch, and a file that is
truncated, garbled or altered, is an error that says what to do.

A save writes the whole index into a sibling directory and swaps it in at once (:func:`swap_directories`):
a reader, in this process or another, sees the previous complete index or the new complete one, never a
mix, and a crash leaves the previous one in place. One writer at a time: :func:`writing` is its lock.
Files a save did not change are hard-linked from the index in place (with their recorded checksums)
instead of being written and hashed again.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import PaperradarError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock between processes
    fcntl = None

FORMAT_VERSION = 1
# Below this many papers exact search is fast enough (and exact); above it, HNSW. Measured in
# bench/search_speed.py: exact float32 search costs ~11 ms at 119k papers on 2 cores.
ANN_THRESHOLD = 50_000
# HNSW search breadth: recall@10 against exact search is measured in bench/search_speed.py.
EXPANSION_SEARCH = 512  # 119k real papers: recall@10 .971 at 256, .984 at 512 (+1 ms), .990 at 1024
REBUILD_HINT = "run `paperradar index --rebuild vectors`"
FILES = ("vectors.npy", "ids.npy", "texts.npy", "hnsw.usearch")
OPTIONAL = ("texts.npy", "hnsw.usearch")  # texts.npy: absent from indexes saved before it was kept
LOAD_TRIES = 3  # reads of an index that a writer swapped meanwhile, before giving up


class IndexMismatch(PaperradarError):
    """The index on disk was built with another model, dimension or format."""

    http_status = 503


class IndexCorrupt(IndexMismatch):
    """A file of the vector index is missing, truncated, garbled or altered: it must be rebuilt."""


class IndexBusy(PaperradarError):
    """Another process is writing the index."""

    http_status = 503


def text_hash(text: str) -> int:
    """A 64-bit hash of the text a vector is embedded from (never 0: that stands for unknown)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                          "little") or 1


# -- files -----------------------------------------------------------------------------------------------
def _renameat2():
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):  # not glibc >= 2.28 (or not Linux)
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


_RENAMEAT2 = _renameat2()
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def swap_directories(new: Path, path: Path) -> None:
    """Put directory ``new`` in the place of ``path``; afterwards ``new`` holds the directory that was
    there, if any (the caller deletes it).

    Where ``path`` exists, Linux swaps the two in one step (renameat2 RENAME_EXCHANGE: a reader opening
    ``path`` finds the old or the new directory, never none). Elsewhere it takes two renames, with an
    instant between them in which ``path`` is missing.
    """
    try:
        os.rename(new, path)  # nothing there (or an empty directory): one atomic rename
        return
    except OSError as e:
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    if _RENAMEAT2 is not None and _RENAMEAT2(_AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(path),
                                             _RENAME_EXCHANGE) == 0:
        return
    aside = new.with_name(new.name + ".swap")  # the file system cannot exchange (EINVAL) or no renameat2
    shutil.rmtree(aside, ignore_errors=True)
    os.rename(path, aside)
    os.rename(new, path)
    os.rename(aside, new)


@contextmanager
def writing(directory: str | Path, what: str = "vector index") -> Iterator[None]:
    """Hold the writer lock of the index in ``directory`` (a ``.lock`` file beside it, so that it
    survives the directory being swapped); IndexBusy at once if another process or thread holds it."""
    directory = Path(directory)
    if fcntl is None:  # pragma: no cover
        yield
        return
    directory.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory.with_name(directory.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexBusy(f"another process is updating the {what} {directory}",
                            hint="wait for it to finish") from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _sha256(path: Path) -> str:
    # Measured here (2 cores, Xeon with SHA instructions) at 119k papers x 384 float16: the 87 MiB of
    # vectors.npy hash in 86 ms from the page cache (62 ms in memory, where blake2b took 116 ms and md5
    # 143 ms), the 104 MiB HNSW graph in 112 ms: ~0.2 s per process load, and as much per save. Reading
    # through the page cache does not make the memory-mapped vectors resident in the process.
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _write(path: Path, write) -> None:
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())  # on disk before the swap makes it the index


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _usearch():
    """usearch's Index class, with onnxruntime loaded first: importing usearch.index and then onnxruntime
    crashes the process (segmentation fault; usearch 2.26.6, onnxruntime 1.31.1, seen here), and the
    embedder may load onnxruntime after the index is open."""
    import onnxruntime  # noqa: F401
    from usearch.index import Index

    return Index


class VectorIndex:
    """Embeddings of papers by id; ``add`` replaces the rows of ids already present.

    ``load=False`` starts empty without reading the directory (a rebuild: what is there, perhaps of
    another model or corrupt, stays in use until :meth:`save` replaces it).
    """

    def __init__(self, directory: str | Path, model: str, dim: int, ann_threshold: int = ANN_THRESHOLD,
                 *, load: bool = True):
        self.dir = Path(directory)
        self.model = model
        self.dim = dim
        self.ann_threshold = ann_threshold
        self.last_seq = 0
        self._f16 = np.zeros((0, dim), dtype=np.float16)
        self._ids = np.zeros(0, dtype=np.int64)
        self._texts = np.zeros(0, dtype=np.uint64)
        self._row: dict[int, int] = {}
        self._f32: np.ndarray | None = None
        self._by_id: tuple[np.ndarray, np.ndarray] | None = None
        self._ann = None
        self._ann_owned = False  # a graph of our own, modifiable (not a memory-mapped view of a file)
        self._ann_stale: set[int] = set()  # ids whose rows changed since the graph was built or updated
        # The directory the files came from (device, inode) and their checksums, and which of them changed
        # since: a save hard-links the unchanged ones instead of writing and hashing them again.
        self._origin: tuple[int, int] | None = None
        self._sums: dict[str, str] = {}
        self._dirty: set[str] = set(FILES)
        self.texts_missing = False  # read from an index saved before text hashes were kept (until saved)
        if load:
            self._load()

    def copy(self) -> VectorIndex:
        """A copy to add to while searches go on in this one (the arrays are shared: ``add`` replaces
        them instead of writing into them)."""
        other = VectorIndex(self.dir, self.model, self.dim, self.ann_threshold, load=False)
        other._f16, other._ids, other._row = self._f16, self._ids, dict(self._row)
        other._texts = self._texts
        other._f32, other._by_id, other._ann = self._f32, self._by_id, self._ann
        other._ann_stale = set(self._ann_stale)  # _ann_owned stays False: the graph is shared, not ours
        other._origin, other._sums, other._dirty = self._origin, dict(self._sums), set(self._dirty)
        other.last_seq, other.texts_missing = self.last_seq, self.texts_missing
        return other

    # -- persistence ---------------------------------------------------------------------------------
    def _dir_id(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.dir)
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino

    def _load(self) -> None:
        # A writer may swap the directory while its files are read one by one: files that do not fit
        # together are corrupt only if the directory is still the one we started reading.
        for attempt in range(LOAD_TRIES):
            before = self._dir_id()
            try:
                state = self._read()
            except IndexCorrupt:
                if attempt == LOAD_TRIES - 1 or self._dir_id() == before:
                    raise
                continue
            if self._dir_id() == before or attempt == LOAD_TRIES - 1:
                break
        if state is None:
            return
        self._f16, self._ids, self._texts, self.last_seq, self._ann, self._sums = state
        self._row = {int(i): r for r, i in enumerate(self._ids.tolist())}
        self._origin, self._dirty = before, {name for name in FILES if name not in self._sums}
        self.texts_missing = not (self.dir / "texts.npy").exists()

    def _corrupt(self, name: str, problem: str) -> IndexCorrupt:
        return IndexCorrupt(f"the vector index file {self.dir / name} {problem}", hint=REBUILD_HINT)

    def _read(self):
        """(vectors, ids, text hashes, last_seq, ann graph, checksums) from the directory, checked; None
        without an index."""
        meta_path = self.dir / "meta.json"
        try:
            text = meta_path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise self._corrupt("meta.json", f"cannot be read ({e.strerror})") from None
        try:
            meta = json.loads(text)
        except ValueError as e:
            raise self._corrupt("meta.json", f"is not valid JSON ({e})") from None
        if not isinstance(meta, dict):
            raise self._corrupt("meta.json", "is not a JSON object")
        want = {"format": FORMAT_VERSION, "model": self.model, "dim": self.dim}
        if any(meta.get(k) != v for k, v in want.items()):
            raise IndexMismatch(
                f"the vector index in {self.dir} was built with model {meta.get('model')!r} "
                f"(dim {meta.get('dim')}, format {meta.get('format')}); this paperradar uses {self.model!r} "
                f"(dim {self.dim}, format {FORMAT_VERSION})",
                hint=f"{REBUILD_HINT} to re-embed the store",
            )
        count, last_seq = meta.get("count"), meta.get("last_seq", 0)
        if type(count) is not int or count < 0 or type(last_seq) is not int:
            raise self._corrupt("meta.json", f"has no valid count / last_seq ({count!r}, {last_seq!r})")
        if meta.get("dtype", "float16") != "float16":
            raise self._corrupt("meta.json", f"names dtype {meta.get('dtype')!r}, not float16")
        # Indexes saved before checksums were recorded have none: they are checked by size and shape only
        # (the next save adds the checksums).
        sums = meta.get("sha256") or {}
        if not isinstance(sums, dict):
            raise self._corrupt("meta.json", "has no valid sha256 table")
        ann = bool(meta.get("ann")) and (self.dir / "hnsw.usearch").exists()
        for name in FILES:
            path = self.dir / name
            if name == "hnsw.usearch" and not ann:
                continue
            if name == "texts.npy" and name not in sums and not path.exists():
                continue  # saved before text hashes were kept: every row's text is unknown
            if not path.exists():
                raise self._corrupt(name, "is missing")
            if name in sums and _sha256(path) != sums[name]:
                raise self._corrupt(name, "does not match the checksum in meta.json (changed or damaged)")
        f16 = self._array("vectors.npy", np.float16, (count, self.dim), mmap=True)
        ids = self._array("ids.npy", np.int64, (count,), mmap=False)
        if (self.dir / "texts.npy").exists() or "texts.npy" in sums:
            texts = self._array("texts.npy", np.uint64, (count,), mmap=False)
        else:
            texts = np.zeros(count, dtype=np.uint64)
        graph = None
        if ann:
            try:
                graph = _usearch().restore(str(self.dir / "hnsw.usearch"), view=True)
            except Exception as e:  # usearch raises RuntimeError or ValueError for a damaged file
                raise self._corrupt("hnsw.usearch", f"cannot be read ({e})") from None
            if graph is None or len(graph) != count or graph.ndim != self.dim:
                raise self._corrupt("hnsw.usearch", f"does not hold {count} vectors of dimension {self.dim}")
            graph.expansion_search = EXPANSION_SEARCH  # not stored in the file
        kept = {k: v for k, v in sums.items() if k in FILES and (k != "hnsw.usearch" or graph is not None)}
        return f16, ids, texts, last_seq, graph, kept

    def _array(self, name: str, dtype, shape: tuple, mmap: bool) -> np.ndarray:
        try:
            a = np.load(self.dir / name, mmap_mode="r" if mmap else None, allow_pickle=False)
        except Exception as e:  # a garbled header: ValueError, SyntaxError, EOFError, OSError...
            raise self._corrupt(name, f"cannot be read ({type(e).__name__}: {e})") from None
        if not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != shape:
            got = f"{a.dtype} {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
            raise self._corrupt(name, f"holds {got}; meta.json says {np.dtype(dtype)} {shape}")
        return a

    def needs_ann(self) -> bool:
        return len(self._ids) >= self.ann_threshold and self._ann is None

    def save(self, last_seq: int, ann: bool = False, rebuild_ann: bool = False) -> dict:
        """Write the index into a sibling directory, then swap it in for the one in place.

        An HNSW graph the index has is kept up to date: the rows added or changed since it was built are
        added to it (a changed row removed first), a cost that follows the change, not the index. ``ann``:
        also build the graph from scratch when the index is big enough for it and has none (or the one it
        has does not add up); ``rebuild_ann``: build it from scratch in any case. Leave ``ann`` False for
        the intermediate saves of a long first indexing run: the graph is built once, at the end.
        Files that did not change since the index was read are hard-linked from the index in place.
        The caller holds :func:`writing` (or is the only writer). Returns what it did to the graph and
        each step's seconds (for benchmarks).
        """
        import time

        report: dict = {"graph": "none"}
        staging = self.dir.with_name(self.dir.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)  # what a crashed save left
        staging.mkdir(parents=True)
        same_dir = self._origin is not None and self._dir_id() == self._origin
        sums: dict[str, str] = {}

        def put(name: str, write) -> None:
            if same_dir and name not in self._dirty and name in self._sums:
                try:
                    os.link(self.dir / name, staging / name)
                    sums[name] = self._sums[name]
                    return
                except OSError:  # no hard links here (or the file went): write it
                    pass
            write(staging / name)
            sums[name] = _sha256(staging / name)

        def array(a: np.ndarray):
            return lambda path: _write(path, lambda f: np.save(f, a))

        def graph_file(path: Path) -> None:
            graph.save(str(path))
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

        t = time.perf_counter()
        put("vectors.npy", array(np.ascontiguousarray(self._f16)))
        put("ids.npy", array(self._ids))
        put("texts.npy", array(self._texts))
        report["arrays_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        graph, graph_changed = self._ann, bool(self._ann_stale)
        if graph is not None and (rebuild_ann or (graph_changed and not self._update_ann())):
            graph = None
        elif graph is not None:
            graph = self._ann
            report["graph"] = f"updated ({len(self._ann_stale)} rows)" if graph_changed else "unchanged"
        if graph is None and len(self._ids) >= self.ann_threshold and (ann or rebuild_ann or graph_changed):
            graph, graph_changed = self._build_ann(), True
            report["graph"] = "built"
        report["graph_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        if graph is not None:
            if graph_changed:
                self._dirty.add("hnsw.usearch")
            put("hnsw.usearch", graph_file)
        report["graph_save_s"] = round(time.perf_counter() - t, 3)
        meta = {"format": FORMAT_VERSION, "model": self.model, "dim": self.dim, "count": len(self._ids),
                "last_seq": last_seq, "ann": graph is not None, "dtype": "float16", "sha256": sums}
        _write(staging / "meta.json", lambda f: f.write(json.dumps(meta, indent=2).encode()))
        _fsync_dir(staging)
        swap_directories(staging, self.dir)
        shutil.rmtree(staging, ignore_errors=True)  # the previous index (mapped files stay readable)
        self.last_seq = last_seq
        self._ann = graph  # None: no graph, or a stale one dropped (below the threshold, or not asked for)
        self._ann_stale = set()
        self._origin, self._sums, self._dirty = self._dir_id(), sums, set()
        self.texts_missing = False
        return report

    def _update_ann(self) -> bool:
        """Bring the graph up to date with the rows changed since it was built: removed (where present)
        and added again. False when the result does not hold exactly the index's rows (then build it)."""
        graph = self._ann
        if graph.ndim != self.dim:
            return False
        if not self._ann_owned:  # a memory-mapped view of the file in place (shared with readers): copy
            graph = graph.copy()
            graph.expansion_search = EXPANSION_SEARCH
        stale = np.fromiter(sorted(self._ann_stale), dtype=np.int64, count=len(self._ann_stale))
        present = stale[np.asarray(graph.contains(stale), dtype=bool)] if len(graph) else stale[:0]
        if len(present):
            graph.remove(present)
        ids, vectors = self.rows(stale.tolist())
        if ids:
            graph.add(np.asarray(ids, dtype=np.int64), vectors, threads=os.cpu_count() or 1)
        if len(graph) != len(self._ids):
            return False
        self._ann, self._ann_owned = graph, True
        return True

    def _build_ann(self):
        index = _usearch()(ndim=self.dim, metric="ip", dtype="f16", connectivity=16, expansion_add=128,
                           expansion_search=EXPANSION_SEARCH)
        index.add(self._ids, np.asarray(self._f16, dtype=np.float32), threads=os.cpu_count() or 1)
        self._ann_owned = True
        return index

    # -- content -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._ids)

    def add(self, ids: np.ndarray | list[int], vectors: np.ndarray, texts=None) -> None:
        """Insert or replace the vectors of ``ids`` (rows must be L2-normalised); ``texts``: the
        :func:`text_hash` of the text each was embedded from (else unknown)."""
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float16)
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"expected ({len(ids)}, {self.dim}) vectors, got {vectors.shape}")
        hashes = np.zeros(len(ids), dtype=np.uint64) if texts is None else np.asarray(texts, dtype=np.uint64)
        if hashes.shape != (len(ids),):
            raise ValueError(f"expected {len(ids)} text hashes, got {hashes.shape}")
        # A copy, never written in place: the array may be memory-mapped, or shared with the copy of this
        # index that searches use while this one is updated (see copy()).
        f16 = np.array(self._f16)
        known = np.array(self._texts)
        fresh_ids, fresh_rows = [], []
        for i, pid in enumerate(ids.tolist()):
            row = self._row.get(pid)
            if row is None:
                self._row[pid] = len(self._ids) + len(fresh_ids)
                fresh_ids.append(pid)
                fresh_rows.append(i)
            else:
                f16[row] = vectors[i]
                known[row] = hashes[i]
        if fresh_ids:
            f16 = np.concatenate([f16, vectors[fresh_rows]])
            known = np.concatenate([known, hashes[fresh_rows]])
            self._ids = np.concatenate([self._ids, np.asarray(fresh_ids, dtype=np.int64)])
            self._dirty.add("ids.npy")
        self._f16, self._texts = f16, known
        self._dirty.update(("vectors.npy", "texts.npy"))
        self._f32 = None
        self._by_id = None
        if self._ann is not None:  # updated at the next save (searches here go exact meanwhile)
            self._ann_stale.update(ids.tolist())

    def text_hashes(self, ids) -> list[int]:
        """The :func:`text_hash` each of ``ids`` was embedded from: 0 where unknown or not in the index."""
        out = []
        for pid in ids:
            row = self._row.get(pid)
            out.append(0 if row is None else int(self._texts[row]))
        return out

    def unknown_texts(self) -> int:
        """How many rows have no text hash (an index saved before they were kept)."""
        return int(np.count_nonzero(self._texts == 0))

    def set_text_hashes(self, ids, hashes) -> int:
        """Record the text hashes of rows whose vectors are known to be embedded from those texts (an old
        index learning them without embedding again); ids not in the index are ignored. Returns how many
        rows were set."""
        known = np.array(self._texts)
        n = 0
        for pid, h in zip(ids, hashes, strict=True):
            row = self._row.get(pid)
            if row is not None:
                known[row] = h
                n += 1
        if n:
            self._texts = known
            self._dirty.add("texts.npy")
        return n

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
        use_ann = self._ann is not None and not self._ann_stale and not exact
        if use_ann:
            found = self._ann.search(q, k)
            return [(int(pid), float(1.0 - d)) for pid, d in zip(found.keys, found.distances, strict=True)]
        sims = self.matrix() @ q
        top = np.argpartition(-sims, k - 1)[:k] if k < n else np.arange(n)
        order = sorted(top.tolist(), key=lambda r: (-sims[r], int(self._ids[r])))
        return [(int(self._ids[r]), float(sims[r])) for r in order]
