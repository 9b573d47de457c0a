"""Retrieval building blocks: BM25/TF-IDF, HNSW vs exact, filtered search, RRF."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modules.config import load_params
from modules.search.dense import DenseIndex, l2_normalize, recall_at_k
from modules.search.filters import filter_mask, validate_filters
from modules.search.lexical import BM25Index, TfidfIndex, tokenize
from modules.search.rerank import apply_reranker
from modules.search.rrf import rrf

DOCS = ["red floral summer dress", "navy running sneakers for men", "white minimalist leather sneakers",
        "blue denim jacket", "black leather ankle boots", "striped cotton t-shirt"]


def test_tokenize_folds_plurals_and_drops_stop_words():
    assert tokenize("The Dresses and Sneakers") == ["dress", "sneaker"]
    assert tokenize("🔥👗") == []


@pytest.mark.parametrize("index_cls", [BM25Index, TfidfIndex])
def test_lexical_scores_rank_the_matching_doc_first(index_cls):
    idx = index_cls().fit(DOCS)
    scores = idx.scores("leather sneakers", len(DOCS)) if index_cls is BM25Index else idx.scores("leather sneakers")
    assert scores.shape == (len(DOCS),)
    assert int(np.argmax(scores)) == 2
    assert scores[3] == 0.0


def test_bm25_delta_index_makes_a_new_unique_word_rank_first(tmp_path):
    idx = BM25Index().fit(DOCS)
    idx.add(["zorblax sneakers"], [len(DOCS)])
    scores = idx.scores("zorblax sneakers", len(DOCS) + 1)
    assert int(np.argmax(scores)) == len(DOCS)
    idx.save(tmp_path / "bm25")
    again = BM25Index.load(tmp_path / "bm25")
    np.testing.assert_allclose(again.scores("zorblax sneakers", len(DOCS) + 1), scores, rtol=1e-6)


def test_hnsw_recall_vs_exact_on_random_data():
    rng = np.random.default_rng(42)
    n, d, nq, k = 5000, 384, 100, 10
    x = rng.standard_normal((n, d)).astype(np.float32)
    q = rng.standard_normal((nq, d)).astype(np.float32)
    params = load_params()["retrieval"]  # the shipped HNSW settings
    hnsw, exact = DenseIndex.build(x, params), DenseIndex.build(x, params, exact=True)
    approx_rows = np.stack([hnsw.search(qq, k)[1] for qq in q])
    exact_rows = np.stack([exact.search(qq, k)[1] for qq in q])
    assert recall_at_k(approx_rows, exact_rows) >= 0.98
    scores, _ = hnsw.search(q[0], k)
    assert len(scores) == k and np.all(np.diff(scores) <= 1e-6)


def test_filtered_dense_search_returns_k_even_for_a_rare_subset():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 32)).astype(np.float32)
    idx = DenseIndex.build(x, {"hnsw": {"M": 16, "ef_construction": 100, "ef_search": 32}})
    allowed = np.zeros(2000, bool)
    allowed[rng.choice(2000, 12, replace=False)] = True  # 0.6 % of the rows
    scores, rows = idx.search(rng.standard_normal(32), 10, allowed)
    assert len(rows) == 10 and allowed[rows].all()
    ex_scores, ex_rows = idx.exact_search(x[0], 10, allowed)
    assert set(rows) <= set(np.flatnonzero(allowed)) and len(ex_rows) == 10
    # fewer matching rows than k: all of them, nothing else
    allowed2 = np.zeros(2000, bool)
    allowed2[[5, 6, 7]] = True
    assert sorted(idx.search(x[5], 10, allowed2)[1].tolist()) == [5, 6, 7]


def test_dense_index_add_and_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    idx = DenseIndex.build(rng.standard_normal((100, 16)), {})
    rows = idx.add(rng.standard_normal((2, 16)))
    assert rows.tolist() == [100, 101] and idx.ntotal == 102
    idx.save(tmp_path / "ix")
    again = DenseIndex.load(tmp_path / "ix")
    q = rng.standard_normal(16)
    assert again.search(q, 5)[1].tolist() == idx.search(q, 5)[1].tolist()
    np.testing.assert_allclose(np.linalg.norm(l2_normalize(rng.standard_normal((3, 4))), axis=1), 1.0, rtol=1e-6)


def test_filters_validation_and_mask():
    items = pd.DataFrame({"category": ["Dresses", "sneakers"], "gender": ["women", "men"], "price": [40.0, 90.0]})
    assert filter_mask(items, validate_filters({"category": "dresses"})).tolist() == [True, False]
    assert filter_mask(items, validate_filters({"price_min": 50, "gender": "men"})).tolist() == [False, True]
    assert filter_mask(items, validate_filters(None)) is None
    for bad, msg in [({"colour": "red"}, "unknown filter"), ({"price_min": 50, "price_max": 10}, "greater"),
                     ({"price_max": -1}, ">= 0"), ({"gender": "robots"}, "gender"), ({"price_min": "cheap"}, "number"),
                     ({"price_max": float("nan")}, "finite")]:
        with pytest.raises(ValueError, match=msg):
            validate_filters(bad)


def test_rrf_and_reranker_hook_checks_shape():
    fused = rrf({"a": [1, 2, 3], "b": [3, 1]}, k=60)
    assert max(fused, key=fused.get) in (1, 3) and fused[2] == pytest.approx(1 / 62)

    class Bad:
        def rerank(self, ctx, df):
            return np.zeros(len(df) + 1)

    with pytest.raises(ValueError, match="scores"):
        apply_reranker(Bad(), {}, pd.DataFrame({"x": [1, 2]}))


def test_weighted_rrf_lets_a_strong_list_win():
    lists = {"bm25": [7, 5], "text": [8, 9], "image": [8, 9]}
    plain = rrf(lists, k=60)
    assert max(plain, key=plain.get) == 8  # two weak lists outvote the lexical first place
    weighted = rrf(lists, k=60, weights={"bm25": 3.0, "image": 0.5})
    assert max(weighted, key=weighted.get) == 7
    assert weighted[9] == pytest.approx(1 / 62 + 0.5 / 62)  # missing names weigh 1
    dropped = rrf(lists, k=60, weights={"text": 0.0, "image": 0.0})
    assert dropped[9] == 0.0 and set(dropped) == {5, 7, 8, 9}  # a zero weight keeps the candidates
    with pytest.raises(ValueError, match="weights"):
        rrf(lists, k=60, weights={"bm25": -1.0})


def test_tfidf_candidate_scores_equal_the_full_pass():
    docs = [f"{c} {g} cotton shirt number {i}" for i, (c, g) in
            enumerate((c, g) for c in ("red", "navy", "white", "black") for g in ("men", "women", "kids"))]
    idx = TfidfIndex().fit(docs + ["plain wool scarf"])
    full = idx.scores("navy cotton shirt for women")
    rows = np.array([12, 0, 4, 5, 4, 3], dtype=np.int64)  # unsorted, with a repeat
    np.testing.assert_array_equal(idx.scores_rows("navy cotton shirt for women", rows), full[rows])
    assert idx.scores_rows("navy shirt", np.zeros(0, np.int64)).shape == (0,)
    assert not idx.scores_rows("zzz unknown words", rows).any()
