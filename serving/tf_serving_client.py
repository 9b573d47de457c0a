"""Query text embeddings from TensorFlow Serving's REST predict API.

Contract (the `text_encoder` SavedModel of the bundle, `model/text_encoder/1/`, served by TF Serving):

    POST {base_url}/v1/models/text_encoder:predict
    {"signature_name": "text_embedding",
     "inputs": {"input_ids": [[101, ...]], "attention_mask": [[1, ...]]}}
    -> 200 {"outputs": [[0.01, ...]]}            # one 384-d row per input row
    -> 4xx/5xx {"error": "..."}

Tokenisation happens here with the bundle's own tokenizer, so the server only runs the graph.
`TFServingTextEncoder` has the same query-side surface as `modules.encoders.text.TextEncoder`
(`dim`, `name`, `encode`, `encode_query`) and can replace it inside a SearchEngine; `plug_tf_serving` does that
for a loaded bundle (the app's bundle `prepare` hook when PIXELMATCH_TF_SERVING_URL is set).
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np

from modules.bundle import BundleError
from modules.settings import TfServingSettings, load_section


class TFServingError(RuntimeError):
    """TF Serving could not be reached or answered outside the contract."""


Tokenizer = Callable[..., Any]   # HF tokenizer: tok(texts, padding=..., truncation=..., max_length=..., return_tensors="np")


class TFServingClient:
    """Thin, synchronous REST client for one model's predict endpoint."""

    def __init__(self, base_url: str, model: str | None = None, signature: str | None = None,
                 timeout_s: float | None = None, transport: httpx.BaseTransport | None = None) -> None:
        """``model`` / ``signature`` / ``timeout_s``: None takes ``serving.tf_serving``'s from params.yaml."""
        cfg = load_section("serving.tf_serving")
        model = cfg.model if model is None else model
        signature = cfg.signature if signature is None else signature
        timeout_s = cfg.timeout_s if timeout_s is None else timeout_s
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"TF Serving URL must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.signature = signature
        self._http = httpx.Client(timeout=timeout_s, transport=transport)

    @property
    def predict_url(self) -> str:
        return f"{self.base_url}/v1/models/{self.model}:predict"

    def predict(self, inputs: dict[str, list]) -> np.ndarray:
        """Run the signature on named (columnar) inputs; returns `outputs` as float32 (n, d)."""
        body = {"signature_name": self.signature, "inputs": inputs}
        try:
            resp = self._http.post(self.predict_url, json=body)
        except httpx.HTTPError as exc:
            raise TFServingError(f"TF Serving unreachable at {self.predict_url}: {exc}") from exc
        if resp.status_code != 200:
            try:
                detail = resp.json().get("error", resp.text)
            except ValueError:
                detail = resp.text
            raise TFServingError(f"TF Serving returned {resp.status_code}: {str(detail)[:300]}")
        try:
            outputs = resp.json()["outputs"]
        except (ValueError, KeyError, TypeError) as exc:
            raise TFServingError("TF Serving response has no 'outputs'") from exc
        if isinstance(outputs, dict):  # multi-output signatures answer a dict of named outputs
            if len(outputs) != 1:
                raise TFServingError(f"expected one output, got {sorted(outputs)}")
            outputs = next(iter(outputs.values()))
        arr = np.asarray(outputs, dtype=np.float32)
        if arr.ndim != 2:
            raise TFServingError(f"expected a 2-D 'outputs' array, got shape {arr.shape}")
        return arr

    def close(self) -> None:
        self._http.close()


class TFServingTextEncoder:
    """Query encoder backed by TF Serving: local tokenisation, remote graph, L2-normalised output."""

    def __init__(self, client: TFServingClient, tokenizer: Tokenizer, dim: int, max_seq_length: int | None = None,
                 name: str = "tf_serving") -> None:
        """``max_seq_length`` None: ``encoders.text.max_seq_length`` of params.yaml."""
        if max_seq_length is None:
            max_seq_length = load_section("encoders.text").max_seq_length
        self.client = client
        self.tokenizer = tokenizer
        self.dim = int(dim)
        self.max_seq_length = int(max_seq_length)
        self.name = name
        self._tok_lock = threading.Lock()   # requests run in parallel; the HF fast tokenizer is not re-entrant

    def _tokenize(self, texts: list[str]) -> dict[str, list[list[int]]]:
        with self._tok_lock:
            enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_seq_length,
                                 return_tensors="np")
        return {"input_ids": np.asarray(enc["input_ids"]).astype(np.int64).tolist(),
                "attention_mask": np.asarray(enc["attention_mask"]).astype(np.int64).tolist()}

    def encode(self, texts: list[str], batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """``batch_size`` None: ``encoders.text.batch_size`` of params.yaml."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if batch_size is None:
            batch_size = load_section("encoders.text").batch_size
        rows = []
        for start in range(0, len(texts), batch_size):
            out = self.client.predict(self._tokenize(list(texts[start:start + batch_size])))
            if out.shape[1] != self.dim:
                raise TFServingError(f"TF Serving returned {out.shape[1]}-d embeddings, expected {self.dim}")
            rows.append(out)
        emb = np.vstack(rows)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        return (emb / np.maximum(norms, 1e-12)).astype(np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def _bundle_tokenizer(bundle: Any) -> tuple[Any, int | None]:
    """The tokenizer exported next to the text-encoder SavedModel (`model/text_encoder/<n>/assets.extra/tokenizer`)."""
    root = bundle.path / "model" / "text_encoder"
    versions = sorted((p for p in root.glob("*") if p.name.isdigit()), key=lambda p: int(p.name)) if root.is_dir() else []
    if not versions:
        return None, None
    tok_dir = versions[-1] / "assets.extra" / "tokenizer"
    if not tok_dir.is_dir():
        return None, None
    from transformers import AutoTokenizer

    max_len_file = tok_dir / "max_seq_length.txt"
    max_len = int(max_len_file.read_text().strip()) if max_len_file.is_file() else None
    return AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True), max_len


def plug_tf_serving(bundle: Any, url: str, cfg: TfServingSettings) -> None:
    """Replace the engine's in-process query encoder of a loaded ``serving.bundle_loading.ServingBundle`` by TF
    Serving at ``url``, tokenising with the bundle's tokenizer (``cfg``: params ``serving.tf_serving``)."""
    engine = bundle.engine
    local = getattr(engine, "text_encoder", None)
    if local is None:
        raise BundleError("the search engine has no text_encoder to replace with TF Serving")
    tokenizer, max_len = _bundle_tokenizer(bundle)
    if tokenizer is None:
        tokenizer = getattr(local, "tokenizer", None)
    if tokenizer is None:
        raise BundleError(f"{bundle.path}: no tokenizer for the TF Serving backend (model/text_encoder/1/assets.extra/tokenizer)")
    client = TFServingClient(url, model=cfg.model, signature=cfg.signature, timeout_s=cfg.timeout_s)
    engine.text_encoder = TFServingTextEncoder(client, tokenizer, dim=local.dim,
                                               max_seq_length=max_len or getattr(local, "max_seq_length", None),
                                               name=f"tf_serving:{getattr(local, 'name', 'text')}")
