"""kill -9 during a vector index update: the index on disk is always one complete save, and the next run
completes it with exact counts (every paper of the store once, no duplicate). Searches from another
process keep being answered from the previous index while an update runs.

The updating process is a real subprocess with the real model; it kills itself with SIGKILL at a chosen
point of a save (while writing the new directory, just before the swap, just after it), or the test kills
it from outside once it has saved something."""

from __future__ import annotations

import functools
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from paperradar import search as search_module
from paperradar import vectors as vectors_module
from paperradar.models import Paper
from paperradar.passages import SentenceIndex
from paperradar.search import SearchEngine, paper_text
from paperradar.store import Store
from paperradar.vectors import VectorIndex, text_hash

pytestmark = pytest.mark.slow  # embeds a few thousand papers with the real model, more than once

SAVE_EVERY, THRESHOLD = 400, 500
WORDS = ("protein folding quantum error correction graph neural networks galaxy surveys speech recognition "
         "robot grasping magma chambers dark matter sparse attention tokenizers lattice gauge theory "
         "reinforcement learning climate models gene expression topological insulators").split()

# A subprocess updating the vector index of ``store`` the way the engine does (small saves and an added
# segment as big as the base, so that both the fold and the append are exercised), that SIGKILLs itself
# at the KILL_AT-th call of the named step of a save.
UPDATER = textwrap.dedent("""
    import functools, os, signal, sys
    from paperradar import search, vectors
    from paperradar.embed import Embedder
    from paperradar.search import SearchEngine
    from paperradar.store import Store

    store_path, models, index, step, kill_at = sys.argv[1:6]
    search.SAVE_EVERY = {save_every}
    vectors.ADDED_FRACTION = 1.0
    search.VectorIndex = functools.partial(vectors.VectorIndex, ann_threshold={threshold})
    calls = 0
    real = getattr(vectors, step) if step not in ("none", "after_swap") else None

    def hook(*a, **kw):
        global calls
        calls += 1
        if step == "after_swap":
            real(*a, **kw)
        if calls == int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)
        if step != "after_swap":
            return real(*a, **kw)

    if step == "after_swap":
        real = vectors.swap_directories
        vectors.swap_directories = hook
    elif real is not None:
        setattr(vectors, step, hook)
    engine = SearchEngine(Store(store_path), index, embedder=Embedder.load(models))
    print("ready", flush=True)
    engine._update_vectors(None, rebuild=False)
    print("done", flush=True)
""").format(save_every=SAVE_EVERY, threshold=THRESHOLD)


def papers(n: int, start: int, seed: int) -> list[Paper]:
    rng = random.Random(seed)
    return [Paper(title=f"{' '.join(rng.sample(WORDS, 4)).capitalize()} {i}", source="arxiv",
                  arxiv_id=f"2601.{i:05d}", abstract=" ".join(rng.choices(WORDS, k=12)) + ".",
                  announced="2026-01-05") for i in range(start, start + n)]


def run_updater(data, models, step: str, kill_at: int, while_running=None):
    proc = subprocess.Popen([sys.executable, "-c", UPDATER, str(data / "paperradar.sqlite3"), str(models),
                             str(data / "index"), step, str(kill_at)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[-2000:]
    if while_running:
        while_running(proc)
    out, err = proc.communicate(timeout=600)
    return proc.returncode, out, err


def on_disk(engine: SearchEngine) -> VectorIndex:
    """The index a new process would load now (checked: IndexCorrupt if it were half saved)."""
    return VectorIndex(engine.index_dir / "vectors", engine.model_name, engine.embedder.dim,
                       ann_threshold=THRESHOLD)


def assert_exact(engine: SearchEngine, store: Store) -> VectorIndex:
    vi = on_disk(engine)
    stored = store.changed_since(0, limit=10**6)
    ids = vi.ids()
    assert len(ids) == len(set(ids)) == len(stored) == len(vi)
    assert set(ids) == {p.id for p in stored}
    assert vi.text_hashes([p.id for p in stored]) == [text_hash(paper_text(p)) for p in stored]
    assert vi.last_seq == store.max_seq()
    assert vi._ann is not None and len(vi._ann) == len(vi._ids)
    # Every paper the vector index holds has its sentence vectors (saved before the vectors, each time).
    sentences = SentenceIndex(engine.index_dir / "sentences", engine.model_name, engine.embedder.dim)
    assert set(sentences._lookup[0].tolist()) == set(ids)
    return vi


@pytest.fixture
def data(tmp_path, embedder, monkeypatch):
    """A store of 2,000 generated papers, not yet indexed; the engine's settings as the updater's."""
    monkeypatch.setattr(search_module, "SAVE_EVERY", SAVE_EVERY)
    monkeypatch.setattr(vectors_module, "ADDED_FRACTION", 1.0)
    monkeypatch.setattr(search_module, "VectorIndex", functools.partial(VectorIndex, ann_threshold=THRESHOLD))
    store = Store(tmp_path / "paperradar.sqlite3")
    store.upsert_papers(papers(2000, 0, seed=1))
    yield tmp_path, store, embedder
    store.close()


def test_kill_9_during_the_first_indexing_then_a_rerun_completes_it(data, tmp_path_factory):
    data_dir, store, embedder = data
    models = tmp_path_factory.getbasetemp() / "models"
    engine = SearchEngine(store, data_dir / "index", embedder=embedder)
    # Killed while writing the 2nd save's files, then just before the 3rd save's swap: each time the
    # index on disk is the last complete save, with exactly the papers up to its last_seq.
    for step, at in (("_write", 5), ("swap_directories", 3)):
        code, out, err = run_updater(data_dir, models, step, at)
        assert code == -signal.SIGKILL and "done" not in out, err[-2000:]
        vi = on_disk(engine)
        assert 0 < len(vi) < 2000 and vi.last_seq < store.max_seq()
        assert sorted(vi.ids()) == sorted(p.id for p in store.changed_since(0, limit=10**6)
                                          if p.seq <= vi.last_seq)
    engine._update_vectors(None, rebuild=False)
    assert_exact(engine, store)
    engine.close()


def test_kill_9_during_a_daily_update_while_another_process_searches(data, tmp_path_factory):
    data_dir, store, embedder = data
    models = tmp_path_factory.getbasetemp() / "models"
    engine = SearchEngine(store, data_dir / "index", embedder=embedder)
    engine._update_vectors(None, rebuild=False)
    assert_exact(engine, store)
    # A day: 600 new papers and 1,000 upvote-only changes.
    store.upsert_papers(papers(600, 2000, seed=2))
    upvoted = store.changed_since(0, limit=1000)
    store.upsert_papers([Paper(title=p.title, source="hf_daily", arxiv_id=p.arxiv_id, abstract=p.abstract,
                               upvotes=(p.upvotes or 0) + 3) for p in upvoted])
    assert store.count_changed_since(on_disk(engine).last_seq) == 1600
    reader = SearchEngine(Store(store.path), data_dir / "index", embedder=embedder)
    reader.warm()
    answered, errors = [], []

    def search_meanwhile(proc):
        while proc.poll() is None:
            try:
                reader.refresh()
                hits = reader.search("protein folding in galaxy surveys", mode="dense", limit=5).hits
                answered.append(len(hits))
            except Exception as e:  # noqa: BLE001 - any failure of a search during the update is the bug
                errors.append(repr(e))
            time.sleep(0.01)

    # Killed just after the swap of its 1st save (before it cleans up), then from outside.
    code, out, err = run_updater(data_dir, models, "after_swap", 1, search_meanwhile)
    assert code == -signal.SIGKILL and "done" not in out, err[-2000:]
    assert errors == [] and len(answered) >= 5 and all(n == 5 for n in answered)
    vi = on_disk(engine)
    assert len(vi.ids()) == len(set(vi.ids())) == len(vi) == 2400  # the 1st save: 400 new

    def kill_once_saved(proc):
        meta = data_dir / "index" / "vectors" / "meta.json"
        start = meta.stat().st_ino
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            if (data_dir / "index" / "vectors.new").exists() or meta.stat().st_ino != start:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.001)

    code, out, err = run_updater(data_dir, models, "none", 0, kill_once_saved)
    assert code == -signal.SIGKILL, (code, err[-2000:])
    engine._update_vectors(None, rebuild=False)
    vi = assert_exact(engine, store)
    assert len(vi) == 2600
    # The upvote-only papers were not embedded again: the added segment holds the 600 new ones only.
    assert len(vi._aids) == 600 and sorted(vi._aids.tolist()) == sorted(
        p.id for p in store.changed_since(0, limit=10**6) if p.arxiv_id >= "2601.02000")
    # A search from the other process sees the new papers once it refreshes.
    reader.refresh()
    last = next(p.id for p in store.changed_since(0, limit=10**6) if p.arxiv_id == "2601.02599")
    assert len(reader.vectors) == 2600 and reader.vectors.search(vi.vector(last), k=1)[0][0] == last
    reader.close()
    reader.store.close()
    engine.close()


def test_the_updater_runs_to_its_end_without_a_kill(data, tmp_path_factory):
    """The kills above are what stops the updater: without one the same update completes."""
    data_dir, store, embedder = data
    code, out, err = run_updater(data_dir, tmp_path_factory.getbasetemp() / "models", "none", 0)
    assert code == 0 and "done" in out, err[-2000:]
    engine = SearchEngine(store, data_dir / "index", embedder=embedder)
    assert len(assert_exact(engine, store)) == 2000
    engine.close()
