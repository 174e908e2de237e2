"""Rebuilding an index never empties the one in use: `index --rebuild` builds beside it and swaps it in
whole; searches (in this process and others) find results throughout, and an interrupted rebuild leaves
the old index in place."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from paperradar.lexical import LexicalIndex
from paperradar.models import Paper
from paperradar.query import parse_query
from paperradar.search import EMBED_CHUNK, SearchEngine
from paperradar.store import Store
from paperradar.vectors import IndexBusy, VectorIndex, writing

# Rebuilds and cross-process readers: seconds each, the whole-suite tier.
pytestmark = pytest.mark.slow

TOPICS = ["protein folding with deep networks", "quantum error correction codes", "graph neural networks",
          "speech recognition in noisy rooms", "reinforcement learning for robots", "galaxy cluster surveys"]
# More papers than one embedding chunk, so that a rebuild reports progress before it is done.
PAPERS = [Paper(title=f"{TOPICS[i % len(TOPICS)].capitalize()}, part {i}", source="arxiv",
                arxiv_id=f"2501.{i:05d}", abstract=f"We study {TOPICS[i % len(TOPICS)]} (study {i}).",
                categories=["cs.LG"], announced="2025-01-02")
          for i in range(EMBED_CHUNK + 40)]


@pytest.fixture
def built(tmp_path, embedder):
    store = Store(tmp_path / "paperradar.sqlite3")
    store.upsert_papers(PAPERS)
    engine = SearchEngine(store, tmp_path / "index", embedder=embedder)
    engine.update()
    yield store, engine
    engine.close()
    store.close()


@pytest.fixture
def lexical_only(tmp_path):
    store = Store(tmp_path / "paperradar.sqlite3")
    store.upsert_papers(PAPERS)
    engine = SearchEngine(store, tmp_path / "index")
    engine.update(dense=False)
    yield store, engine
    engine.close()
    store.close()


def keys(hits) -> list[str]:
    return [h.paper.key for h in hits]


def test_vectors_rebuild_keeps_the_old_index_searchable_until_the_new_one_is_swapped_in(built, embedder,
                                                                                       tmp_path):
    store, engine = built
    before = VectorIndex(tmp_path / "index" / "vectors", engine.model_name, embedder.dim)
    seen = []

    def during(name, done, total):
        if name != "vectors" or done >= total:
            return
        # Another reader (a web worker) opening the index now finds the complete old one...
        other = SearchEngine(store, tmp_path / "index", embedder=embedder)
        hits = other.search("quantum error correction", mode="dense", limit=5).hits
        seen.append((len(other.vectors), keys(hits)))
        other.close()
        # ... and so does this process's engine, mid-rebuild.
        assert keys(engine.search("galaxy clusters", mode="dense", limit=3).hits)

    assert engine.update(progress=during, rebuild="vectors") == {"lexical": 0, "vectors": len(PAPERS)}
    assert seen, "the rebuild reported no progress before its end"
    for count, found in seen:
        assert count == len(PAPERS) and len(found) == 5
        assert all(int(k.split(".")[1]) % len(TOPICS) == 1 for k in found)  # quantum papers
    after = SearchEngine(store, tmp_path / "index", embedder=embedder)
    assert len(after.vectors) == len(PAPERS) and after.vectors.last_seq == store.max_seq()
    ids = before.ids()
    np.testing.assert_allclose(after.vectors.rows(ids)[1], before.rows(ids)[1], atol=2e-3)  # same model
    assert sorted(p.name for p in (tmp_path / "index").iterdir()) == ["lexical", "sentences", "vectors",
                                                                     "vectors.lock"]
    after.close()


def test_an_interrupted_vectors_rebuild_leaves_the_old_index_and_the_next_one_cleans_up(built, embedder,
                                                                                         tmp_path):
    store, engine = built
    vdir = tmp_path / "index" / "vectors"
    meta = (vdir / "meta.json").read_bytes()
    inode = (vdir / "meta.json").stat().st_ino

    def crash(name, done, total):
        if name == "vectors":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        engine.update(progress=crash, rebuild="vectors")
    assert (vdir / "meta.json").read_bytes() == meta and (vdir / "meta.json").stat().st_ino == inode
    assert len(VectorIndex(vdir, engine.model_name, embedder.dim)) == len(PAPERS)
    assert keys(engine.search("protein folding", mode="dense", limit=3).hits)
    # A save that died half-way leaves its staging directory; the next rebuild replaces it.
    (tmp_path / "index" / "vectors.new").mkdir()
    (tmp_path / "index" / "vectors.new" / "vectors.npy").write_bytes(b"half")
    assert engine.update(rebuild="vectors")["vectors"] == len(PAPERS)
    assert sorted(p.name for p in (tmp_path / "index").iterdir()) == ["lexical", "sentences", "vectors",
                                                                     "vectors.lock"]
    assert (vdir / "meta.json").stat().st_ino != inode  # a new index (with the same content)


def test_one_vectors_writer_at_a_time(built, tmp_path):
    store, engine = built
    store.upsert_papers([Paper(title="Dark matter halos", source="arxiv", arxiv_id="2502.00001")])
    with writing(tmp_path / "index" / "vectors"):  # e.g. `paperradar index` in another process
        with pytest.raises(IndexBusy, match="another process"):
            engine.update()
    assert engine.update() == {"lexical": 0, "vectors": 1}


def test_lexical_rebuild_keeps_the_old_index_searchable(lexical_only, tmp_path):
    store, engine = lexical_only
    path = tmp_path / "index" / "lexical"
    reader = LexicalIndex(path).open_or_create()  # a web worker's index, open before the rebuild
    q = parse_query("quantum")
    want = reader.search(q, limit=500)
    assert len(want) == sum(1 for i in range(len(PAPERS)) if i % len(TOPICS) == 1)
    calls = []

    def during(done, total):
        calls.append(done)
        assert reader.search(q, limit=500) == want
        assert LexicalIndex(path).open_or_create().search(q, limit=500) == want  # opened now

    engine.lexical.rebuild(store, batch=50, progress=during)
    assert len(calls) > 1
    reader.reload()
    assert reader.search(q, limit=500) == want
    # The reader writes into the new index as if it had opened it: its commits land there, intact.
    store.upsert_papers([Paper(title="Quantum gravity in a box", source="arxiv", arxiv_id="2502.00002")])
    assert reader.update_from(store) == 1
    assert len(LexicalIndex(path).open_or_create().search(q, limit=500)) == len(want) + 1
    assert sorted(p.name for p in (tmp_path / "index").iterdir()) == ["lexical"]


def test_a_reader_in_another_process_sees_an_index_throughout_a_rebuild(lexical_only, tmp_path):
    """A separate process opens and searches the lexical index in a loop while rebuilds swap it: it
    always finds the papers (the swap leaves no instant without an index)."""
    store, engine = lexical_only
    code = textwrap.dedent(f"""
        import sys
        from paperradar.lexical import LexicalIndex
        from paperradar.query import parse_query
        q = parse_query("graph")
        print("ready", flush=True)
        counts = set()
        for _ in range(400):
            ix = LexicalIndex({str(tmp_path / "index" / "lexical")!r}).open_or_create()
            counts.add(len(ix.search(q, limit=500)))
            ix.close()
        print(sorted(counts))
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "ready"
    rebuilds = 0
    while proc.poll() is None or rebuilds < 3:  # swap all the time the reader reads
        engine.lexical.rebuild(store)
        rebuilds += 1
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert out.strip() == str([sum(1 for i in range(len(PAPERS)) if i % len(TOPICS) == 2)])


def test_a_vectors_reader_in_another_process_never_sees_a_half_saved_index(tmp_path):
    """Each save swaps in a whole directory: a process loading the index meanwhile gets the previous one
    or the new one, checked, never files of both."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    vi = VectorIndex(tmp_path / "v", "m", 16)
    vi.add(range(300), x)
    vi.save(last_seq=1)
    code = textwrap.dedent(f"""
        from paperradar.vectors import VectorIndex
        print("ready", flush=True)
        sizes = set()
        for _ in range(300):
            v = VectorIndex({str(tmp_path / "v")!r}, "m", 16)
            assert v.last_seq == len(v) - 299, (v.last_seq, len(v))  # arrays and metadata of one save
            sizes.add(len(v))
        print(len(sizes) > 1)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "ready"
    n = 300
    while proc.poll() is None:
        vi.add([n], x[:1])
        n += 1
        vi.save(last_seq=n - 299)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert out.strip() == "True"  # it did read while saves went on
