"""MiniLM query encoder on onnxruntime (issue 16): exported once with tf2onnx, served without TensorFlow.

- :func:`export_onnx` (build time, needs TF + tf2onnx) writes ``<dir>/model.onnx`` (fp32, or int8 dynamic
  quantisation), the tokenizer and ``runtime.json``, produced from the same ``tf.function`` the TF SavedModel
  serves (token ids + mask -> mean-pooled, L2-normalised embedding).
- :func:`cached_export` keys that directory by the weights' hash under ``~/.cache/pixelmatch/text_runtime``
  (``PIXELMATCH_CACHE_DIR`` overrides), so tests and pipeline runs convert once.
- :class:`OnnxTextEncoder` (serving) has the :class:`~modules.encoders.text.TextEncoder` interface
  (``dim``, ``encode``, ``encode_query``). It is safe to call from many threads: one tokenizer per thread
  (the HF fast tokenizer is not re-entrant), one shared ``InferenceSession`` (its ``run`` is thread-safe) and a
  bounded LRU cache of query embeddings behind a lock. A query runs at its real token length (no padding);
  loading warms a run per length bucket.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modules.encoders.query_cache import QueryCache
from modules.settings import TextRuntimeSettings, load_section

RUNTIME_FILE = "runtime.json"
MODEL_FILE = "model.onnx"
TOKENIZER_DIR = "tokenizer"
PRECISIONS = ("fp32", "int8", "int8_mixed")
OPSET = 17
QUERY_BUCKETS: tuple[int, ...] = (16, 32, 64, 128, 256, 512)   # same buckets as the TF query path


def _text_section(params: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """``params["encoders"]["text"]`` as given ({} when absent)."""
    return ((params or {}).get("encoders", {}).get("text", {}) or {})


def runtime_params(params: Mapping[str, Any] | None) -> TextRuntimeSettings:
    """``encoders.text.runtime`` of ``params`` over params.yaml's: kind (onnx | tf), precision (fp32 | int8 |
    int8_mixed), threads."""
    given = _text_section(params).get("runtime")
    out = load_section("encoders.text.runtime", given)
    if out.precision not in PRECISIONS:
        raise ValueError(f"encoders.text.runtime.precision must be one of {PRECISIONS}, got {out.precision!r}")
    return out


def query_cache_size(params: Mapping[str, Any] | None) -> int:
    """``encoders.text.query_cache_size`` of ``params`` over params.yaml's."""
    given = _text_section(params).get("query_cache_size")
    return int(load_section("encoders.text", {}).query_cache_size if given is None else given)


def weights_hash(model_dir: str | Path, max_seq_length: int, precision: str) -> str:
    """sha256 over the model directory's files (names + bytes), the sequence cap, the precision and the opset."""
    h = hashlib.sha256(f"{max_seq_length}|{precision}|opset{OPSET}".encode())
    for p in sorted(Path(model_dir).rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(model_dir)).encode())
            with p.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()[:20]


def export_onnx(encoder: Any, out_dir: str | Path, precision: str, fp32_dir: str | Path | None = None) -> Path:
    """Convert ``encoder`` (a :class:`TextEncoder`) to ``out_dir`` (must not exist); returns ``out_dir``.

    int8 quantises the fp32 graph (``fp32_dir``'s when given, else converted here) with per-channel dynamic
    quantisation of every weight MatMul (per-tensor: cos 0.96 vs TF; per-channel: min 0.985 on 1,000 catalog
    titles, below the issue's 0.99). ``int8_mixed`` keeps the first layer and every layer's FFN output projection
    in fp32 (``fp32_matmuls``) and quantises the rest: min cos 0.993 on 1,000 titles and 0.991 on 1,000 title-word
    queries, about a fifth faster than fp32 for a one-query call (docs/benchmark_results.md, issue 16).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}")
    out = Path(out_dir)
    out.mkdir(parents=True)
    fp32 = Path(fp32_dir) / MODEL_FILE if fp32_dir else out / ("model_fp32.onnx" if precision != "fp32" else MODEL_FILE)
    if not fp32_dir:
        import tensorflow as tf
        import tf2onnx

        spec = (tf.TensorSpec([None, None], tf.int32, name="input_ids"),
                tf.TensorSpec([None, None], tf.int32, name="attention_mask"))
        tf2onnx.convert.from_function(encoder._module.text_embedding, input_signature=spec, opset=OPSET,
                                      output_path=str(fp32))
    if precision != "fp32":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        keep = fp32_matmuls(fp32) if precision == "int8_mixed" else []
        quantize_dynamic(str(fp32), str(out / MODEL_FILE), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"], nodes_to_exclude=keep,
                         extra_options={"MatMulConstBOnly": True})
        if not fp32_dir:
            fp32.unlink()
    encoder.tokenizer.save_pretrained(str(out / TOKENIZER_DIR))
    meta = {"format": "onnx", "precision": precision, "opset": OPSET, "dim": int(encoder.dim),
            "max_seq_length": int(encoder.max_seq_length), "inputs": ["input_ids", "attention_mask"],
            "output": "embedding", "source_model": Path(encoder.model_dir).name,
            "weights_hash": weights_hash(encoder.model_dir, encoder.max_seq_length, precision)}
    (out / RUNTIME_FILE).write_text(json.dumps(meta, indent=2))
    return out


def fp32_matmuls(model_path: str | Path) -> list[str]:
    """The MatMul nodes ``int8_mixed`` leaves in fp32: every one of the first encoder layer, and each layer's FFN
    output projection (``layer_._N/output/dense``; its input, the GELU output, has the widest activation range, so
    per-tensor uint8 activations lose most there). Raises when the graph has none of them (names changed)."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    names = [n.name for n in graph.node if n.op_type == "MatMul"]
    keep = [n for n in names if "/layer_._0/" in n
            or ("/output/dense/" in n and "/attention/" not in n and "/layer_._" in n)]
    if not keep:
        raise ValueError(f"{model_path}: no encoder-layer MatMul names to keep in fp32 (graph naming changed?)")
    return keep


def cache_root() -> Path:
    return Path(os.environ.get("PIXELMATCH_CACHE_DIR", Path.home() / ".cache" / "pixelmatch")) / "text_runtime"


def cached_export(encoder: Any, precision: str) -> Path:
    """The converted model for ``encoder``'s weights, converting (about a minute) only on a cache miss."""
    key = weights_hash(encoder.model_dir, encoder.max_seq_length, precision)
    final = cache_root() / f"{key}-{precision}"
    if (final / RUNTIME_FILE).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    fp32_dir = cached_export(encoder, "fp32") if precision != "fp32" else None
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
    try:
        export_onnx(encoder, tmp / "m", precision, fp32_dir)
        try:
            os.rename(tmp / "m", final)      # atomic; a concurrent writer may have won the race
        except OSError:
            if not (final / RUNTIME_FILE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def copy_runtime(src: str | Path, dst: str | Path) -> Path:
    """Copy a converted runtime directory (model, tokenizer, runtime.json) into a bundle."""
    shutil.copytree(src, dst)
    return Path(dst)


class OnnxTextEncoder:
    """Thread-safe onnxruntime MiniLM encoder loaded from an :func:`export_onnx` directory."""

    name = "minilm"

    def __init__(self, runtime_dir: str | Path, cache_size: int | None = None, threads: int | None = None,
                 warm: bool = True) -> None:
        """``cache_size`` / ``threads``: None takes params.yaml's ``encoders.text.query_cache_size`` (the one LRU
        size of both query encoders) / ``encoders.text.runtime.threads``."""
        import onnxruntime as ort
        from transformers import AutoTokenizer

        cfg = runtime_params(None)
        cache_size = query_cache_size(None) if cache_size is None else cache_size
        threads = cfg.threads if threads is None else threads

        self.model_dir = Path(runtime_dir)
        self.meta = json.loads((self.model_dir / RUNTIME_FILE).read_text())
        self.dim = int(self.meta["dim"])
        self.max_seq_length = int(self.meta["max_seq_length"])
        self.precision = str(self.meta["precision"])
        self._buckets = tuple(b for b in QUERY_BUCKETS if b < self.max_seq_length) + (self.max_seq_length,)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(self.model_dir / MODEL_FILE), opts,
                                            providers=["CPUExecutionProvider"])
        self._tokenizer_proto = AutoTokenizer.from_pretrained(str(self.model_dir / TOKENIZER_DIR),
                                                              local_files_only=True)
        self._local = threading.local()
        self._cache = QueryCache(cache_size)   # bounds (0: off) and hit / miss counts live there
        self._proto_lock = threading.Lock()
        if warm:
            self.warm()

    @property
    def tokenizer(self) -> Any:
        """This thread's tokenizer (a deep copy of the loaded one)."""
        tok = getattr(self._local, "tokenizer", None)
        if tok is None:
            with self._proto_lock:
                tok = self._local.tokenizer = copy.deepcopy(self._tokenizer_proto)
        return tok

    def _tokenize(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and mask, padded to the longest of ``texts`` (a single text: its own length)."""
        enc = self.tokenizer(list(texts), padding=True, truncation=True,
                             max_length=self.max_seq_length, return_tensors="np",
                             return_token_type_ids=False)
        return enc["input_ids"].astype(np.int32), enc["attention_mask"].astype(np.int32)

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})[0]

    def warm(self) -> None:
        """Run one query per length bucket so the first real request pays no allocation / planning cost."""
        for b in self._buckets:
            self._run(np.full((1, b), 101, np.int32), np.ones((1, b), np.int32))

    def encode(self, texts: Sequence[str], batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """Embed ``texts`` -> ``(n, dim)`` float32, L2-normalised, in input order (length-sorted batches of
        ``batch_size``; None: ``encoders.text.batch_size``)."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of strings; use encode_query() for one string")
        texts = [_check(t) for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        step = max(1, int(load_section("encoders.text").batch_size if batch_size is None else batch_size))
        for start in range(0, len(texts), step):
            idx = order[start: start + step]
            out[idx] = self._run(*self._tokenize([texts[i] for i in idx]))
        return out

    def encode_query(self, text: str) -> np.ndarray:
        """Embed one query -> ``(dim,)`` (read-only array; cached by exact text)."""
        # One tokenisation, no padding: the model runs on the query's real length (a 6-token query used to be
        # padded to the 16-token bucket; padded positions are masked out, and the embeddings came out bit-identical
        # on 300 title queries while the run took about a quarter less).
        return self._cache.get_or_compute(_check(text), lambda t: self._run(*self._tokenize([t]))[0])

    @property
    def hits(self) -> int:
        return self._cache.hits

    @property
    def misses(self) -> int:
        return self._cache.misses

    def cache_len(self) -> int:
        return len(self._cache)


def _check(text: Any) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    return text


_LOADED: dict[tuple[str, int, int], OnnxTextEncoder] = {}
_LOADED_LOCK = threading.Lock()


def load_runtime(runtime_dir: str | Path, params: dict[str, Any] | None = None) -> OnnxTextEncoder:
    """One loaded encoder per (weights hash, cache size, threads) per process: bundle versions holding the same
    converted model share one session and one query cache."""
    cfg, cache_size = runtime_params(params), query_cache_size(params)
    meta = json.loads((Path(runtime_dir) / RUNTIME_FILE).read_text())
    key = (str(meta.get("weights_hash") or Path(runtime_dir).resolve()), cache_size, cfg.threads)
    with _LOADED_LOCK:
        if key not in _LOADED:
            _LOADED[key] = OnnxTextEncoder(runtime_dir, cache_size, cfg.threads)
        return _LOADED[key]


def served_query_encoder(params: dict[str, Any] | None) -> OnnxTextEncoder | None:
    """The query encoder a bundle pushed with ``params`` will serve: the ONNX runtime of ``encoders.text.runtime``
    (converted from the TF encoder on a cache miss; the BundlePusher then reuses the conversion), or None when the
    server runs the TF encoder (kind ``tf``). RankerTrainer and RetrievalEvaluator encode queries with it, so the
    ranker learns from, and the blessing measures, the query vectors shoppers will get."""
    from modules.encoders.text import text_encoder_from_params

    cfg = runtime_params(params)
    if cfg.kind != "onnx":
        return None
    return load_runtime(cached_export(text_encoder_from_params(dict(params or {})), cfg.precision), params)
