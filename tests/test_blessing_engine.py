"""A deliberately broken text encoder (a random vector per text) fails the self-supervised blessing, through
the real engine, evaluation and blessing code; a working encoder on the same catalog passes (issue 20).

The working encoder is a bag of hashed word vectors (no model: fast); the measured MiniLM figures are in
docs/benchmark_results.md, "Blessing (issue 20)" (bench/blessing_check.py).
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modules.config import load_params
from modules.data.selfsup import make_selfsupervised_queries
from modules.evaluation.blessing import bless_selfsupervised
from modules.evaluation.search_eval import evaluate_engine
from modules.search import SearchEngine, document_text
from modules.search.lexical import tokenize

DIM = 64
WORDS = {
    "brand": ["Kinetix", "Basix", "Pacer", "Nordlys", "Verra", "Oakum", "Lumio", "Tessa", "Brume", "Calder"],
    "style": ["classic", "sporty", "casual", "vintage", "slim", "relaxed", "cropped", "quilted", "pleated", "ribbed"],
    "material": ["cotton", "linen", "leather", "denim", "wool", "canvas", "suede", "silk", "fleece", "jersey"],
    "kind": ["sneaker", "dress", "boot", "jacket", "shirt", "skirt", "scarf", "bag", "sandal", "coat"],
}


def _vec(key: str) -> np.ndarray:
    return np.random.default_rng(zlib.crc32(key.encode())).standard_normal(DIM)


class BagOfWordsEncoder:
    """A working (if simple) text encoder: the normalised sum of a fixed random vector per word."""

    name, dim = "bag-of-words", DIM

    def encode(self, texts, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = np.stack([sum((_vec(t) for t in tokenize(text)), np.zeros(DIM)) for text in texts])
        return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


class RandomTextEncoder(BagOfWordsEncoder):
    """The broken encoder: one random vector per whole text, so a query shares nothing with its item."""

    name = "random"

    def encode(self, texts, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = np.stack([_vec("random:" + text) for text in texts])
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


class NoImageEncoder:
    name, dim = "none", DIM

    def encode_images(self, images):
        return np.zeros((len(images), DIM), np.float32)


def _items() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = []
    for i in range(200):
        words = {k: v[int(rng.integers(len(v)))] for k, v in WORDS.items()}
        rows.append({"item_id": f"it{i:03d}", "title": f"{words['brand']} {words['style']} {words['material']} "
                     f"{words['kind']}", "description": f"A {words['style']} {words['kind']}.",
                     "category": words["kind"], "brand": words["brand"], "price": float(20 + i % 90)})
    return pd.DataFrame(rows)


def _bless(encoder, items: pd.DataFrame, queries: list[dict], params: dict) -> tuple[bool, list[str], dict]:
    engine = SearchEngine.build(items, encoder.encode(document_text(items)), np.zeros((len(items), DIM), np.float32),
                                None, encoder, NoImageEncoder(), params)
    results = evaluate_engine(engine, queries, k=10, methods=("bm25", "text", "hybrid"))
    ok, reasons = bless_selfsupervised(results, None, params)
    return ok, reasons, results


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, list[dict]]:
    items = _items()
    queries = make_selfsupervised_queries(items, tmp_path_factory.mktemp("data"), seed=42, n_text=200, n_image=0)
    return items, [q for q in queries if q["split"] == "eval"]


def test_random_text_encoder_fails_and_a_working_one_passes(catalog, tmp_path: Path) -> None:
    items, queries = catalog
    params = load_params()
    ok, why, res = _bless(BagOfWordsEncoder(), items, queries, params)
    assert ok, why
    assert res["text"]["mrr"] > 0.5 * res["bm25"]["mrr"]
    ok, why, res = _bless(RandomTextEncoder(), items, queries, params)
    assert not ok, why
    assert res["text"]["mrr"] < 0.1  # near chance over 200 items
    assert any(r.startswith("text: encoder-only MRR") and "<" in r for r in why), why
    assert any("photo check skipped" in r for r in why)  # no photo queries here: not blended, not failed
