"""A damaged vector index (truncated, garbled or altered files, bad metadata) is one clear error naming the
file, with the command that fixes it, never a traceback or silently wrong results."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from paperradar.errors import PaperradarError
from paperradar.models import Paper
from paperradar.search import SearchEngine
from paperradar.store import Store
from paperradar.vectors import REBUILD_HINT, IndexCorrupt, VectorIndex

N, DIM = 60, 16


def build(path: Path, ann: bool = False) -> np.ndarray:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((N, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    vi = VectorIndex(path, "m", DIM, ann_threshold=10)
    vi.add(range(1000, 1000 + N), x)
    vi.save(last_seq=7, ann=ann)
    return x


def truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def garble_header(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(b"\x00garbage!" * 4 + data[36:])


def flip_middle(p: Path) -> None:
    data = bytearray(p.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 8] = bytes(b ^ 0x5A for b in data[mid:mid + 8])
    p.write_bytes(bytes(data))


def rewrite_meta(**changes):
    def change(p: Path) -> None:
        p.write_text(json.dumps(json.loads(p.read_text()) | changes))
    return change


DAMAGE = {
    "vectors.npy truncated": ("vectors.npy", truncate),
    "vectors.npy header garbled": ("vectors.npy", garble_header),
    "vectors.npy bytes flipped": ("vectors.npy", flip_middle),
    "vectors.npy missing": ("vectors.npy", Path.unlink),
    "vectors.npy empty": ("vectors.npy", lambda p: p.write_bytes(b"")),
    "ids.npy truncated": ("ids.npy", truncate),
    "ids.npy header garbled": ("ids.npy", garble_header),
    "ids.npy bytes flipped": ("ids.npy", flip_middle),
    "texts.npy truncated": ("texts.npy", truncate),
    "texts.npy bytes flipped": ("texts.npy", flip_middle),
    "texts.npy missing": ("texts.npy", Path.unlink),
    "meta.json bad JSON": ("meta.json", lambda p: p.write_text('{"format": 1, "model": "m", ')),
    "meta.json not an object": ("meta.json", lambda p: p.write_text("[1, 2]")),
    "meta.json binary junk": ("meta.json", lambda p: p.write_bytes(b"\xff\xfe\x00junk")),
    "meta.json wrong count": ("meta.json", rewrite_meta(count=N + 1)),
    "meta.json count not a number": ("meta.json", rewrite_meta(count="sixty")),
    "meta.json other dtype": ("meta.json", rewrite_meta(dtype="float32")),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_damaged_files_are_one_clear_error(tmp_path, case):
    name, damage = DAMAGE[case]
    build(tmp_path / "v")
    damage(tmp_path / "v" / name)
    with pytest.raises(IndexCorrupt) as err:
        VectorIndex(tmp_path / "v", "m", DIM)
    message = str(err.value)
    assert name in message and str(tmp_path / "v") in message and "\n" not in message
    assert err.value.hint == REBUILD_HINT == "run `paperradar index --rebuild vectors`"
    assert isinstance(err.value, PaperradarError) and err.value.http_status == 503


@pytest.mark.parametrize("damage", [truncate, garble_header, flip_middle])
def test_a_damaged_hnsw_graph_is_refused_before_usearch_reads_it(tmp_path, damage):
    x = build(tmp_path / "v", ann=True)
    assert VectorIndex(tmp_path / "v", "m", DIM, ann_threshold=10).search(x[5], k=1)[0][0] == 1005
    damage(tmp_path / "v" / "hnsw.usearch")
    with pytest.raises(IndexCorrupt, match="hnsw.usearch"):
        VectorIndex(tmp_path / "v", "m", DIM, ann_threshold=10)


def test_the_checksums_are_recorded_and_an_index_saved_without_them_still_loads(tmp_path):
    x = build(tmp_path / "v")
    meta_path = tmp_path / "v" / "meta.json"
    meta = json.loads(meta_path.read_text())
    assert set(meta["sha256"]) == {"vectors.npy", "ids.npy", "texts.npy"} and meta["dtype"] == "float16"
    # An index written before checksums existed: checked by shape only, and accepted.
    del meta["sha256"]
    meta_path.write_text(json.dumps(meta))
    old = VectorIndex(tmp_path / "v", "m", DIM)
    assert len(old) == N and old.search(x[9], k=1)[0][0] == 1009
    old.save(last_seq=8)  # the next save records them
    assert "sha256" in json.loads(meta_path.read_text())


def test_an_index_saved_before_text_hashes_loads_with_every_text_unknown(tmp_path):
    x = build(tmp_path / "v")
    meta_path = tmp_path / "v" / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["sha256"]["texts.npy"]
    meta_path.write_text(json.dumps(meta))
    (tmp_path / "v" / "texts.npy").unlink()
    old = VectorIndex(tmp_path / "v", "m", DIM)
    assert len(old) == N and old.unknown_texts() == N and old.search(x[4], k=1)[0][0] == 1004
    assert old.set_text_hashes([1004, 99], [123, 456]) == 1
    old.save(last_seq=8)
    again = VectorIndex(tmp_path / "v", "m", DIM)
    assert again.unknown_texts() == N - 1 and again.text_hashes([1004, 1005, 99]) == [123, 0, 0]
    assert "texts.npy" in json.loads(meta_path.read_text())["sha256"]


def test_checksum_cost_is_small(tmp_path):
    """The load-time check reads and hashes each file once: at the size of the 119k-paper index
    (87 MiB of float16) it must stay a fraction of a second."""
    import time

    from paperradar.vectors import _sha256

    big = tmp_path / "big.npy"
    np.save(big, np.zeros((119_000, 384), dtype=np.float16))
    _sha256(big)  # into the page cache, as a just-saved index is
    t = time.perf_counter()
    _sha256(big)
    assert time.perf_counter() - t < 1.0


@pytest.fixture
def data(tmp_path, tmp_path_factory, embedder):
    """A data directory with an indexed store and the model file in place (the CLI finds it there)."""
    data = tmp_path / "data"
    store = Store(data / "paperradar.sqlite3")
    store.upsert_papers([Paper(title=f"Paper {i} on topic {t}", source="arxiv", arxiv_id=f"2503.{i:05d}",
                               abstract=f"We discuss {t}.", announced="2025-03-01")
                         for i, t in enumerate(["galaxies", "proteins", "compilers", "rivers"] * 5)])
    engine = SearchEngine(store, embedder=embedder)
    engine.update()
    engine.close()
    store.close()
    shutil.copytree(tmp_path_factory.getbasetemp() / "models", data / "models")
    return data


def test_the_engine_reports_a_damaged_index_and_a_rebuild_repairs_it(data, embedder, monkeypatch):
    flip_middle(data / "index" / "vectors" / "vectors.npy")
    store = Store(data / "paperradar.sqlite3")
    engine = SearchEngine(store, embedder=embedder)
    with pytest.raises(IndexCorrupt, match="vectors.npy") as err:
        engine.warm()  # what the web app's startup calls
    assert err.value.hint == REBUILD_HINT
    # Reported again on every use, without reading the files again until they change.
    reads = []
    monkeypatch.setattr(VectorIndex, "_read", lambda self: reads.append(1))
    for _ in range(3):
        with pytest.raises(IndexCorrupt, match="vectors.npy"):
            engine.search("galaxies", limit=3)
    assert reads == []
    monkeypatch.undo()
    assert engine.search("galaxies", mode="lexical", limit=3).hits  # words still work
    assert engine.update(rebuild="vectors")["vectors"] == 20
    engine.warm()
    assert engine.search("stars and nebulae", mode="dense", limit=1).hits[0].paper.title.endswith("galaxies")
    engine.close()
    store.close()


@pytest.mark.slow
@pytest.mark.parametrize("case", ["vectors.npy truncated", "meta.json bad JSON", "ids.npy bytes flipped"])
def test_the_cli_prints_one_line_and_the_rebuild_command(data, case):
    name, damage = DAMAGE[case]
    damage(data / "index" / "vectors" / name)
    env = {**os.environ, "PAPERRADAR_DATA_DIR": str(data)}
    cmd = [sys.executable, "-c", "from paperradar.cli import main; main()"]
    out = subprocess.run([*cmd, "search", "galaxies"], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.splitlines() == [f"error: {out.stderr.splitlines()[0][7:]}", f"hint: {REBUILD_HINT}"]
    assert name in out.stderr
    fixed = subprocess.run([*cmd, "index", "--rebuild", "vectors"], capture_output=True, text=True, env=env,
                           timeout=300)
    assert fixed.returncode == 0, fixed.stderr
    again = subprocess.run([*cmd, "search", "galaxies"], capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0 and "galaxies" in again.stdout
