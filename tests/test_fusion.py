"""Fusion: concat / late / learned, query side, persistence, training pairs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modules.search.fusion import Fusion, build_train_pairs

RNG = np.random.default_rng(42)
N, D = 200, 32
TEXT = RNG.standard_normal((N, D)).astype(np.float32)
IMAGE = RNG.standard_normal((N, D)).astype(np.float32)
PARAMS = {"late_image_weight": 0.3, "learned": {"hidden_dim": 32, "epochs": 30, "batch_size": 64,
                                                "learning_rate": 0.01, "temperature": 0.1}}


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_concat_is_normalised_and_query_duplicates_text():
    f = Fusion.build("concat", TEXT, IMAGE, PARAMS)
    items = f.fuse_items(TEXT, IMAGE)
    assert items.shape == (N, 2 * D) and np.allclose(np.linalg.norm(items, axis=1), 1, atol=1e-5)
    q = f.query_vector(TEXT[0])
    assert q.shape == (2 * D,) and np.allclose(q[:D], q[D:])
    assert int(np.argmax(items @ q)) == 0


def test_late_equals_weighted_score_average():
    f = Fusion.build("late", TEXT, IMAGE, PARAMS)
    qt, qi = _unit(RNG.standard_normal(D)), _unit(RNG.standard_normal(D))
    got = f.fuse_items(TEXT, IMAGE) @ f.query_vector(qt, qi)
    want = 0.7 * _unit(TEXT) @ qt + 0.3 * _unit(IMAGE) @ qi
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_learned_projection_trains_and_round_trips(tmp_path):
    # Queries are noisy views of text + image: the MLP must learn to use the image half to retrieve the item.
    rows = np.tile(np.arange(N), 3)
    queries = _unit(_unit(TEXT)[rows] + _unit(IMAGE)[rows] + 0.3 * RNG.standard_normal((len(rows), D)))
    f = Fusion.build("learned", TEXT, IMAGE, PARAMS, seed=42, train_pairs=(queries, rows))
    assert f.history[-1] < f.history[0]
    test_q = _unit(_unit(TEXT) + _unit(IMAGE) + 0.3 * RNG.standard_normal((N, D)))
    acc_learned = np.mean(np.argmax(test_q @ f.fuse_items(TEXT, IMAGE).T, axis=1) == np.arange(N))
    acc_text = np.mean(np.argmax(test_q @ _unit(TEXT).T, axis=1) == np.arange(N))
    assert acc_learned > acc_text
    f.save(tmp_path / "fusion")
    again = Fusion.load(tmp_path / "fusion")
    np.testing.assert_allclose(again.fuse_items(TEXT[:5], IMAGE[:5]), f.fuse_items(TEXT[:5], IMAGE[:5]), atol=1e-6)
    assert again.query_vector(TEXT[0]).shape == (D,)


def test_bad_method_and_missing_pairs():
    with pytest.raises(ValueError, match="unknown fusion"):
        Fusion.build("magic", TEXT, IMAGE, PARAMS)
    with pytest.raises(ValueError, match="train_pairs"):
        Fusion.build("learned", TEXT, IMAGE, PARAMS)


class _Enc:
    def encode(self, texts):
        return np.ones((len(texts), D), np.float32)


def test_build_train_pairs_uses_train_split_only_else_title_words():
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["red floral dress", "navy sneaker"]})
    queries = [{"text": "red dress", "split": "train", "relevance": {"a": 3, "b": 1}},
               {"text": "navy", "split": "eval", "relevance": {"b": 3}}]
    q, rows = build_train_pairs(items, _Enc(), queries)
    assert rows.tolist() == [0] and q.shape == (1, D)
    q, rows = build_train_pairs(items, _Enc(), [queries[1]], seed=1)  # no train queries: self-supervised
    assert rows.tolist() == [0, 1]


class _CountingEnc:
    """Distinct vector per text (its hash), and records every text it was asked to encode."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts):
        self.seen.extend(texts)
        return np.stack([np.random.default_rng(abs(hash(t)) % 2**32).standard_normal(D) for t in texts]).astype(np.float32)


def test_build_train_pairs_encodes_each_query_text_once():
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "title": ["red dress", "red skirt", "navy sneaker"]})
    queries = [{"text": "red", "split": "train", "relevance": {"a": 3, "b": 2, "c": 0}},
               {"text": "navy", "split": "train", "relevance": {"c": 2}},
               {"text": "red", "split": "train", "relevance": {"b": 3}}]  # the same text judged twice
    enc = _CountingEnc()
    q, rows = build_train_pairs(items, enc, queries)
    assert sorted(enc.seen) == ["navy", "red"]
    assert rows.tolist() == [0, 1, 2, 1]
    reference = _CountingEnc().encode(["red", "red", "navy", "red"])
    np.testing.assert_array_equal(q, reference)


def test_learned_fusion_trains_on_at_most_max_pairs():
    rows = np.arange(N).repeat(3)  # 600 pairs
    pairs = (TEXT[rows] + 0.1 * RNG.standard_normal((len(rows), D)).astype(np.float32), rows)
    capped = {**PARAMS, "learned": {**PARAMS["learned"], "epochs": 1, "max_pairs": 100}}
    assert Fusion.build("learned", TEXT, IMAGE, capped, train_pairs=pairs).n_train_pairs == 100
    uncapped = {**PARAMS, "learned": {**PARAMS["learned"], "epochs": 1}}
    assert Fusion.build("learned", TEXT, IMAGE, uncapped, train_pairs=pairs).n_train_pairs == 600


def _train_queries(n: int) -> list[dict]:
    text = [{"qid": f"t{i}", "split": "train", "kind": "text", "text": f"query {i}", "relevance": {str(i): 3}}
            for i in range(n)]
    photo = [{"qid": f"p{i}", "split": "train", "kind": "image", "text": "", "relevance": {str(i): 3}} for i in range(20)]
    return text + photo


def test_ranker_never_trains_on_a_query_the_learned_fusion_fitted():
    from modules.search.fusion import fusion_pair_queries, held_out_of_fusion, ranker_queries
    from modules.settings import load_section

    queries = _train_queries(1000)
    learned = {"method": "learned", "learned": {"ranker_holdout": 0.3}}
    fitted = {q["qid"] for q in fusion_pair_queries(queries, load_section("fusion", learned).learned, seed=42)}
    ranked = {q["qid"] for q in ranker_queries(queries, learned, seed=42)}
    assert not fitted & ranked and fitted | ranked == {q["qid"] for q in queries}
    assert {f"p{i}" for i in range(20)} <= ranked                      # photo queries train no fusion pair
    assert 0.25 < sum(q.startswith("t") for q in ranked) / 1000 < 0.35   # the seeded holdout share
    # by qid, not by position: the same query is held out whatever else is in the list
    assert held_out_of_fusion("t7", 0.3, 42) == ("t7" in ranked)
    assert {q["qid"] for q in ranker_queries(queries[::-1][:500], learned, seed=42)} <= ranked
    assert {q["qid"] for q in ranker_queries(queries, learned, seed=7)} != ranked   # the seed matters
    # a fixed fusion learns nothing from queries: the re-ranker may use them all
    assert len(ranker_queries(queries, {"method": "concat"}, seed=42)) == len(queries)
    assert fusion_pair_queries(queries, load_section("fusion", {"learned": {"ranker_holdout": 0.0}}).learned, 42) \
        == [q for q in queries if q["text"]]
