"""The vector index: exact search, replacing rows, save/load, HNSW recall, mismatch detection."""

from __future__ import annotations

import numpy as np
import pytest

from paperradar.vectors import IndexMismatch, VectorIndex


def unit(rng, n, d=16):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_exact_search_add_replace_and_reload(tmp_path):
    rng = np.random.default_rng(0)
    x = unit(rng, 50)
    vi = VectorIndex(tmp_path / "v", "m", 16)
    vi.add(list(range(100, 150)), x)
    top = vi.search(x[7], k=3)
    assert top[0][0] == 107 and top[0][1] == pytest.approx(1.0, abs=1e-3)
    vi.add([107], -x[7:8])  # a changed paper replaces its row
    assert len(vi) == 50 and vi.search(x[7], k=1)[0][0] != 107
    vi.save(last_seq=42)
    again = VectorIndex(tmp_path / "v", "m", 16)
    assert len(again) == 50 and again.last_seq == 42
    assert again.search(x[3], k=1)[0][0] == 103
    np.testing.assert_allclose(again.vector(107), -x[7], atol=1e-3)
    assert again.vector(999) is None


def test_model_or_dimension_mismatch_is_explained(tmp_path):
    vi = VectorIndex(tmp_path / "v", "model-a", 16)
    vi.add([1], unit(np.random.default_rng(1), 1))
    vi.save(last_seq=1)
    with pytest.raises(IndexMismatch, match="model-a") as e:
        VectorIndex(tmp_path / "v", "model-b", 16)
    assert "paperradar index --rebuild" in e.value.hint
    with pytest.raises(IndexMismatch):
        VectorIndex(tmp_path / "v", "model-a", 32)


def test_hnsw_recall_against_exact(tmp_path):
    rng = np.random.default_rng(2)
    centers = unit(rng, 40, 64)
    x = centers[rng.integers(0, 40, 5000)] + 0.3 * rng.standard_normal((5000, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    vi = VectorIndex(tmp_path / "v", "m", 64, ann_threshold=1000)
    vi.add(np.arange(5000), x)
    vi.save(last_seq=1, ann=True)
    ann = VectorIndex(tmp_path / "v", "m", 64, ann_threshold=1000)
    queries = unit(rng, 50, 64)
    hits = 0
    for q in queries:
        exact = {pid for pid, _ in ann.search(q, k=10, exact=True)}
        approx = {pid for pid, _ in ann.search(q, k=10)}
        hits += len(exact & approx)
    assert hits / 500 >= 0.95


def test_empty_index_searches_to_nothing(tmp_path):
    vi = VectorIndex(tmp_path / "v", "m", 8)
    assert vi.search(np.ones(8), k=5) == []


def test_opening_an_ann_index_then_loading_the_model_does_not_crash(tmp_path):
    """usearch imported before onnxruntime crashes the interpreter; the index loads them in the safe order
    (a fresh process: the import order of this one is already settled)."""
    import subprocess
    import sys

    code = ("import numpy as np\n"
            "from paperradar.vectors import VectorIndex\n"
            f"v = VectorIndex({str(tmp_path)!r}, 'm', 8, ann_threshold=10)\n"
            "x = np.random.default_rng(0).normal(size=(20, 8)).astype('float32')\n"
            "v.add(list(range(20)), x / np.linalg.norm(x, axis=1, keepdims=True))\n"
            "v.save(last_seq=1, ann=True)\n"
            f"VectorIndex({str(tmp_path)!r}, 'm', 8, ann_threshold=10)\n"
            "import onnxruntime\n"
            "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
