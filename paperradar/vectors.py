"""The vector index: paper embeddings as plain arrays + JSON metadata, exact search, optional HNSW.

Files in the index directory (never pickle), in two segments: the base, and the rows added since:
- ``vectors.npy``  float16 matrix (n, dim), L2-normalised rows
- ``ids.npy``      int64 paper ids (the store's integer ids), row-aligned
- ``texts.npy``    uint64 hash of the text each row was embedded from (:func:`text_hash`), row-aligned; 0 is
                   unknown (an index saved before the hashes were kept has no such file: all unknown). An
                   update re-embeds only papers whose text hash changed (an upvote-only change embeds none)
- ``added.vectors.npy``, ``added.ids.npy``, ``added.texts.npy`` (present when there are any) the rows
                   added or changed since the base was written, in the same three arrays; an id there
                   supersedes its base row
- ``meta.json``    model name, dimension, count, rows of each segment, dtype, format version, last change
                   sequence indexed, and the sha256 of each other file
- ``hnsw.usearch`` (optional) a usearch HNSW graph over the base rows, built when n >= ann_threshold

A save writes the added segment only (small): the base files and the graph, the bulk of a big index, are
hard-linked unchanged, so that a day's update costs what it changes. Searches merge the graph's answer (less
superseded rows) with an exact search of the added rows. When the added rows outgrow ADDED_FRACTION of the
base (or ADDED_MAX), a save folds them in: the base arrays are written again and the graph is updated in
place (added rows inserted, superseded ones removed and inserted again) instead of being built again.
Format 1 (one segment, written before) is read as is: a base with nothing added.

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

FORMAT_VERSION = 2
READ_FORMATS = (1, 2)  # 1: a base only (no added segment); read as is, written as 2 at the next save
# Below this many papers exact search is fast enough (and exact); above it, HNSW. Measured in
# bench/search_speed.py: exact float32 search costs ~11 ms at 119k papers on 2 cores.
ANN_THRESHOLD = 50_000
# HNSW search breadth: recall@10 against exact search is measured in bench/search_speed.py.
EXPANSION_SEARCH = 512  # 119k real papers: recall@10 .971 at 256, .984 at 512 (+1 ms), .990 at 1024
REBUILD_HINT = "run `paperradar index --rebuild vectors`"
ADDED = ("added.vectors.npy", "added.ids.npy", "added.texts.npy")
FILES = ("vectors.npy", "ids.npy", "texts.npy", *ADDED, "hnsw.usearch")
# The added segment is searched exactly (float32 matrix-vector product, ~1 ms per 10k rows here) and kept
# in memory: it is folded into the base when it outgrows this share of the base, or this many rows. At 1M
# papers and 1,000 new a day that is every 20 days (bench/daily_update.py measures the fold).
ADDED_FRACTION = 0.02
ADDED_MAX = 50_000
# Reads of an index that a writer swapped meanwhile, before giving up (a read is retried only when the
# directory changed under it: a writer saving in a tight loop can make several in a row).
LOAD_TRIES = 20


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
        # The base segment (memory-mapped when read from disk: shared between processes by the page
        # cache) and the added one (small, in memory). Rows are numbered base first, then added.
        self._f16 = np.zeros((0, dim), dtype=np.float16)
        self._ids = np.zeros(0, dtype=np.int64)
        self._texts = np.zeros(0, dtype=np.uint64)
        self._af16 = np.zeros((0, dim), dtype=np.float16)
        self._aids = np.zeros(0, dtype=np.int64)
        self._atexts = np.zeros(0, dtype=np.uint64)
        self._row: dict[int, int] = {}
        self._gone: dict[int, int] = {}  # id -> its base row, superseded by a row of the added segment
        self._f32: np.ndarray | None = None
        self._af32: np.ndarray | None = None
        self._by_id: tuple[np.ndarray, np.ndarray] | None = None
        self._ann = None  # a graph over the base rows (superseded ones included: searches skip them)
        self._ann_owned = False  # a graph of our own, modifiable (not a memory-mapped view of a file)
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
        other._f16, other._ids, other._texts = self._f16, self._ids, self._texts
        other._af16, other._aids, other._atexts = self._af16, self._aids, self._atexts
        other._row, other._gone = dict(self._row), dict(self._gone)
        other._f32, other._af32, other._by_id, other._ann = self._f32, self._af32, self._by_id, self._ann
        # _ann_owned stays False: the graph is shared, not ours
        other._origin, other._sums, other._dirty = self._origin, dict(self._sums), set(self._dirty)
        other.last_seq, other.texts_missing = self.last_seq, self.texts_missing
        return other

    def reopen(self) -> VectorIndex:
        """The index this object just saved, read back from its files (memory-mapped, so that the page
        cache shares them between processes) without hashing again the files whose checksums this
        object recorded as it wrote or linked them: at 1M papers that is ~1.6 GiB not read again."""
        other = VectorIndex(self.dir, self.model, self.dim, self.ann_threshold, load=False)
        if self._origin is not None and self._dir_id() == self._origin:
            # What this object saved: its checksums, and its map of ids to rows (at 1M papers, building
            # it again holds the interpreter ~0.3 s, a stall for the searches of this process).
            other._load(trust=self._sums, rows=(dict(self._row), dict(self._gone)))
        else:
            other._load()
        return other

    # -- persistence ---------------------------------------------------------------------------------
    def _dir_id(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.dir)
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino

    def _stamp(self):
        """Which save the directory holds: its inode, and its meta.json (a directory's inode number
        alone can come back: a writer saving in a tight loop deletes one and makes the next)."""
        try:
            return self._dir_id(), (self.dir / "meta.json").read_bytes()
        except OSError:
            return self._dir_id(), None

    def _load(self, trust: dict[str, str] | None = None, rows: tuple[dict, dict] | None = None) -> None:
        # A writer may swap the directory while its files are read one by one: files that do not fit
        # together are corrupt only if the directory still holds the save we started reading.
        for attempt in range(LOAD_TRIES):
            before = self._stamp()
            try:
                state = self._read(trust, rows)
            except IndexCorrupt:
                if attempt == LOAD_TRIES - 1 or self._stamp() == before:
                    raise
                trust = rows = None
                continue
            if self._stamp() == before or attempt == LOAD_TRIES - 1:
                break
            trust = rows = None
        if state is None:
            return
        (self._f16, self._ids, self._texts, self._af16, self._aids, self._atexts, self._row, self._gone,
         self.last_seq, self._ann, self._sums) = state
        self._origin, self._dirty = before[0], {name for name in FILES if name not in self._sums}
        self._dirty.difference_update(name for name in ADDED if not len(self._aids))
        self.texts_missing = not (self.dir / "texts.npy").exists()

    def _corrupt(self, name: str, problem: str) -> IndexCorrupt:
        return IndexCorrupt(f"the vector index file {self.dir / name} {problem}", hint=REBUILD_HINT)

    def _read(self, trust: dict[str, str] | None = None, rows: tuple[dict, dict] | None = None):
        """The state read from the directory, checked (files whose checksum in meta.json is the one in
        ``trust`` are not hashed again; ``rows``: the map of ids to rows of the object that saved these
        very files, and its superseded rows); None without an index."""
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
        if (meta.get("format") not in READ_FORMATS or meta.get("model") != self.model
                or meta.get("dim") != self.dim):
            raise IndexMismatch(
                f"the vector index in {self.dir} was built with model {meta.get('model')!r} "
                f"(dim {meta.get('dim')}, format {meta.get('format')}); this paperradar uses {self.model!r} "
                f"(dim {self.dim}, format {FORMAT_VERSION})",
                hint=f"{REBUILD_HINT} to re-embed the store",
            )
        count, last_seq = meta.get("count"), meta.get("last_seq", 0)
        base, added = meta.get("base", count), meta.get("added", 0)
        if type(count) is not int or count < 0 or type(last_seq) is not int:
            raise self._corrupt("meta.json", f"has no valid count / last_seq ({count!r}, {last_seq!r})")
        if type(base) is not int or type(added) is not int or not 0 <= base <= count <= base + added:
            raise self._corrupt("meta.json", f"has no valid segment sizes ({base!r}, {added!r})")
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
            if (name == "hnsw.usearch" and not ann) or (name in ADDED and not added):
                continue
            if name == "texts.npy" and name not in sums and not path.exists():
                continue  # saved before text hashes were kept: every row's text is unknown
            if not path.exists():
                raise self._corrupt(name, "is missing")
            if name in sums and not (trust and trust.get(name) == sums[name]):
                try:
                    matches = _sha256(path) == sums[name]
                except OSError as e:  # gone since (a writer swapped the directory and deleted the old)
                    raise self._corrupt(name, f"cannot be read ({e.strerror})") from None
                if not matches:
                    raise self._corrupt(name, "does not match the checksum in meta.json (changed or damaged)")
        f16 = self._array("vectors.npy", np.float16, (base, self.dim), mmap=True)
        ids = self._array("ids.npy", np.int64, (base,), mmap=False)
        if (self.dir / "texts.npy").exists() or "texts.npy" in sums:
            texts = self._array("texts.npy", np.uint64, (base,), mmap=False)
        else:
            texts = np.zeros(base, dtype=np.uint64)
        if added:
            af16 = self._array("added.vectors.npy", np.float16, (added, self.dim), mmap=False)
            aids = self._array("added.ids.npy", np.int64, (added,), mmap=False)
            atexts = self._array("added.texts.npy", np.uint64, (added,), mmap=False)
        else:
            af16 = np.zeros((0, self.dim), dtype=np.float16)
            aids, atexts = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64)
        if rows is not None and trust and all(trust.get(n) == sums.get(n) for n in ("ids.npy", *ADDED)):
            row, gone = rows
        else:
            row = dict(zip(ids.tolist(), range(base), strict=True))
            gone = {}
            for r, pid in enumerate(aids.tolist(), start=base):
                old = row.get(pid)
                if old is not None and old < base:
                    gone[pid] = old
                row[pid] = r
        if len(row) != count:
            raise self._corrupt("meta.json", f"says {count} papers; the files hold {len(row)} distinct ids")
        graph = None
        if ann:
            try:
                graph = _usearch().restore(str(self.dir / "hnsw.usearch"), view=True)
            except Exception as e:  # usearch raises RuntimeError or ValueError for a damaged file
                raise self._corrupt("hnsw.usearch", f"cannot be read ({e})") from None
            if graph is None or len(graph) != base or graph.ndim != self.dim:
                raise self._corrupt("hnsw.usearch", f"does not hold {base} vectors of dimension {self.dim}")
            graph.expansion_search = EXPANSION_SEARCH  # not stored in the file
        kept = {k: v for k, v in sums.items() if k in FILES and (k != "hnsw.usearch" or graph is not None)}
        return f16, ids, texts, af16, aids, atexts, row, gone, last_seq, graph, kept

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
        return len(self) >= self.ann_threshold and self._ann is None

    def added_limit(self) -> int:
        """How many added rows a save keeps beside the base before it folds them in."""
        return min(ADDED_MAX, int(ADDED_FRACTION * len(self._ids)))

    def save(self, last_seq: int, ann: bool = False, rebuild_ann: bool = False) -> dict:
        """Write the index into a sibling directory, then swap it in for the one in place.

        The rows added or changed since the base was written are saved as the added segment; the base
        files and the HNSW graph are hard-linked from the index in place, unchanged. When the added rows
        outgrow :meth:`added_limit`, they are folded into the base: its arrays are written again and a
        graph it has is updated (rows added, changed ones removed and added again), a cost that follows
        the change, not the index. ``ann``: also build the graph from scratch when the index is big
        enough for it and has none (or the one it has does not add up); ``rebuild_ann``: build it from
        scratch in any case. Leave ``ann`` False for the intermediate saves of a long first indexing
        run: the graph is built once, at the end. The caller holds :func:`writing` (or is the only
        writer). Returns what it did to the graph and each step's seconds (for benchmarks).
        """
        import time

        report: dict = {"graph": "none", "added_rows": len(self._aids), "folded": False}
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
        graph, changed = self._ann, self._aids.copy()
        big = len(self) >= self.ann_threshold
        if rebuild_ann or len(self._aids) > self.added_limit() or (big and graph is None and ann):
            self._fold()
            report["folded"] = True
        report["fold_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        put("vectors.npy", array(np.ascontiguousarray(self._f16)))
        put("ids.npy", array(self._ids))
        put("texts.npy", array(self._texts))
        if len(self._aids):
            put("added.vectors.npy", array(self._af16))
            put("added.ids.npy", array(self._aids))
            put("added.texts.npy", array(self._atexts))
        report["arrays_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        graph_changed = False
        if graph is not None and report["folded"]:
            if rebuild_ann or not self._update_ann(changed):
                graph, graph_changed = None, not rebuild_ann
            else:
                graph, graph_changed = self._ann, len(changed) > 0
                report["graph"] = f"updated ({len(changed)} rows)" if graph_changed else "unchanged"
        elif graph is not None:
            report["graph"] = "unchanged"
        if graph is None and big and (ann or rebuild_ann or graph_changed):
            if not report["folded"]:
                self._fold()
                report["folded"] = True
            graph, graph_changed = self._build_ann(), True
            report["graph"] = "built"
        report["graph_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        if graph is not None:
            if graph_changed:
                self._dirty.add("hnsw.usearch")
            put("hnsw.usearch", graph_file)
        report["graph_save_s"] = round(time.perf_counter() - t, 3)
        meta = {"format": FORMAT_VERSION, "model": self.model, "dim": self.dim, "count": len(self),
                "base": len(self._ids), "added": len(self._aids), "last_seq": last_seq,
                "ann": graph is not None, "dtype": "float16", "sha256": sums}
        _write(staging / "meta.json", lambda f: f.write(json.dumps(meta, indent=2).encode()))
        _fsync_dir(staging)
        swap_directories(staging, self.dir)
        shutil.rmtree(staging, ignore_errors=True)  # the previous index (mapped files stay readable)
        self.last_seq = last_seq
        self._ann = graph  # None: no graph, or a stale one dropped (below the threshold, or not asked for)
        self._origin, self._sums, self._dirty = self._dir_id(), sums, set()
        self.texts_missing = False
        return report

    def _fold(self) -> None:
        """Merge the added segment into the base (rows of the base it superseded dropped)."""
        nb = len(self._ids)
        if len(self._gone):
            live = np.ones(nb, dtype=bool)
            live[np.fromiter(self._gone.values(), dtype=np.int64, count=len(self._gone))] = False
        else:
            live = None
        n = len(self)
        kept = nb - len(self._gone)
        f16 = np.empty((n, self.dim), dtype=np.float16)
        if live is None:
            f16[:kept] = self._f16
        else:
            np.compress(live, self._f16, axis=0, out=f16[:kept])
        f16[kept:] = self._af16
        ids = np.concatenate([self._ids if live is None else self._ids[live], self._aids])
        texts = np.concatenate([self._texts if live is None else self._texts[live], self._atexts])
        self._f16, self._ids, self._texts = f16, ids, texts
        self._af16 = np.zeros((0, self.dim), dtype=np.float16)
        self._aids, self._atexts = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64)
        self._row, self._gone = dict(zip(ids.tolist(), range(n), strict=True)), {}
        self._f32 = self._af32 = self._by_id = None
        self._dirty.update(FILES)

    def _update_ann(self, changed: np.ndarray) -> bool:
        """Bring the graph up to date with the rows ``changed`` (ids) since it was built, once folded into
        the base: removed (where present) and added again. False when the result does not hold exactly
        the index's rows (then build it)."""
        graph = self._ann
        if graph.ndim != self.dim:
            return False
        if not self._ann_owned:  # a memory-mapped view of the file in place (shared with readers): copy
            graph = graph.copy()
            graph.expansion_search = EXPANSION_SEARCH
        stale = np.unique(np.asarray(changed, dtype=np.int64))
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
        """A graph built from scratch over the base rows (all the rows, once folded)."""
        index = _usearch()(ndim=self.dim, metric="ip", dtype="f16", connectivity=16, expansion_add=128,
                           expansion_search=EXPANSION_SEARCH)
        index.add(self._ids, np.asarray(self._f16, dtype=np.float32), threads=os.cpu_count() or 1)
        self._ann_owned = True
        return index

    # -- content -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._row)

    def add(self, ids: np.ndarray | list[int], vectors: np.ndarray, texts=None) -> None:
        """Insert or replace the vectors of ``ids`` (rows must be L2-normalised); ``texts``: the
        :func:`text_hash` of the text each was embedded from (else unknown). They go to the added
        segment; a base row they replace is superseded."""
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float16)
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"expected ({len(ids)}, {self.dim}) vectors, got {vectors.shape}")
        hashes = np.zeros(len(ids), dtype=np.uint64) if texts is None else np.asarray(texts, dtype=np.uint64)
        if hashes.shape != (len(ids),):
            raise ValueError(f"expected {len(ids)} text hashes, got {hashes.shape}")
        nb, na = len(self._ids), len(self._aids)
        fresh, replaced = [], []  # (added row, position in the input)
        for i, pid in enumerate(ids.tolist()):
            row = self._row.get(pid)
            if row is not None and row >= nb:
                replaced.append((row - nb, i))
                continue
            if row is not None:
                self._gone[pid] = row
            self._row[pid] = nb + na + len(fresh)
            fresh.append(i)
        # New arrays, never written in place: they may be shared with the copy of this index that
        # searches use while this one is updated (see copy()).
        af16 = np.concatenate([self._af16, vectors[fresh]])
        aids = np.concatenate([self._aids, ids[fresh]])
        atexts = np.concatenate([self._atexts, hashes[fresh]])
        for row, i in replaced:  # after the fresh rows: a later duplicate in ``ids`` wins
            af16[row], atexts[row] = vectors[i], hashes[i]
        self._af16, self._aids, self._atexts = af16, aids, atexts
        self._dirty.update(ADDED)
        self._f32 = self._af32 = self._by_id = None

    def _take(self, rows) -> np.ndarray:
        """The vectors of rows (base first, then added) as a float32 matrix, in the order given."""
        rows = np.asarray(rows, dtype=np.int64)
        nb = len(self._ids)
        if not len(self._aids):
            return np.asarray(self._f16[rows], dtype=np.float32)
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        base = rows < nb
        out[base] = self._f16[rows[base]]
        out[~base] = self._af16[rows[~base] - nb]
        return out

    def _text_at(self, row: int) -> int:
        nb = len(self._ids)
        return int(self._texts[row] if row < nb else self._atexts[row - nb])

    def text_hashes(self, ids) -> list[int]:
        """The :func:`text_hash` each of ``ids`` was embedded from: 0 where unknown or not in the index."""
        out = []
        for pid in ids:
            row = self._row.get(pid)
            out.append(0 if row is None else self._text_at(row))
        return out

    def unknown_texts(self) -> int:
        """How many rows have no text hash (an index saved before they were kept)."""
        gone = sum(1 for r in self._gone.values() if self._texts[r] == 0)
        return int(np.count_nonzero(self._texts == 0)) - gone + int(np.count_nonzero(self._atexts == 0))

    def set_text_hashes(self, ids, hashes) -> int:
        """Record the text hashes of rows whose vectors are known to be embedded from those texts (an old
        index learning them without embedding again); ids not in the index are ignored. Returns how many
        rows were set."""
        known, added = np.array(self._texts), np.array(self._atexts)
        nb = len(self._ids)
        n = changed_base = changed_added = 0
        for pid, h in zip(ids, hashes, strict=True):
            row = self._row.get(pid)
            if row is None:
                continue
            if row < nb:
                known[row], changed_base = h, 1
            else:
                added[row - nb], changed_added = h, 1
            n += 1
        if changed_base:
            self._texts = known
            self._dirty.add("texts.npy")
        if changed_added:
            self._atexts = added
            self._dirty.add("added.texts.npy")
        return n

    def vector(self, paper_id: int) -> np.ndarray | None:
        row = self._row.get(paper_id)
        return None if row is None else self._take([row])[0]

    def _live(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, rows) of every paper, sorted by id (a vectorised lookup of many ids at once), cached."""
        if self._by_id is None:
            nb, na = len(self._ids), len(self._aids)
            all_ids = np.concatenate([self._ids, self._aids])
            rows = np.arange(nb + na, dtype=np.int64)
            if self._gone:
                keep = np.ones(nb + na, dtype=bool)
                keep[np.fromiter(self._gone.values(), dtype=np.int64, count=len(self._gone))] = False
                all_ids, rows = all_ids[keep], rows[keep]
            order = np.argsort(all_ids, kind="stable")
            self._by_id = (all_ids[order], rows[order])
        return self._by_id

    def _live_rows(self) -> np.ndarray:
        """The rows of every paper, in row order."""
        if not self._gone:
            return np.arange(len(self._ids) + len(self._aids), dtype=np.int64)
        return np.sort(self._live()[1])

    def _ids_at(self, rows: np.ndarray) -> np.ndarray:
        return (np.concatenate([self._ids, self._aids]) if len(self._aids) else self._ids)[rows]

    def ids(self) -> list[int]:
        """Every paper's id: the base rows', then the added rows', in the order they were added."""
        return self._ids_at(self._live_rows()).tolist()

    def id_hashes(self) -> tuple[np.ndarray, np.ndarray]:
        """(every paper's id, sorted; the text hash its vector was embedded from), as arrays: what a
        derived index (topics) compares with its own to see which papers are new or re-embedded."""
        sorted_ids, sorted_rows = self._live()
        texts = np.concatenate([self._texts, self._atexts]) if len(self._atexts) else self._texts
        return sorted_ids, np.asarray(texts[sorted_rows], dtype=np.uint64)

    def everything(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids sorted, text hashes, float32 vectors) of every paper: for clustering the whole corpus."""
        sorted_ids, hashes = self.id_hashes()
        return sorted_ids, hashes, self._take(self._live()[1])

    def rows(self, ids) -> tuple[list[int], np.ndarray]:
        """(the ids that have a vector, their vectors as a float32 matrix), in the order given."""
        wanted = np.fromiter(ids, dtype=np.int64)
        if len(wanted) == 0 or len(self) == 0:
            return [], np.zeros((0, self.dim), dtype=np.float32)
        sorted_ids, sorted_rows = self._live()
        at = np.minimum(np.searchsorted(sorted_ids, wanted), len(sorted_ids) - 1)
        found = sorted_ids[at] == wanted
        return wanted[found].tolist(), self._take(sorted_rows[at[found]])

    def sample(self, n: int, seed: int) -> tuple[list[int], np.ndarray]:
        """Up to ``n`` papers drawn at random (reproducibly, by ``seed``): (ids, float32 vectors)."""
        total = len(self)
        if total == 0:
            return [], np.zeros((0, self.dim), dtype=np.float32)
        picks = np.sort(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False))
        rows = self._live_rows()[picks]
        return self._ids_at(rows).tolist(), self._take(rows)

    def similarities(self, query: np.ndarray, ids: list[int]) -> list[tuple[int, float]]:
        """Cosine similarity of ``query`` to each of ``ids`` that has a vector (exact; for small sets)."""
        rows = [(pid, self._row[pid]) for pid in ids if pid in self._row]
        if not rows:
            return []
        m = self._take([r for _, r in rows])
        sims = m @ np.asarray(query, dtype=np.float32).reshape(-1)
        return [(pid, float(s)) for (pid, _), s in zip(rows, sims, strict=True)]

    def matrix(self) -> np.ndarray:
        """All rows' vectors (base, then added; superseded base rows included) as float32 (numpy has no
        fast float16 GEMV), cached."""
        if self._f32 is None:
            self._f32 = self._take(np.arange(len(self._ids) + len(self._aids)))
        return self._f32

    # -- search --------------------------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int = 100, exact: bool | None = None) -> list[tuple[int, float]]:
        """The k nearest papers by cosine similarity: [(paper id, similarity)], best first.

        With a graph: its nearest base rows (less superseded ones) merged with an exact search of the
        added rows; else (or ``exact``) one exact search of every row."""
        n = len(self)
        if n == 0 or k <= 0:
            return []
        k = min(k, n)
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if self._ann is not None and not exact:
            return self._search_segments(q, k)
        sims = self.matrix() @ q
        if self._gone:
            sims[np.fromiter(self._gone.values(), dtype=np.int64, count=len(self._gone))] = -np.inf
        rows = len(sims)
        top = np.argpartition(-sims, k - 1)[:k] if k < rows else np.arange(rows)
        pids = self._ids_at(top)
        order = sorted(range(len(top)), key=lambda j: (-sims[top[j]], int(pids[j])))
        return [(int(pids[j]), float(sims[top[j]])) for j in order if sims[top[j]] > -np.inf]

    def _search_segments(self, q: np.ndarray, k: int) -> list[tuple[int, float]]:
        hits: list[tuple[int, float]] = []
        nb, gone = len(self._ids), self._gone
        want = k + min(len(gone), k)  # superseded rows may be among the nearest: ask for more
        while nb:
            found = self._ann.search(q, min(want, nb))
            hits = [(int(pid), float(1.0 - d)) for pid, d in zip(found.keys, found.distances, strict=True)
                    if int(pid) not in gone]
            if len(hits) >= k or len(found.keys) < min(want, nb) or want >= nb:
                break
            want *= 4
        if len(self._aids):
            if self._af32 is None:
                self._af32 = np.asarray(self._af16, dtype=np.float32)
            sims = self._af32 @ q
            top = np.argpartition(-sims, k - 1)[:k] if k < len(sims) else np.arange(len(sims))
            hits += [(int(self._aids[r]), float(sims[r])) for r in top.tolist()]
        hits.sort(key=lambda h: (-h[1], h[0]))
        return hits[:k]
