"""LambdaMART ranker: learns an informative feature, never trains on eval queries, fails clearly."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modules.evaluation import metrics
from modules.search.rerank import LambdaMARTRanker, MissingFeatureError
from modules.search.rerank_train import build_training_frame, split_queries, train_ranker

FEATURES = ["signal", "noise_a", "noise_b"]
PARAMS = {
    "ranking": {
        "num_leaves": 7,
        "learning_rate": 0.1,
        "n_estimators": 60,
        "early_stopping_rounds": 10,
        "min_data_in_leaf": 5,
        "eval_at": [10],
        "valid_fraction": 0.25,
        "n_jobs": 1,
    }
}


def _synthetic(n_queries: int, seed: int, per_query: int = 20) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Graded labels driven by `signal` (plus noise); the noise columns carry nothing."""
    rng = np.random.default_rng(seed)
    rows, labels, qids = [], [], []
    for q in range(n_queries):
        signal = rng.normal(size=per_query)
        grade = np.digitize(signal + rng.normal(scale=0.3, size=per_query), [0.5, 1.0, 1.5])
        for s, g in zip(signal, grade, strict=True):
            rows.append({"signal": s, "noise_a": rng.normal(), "noise_b": rng.random()})
            labels.append(int(g))
            qids.append(f"s{seed}_q{q}")
    return pd.DataFrame(rows), np.array(labels), np.full(n_queries, per_query), np.array(qids)


def _mean_ndcg(scores: np.ndarray, y: np.ndarray, qids: np.ndarray) -> float:
    run: dict[str, list[tuple[str, float]]] = {}
    qrels: dict[str, dict[str, int]] = {}
    for i, (q, s, g) in enumerate(zip(qids, scores, y, strict=True)):
        run.setdefault(q, []).append((str(i), float(s)))
        qrels.setdefault(q, {})[str(i)] = int(g)
    return metrics.evaluate_run(run, qrels, k=10)["ndcg@10"]


def test_ranker_learns_informative_feature_and_round_trips(tmp_path) -> None:
    X, y, groups, qids = _synthetic(80, seed=1)
    ranker = train_ranker(X, y, groups, PARAMS, seed=42, qids=qids)
    Xt, yt, _, qt = _synthetic(40, seed=2)
    learned = _mean_ndcg(ranker.rerank(None, Xt), yt, qt)
    random_scores = np.random.default_rng(0).random(len(yt))
    baseline = _mean_ndcg(random_scores, yt, qt)
    assert learned > baseline + 0.2, (learned, baseline)
    assert next(iter(ranker.feature_importance())) == "signal"
    assert "best_iteration" in ranker.info and ranker.info["n_valid_queries"] == 20

    ranker.save(tmp_path / "ranker")
    assert (tmp_path / "ranker" / "model.txt").is_file()
    loaded = LambdaMARTRanker.load(tmp_path / "ranker")
    np.testing.assert_allclose(loaded.rerank(None, Xt), ranker.rerank(None, Xt))
    assert loaded.trained_qids == ranker.trained_qids
    # Column order in the candidate frame does not matter; the ranker selects its own features.
    np.testing.assert_allclose(loaded.rerank(None, Xt[FEATURES[::-1]]), ranker.rerank(None, Xt))


def test_ranker_is_gated_per_query_kind_on_validation_ndcg() -> None:
    """`validation_by_kind` scores the hybrid order (`pre_rerank`) and the ranker's order per query kind; the
    ranker applies only to kinds where it did at least as well (plus `min_validation_gain`)."""
    from modules.search.rerank_train import validation_by_kind

    X, y, groups, qids = _synthetic(40, seed=7)
    image_q = np.isin(qids, [f"s7_q{q}" for q in range(20, 40)])
    X["pre_rerank"] = y.astype(float) * np.where(image_q, 1.0, -1.0)  # hybrid order: right for image, reversed for text
    X["has_text"], X["has_image"] = (~image_q).astype(float), image_q.astype(float)
    by_kind = validation_by_kind(X, y, qids, pred=y.astype(float) * np.where(image_q, -1.0, 1.0))
    assert {k: v["n_queries"] for k, v in by_kind.items()} == {"text": 20, "image": 20}
    assert by_kind["text"]["ranker_ndcg"] == pytest.approx(1.0) and by_kind["text"]["pre_rerank_ndcg"] < 0.9
    assert by_kind["image"]["pre_rerank_ndcg"] == pytest.approx(1.0) and by_kind["image"]["ranker_ndcg"] < 0.9
    assert validation_by_kind(X.drop(columns="has_image"), y, qids, pred=y.astype(float)) == {}

    X, y, groups, qids = _synthetic(120, seed=3)
    rng = np.random.default_rng(3)
    X["pre_rerank"], X["has_text"], X["has_image"] = rng.random(len(y)), 1.0, 0.0  # text only, hybrid order noise
    ranker = train_ranker(X, y, groups, PARAMS, seed=3, qids=qids)
    v = ranker.info["validation_by_kind"]["text"]
    assert v["ranker_ndcg"] > v["pre_rerank_ndcg"] and ranker.info["rerank_kinds"] == ["text"]
    assert ranker.applies_to("text") and not ranker.applies_to("image") and not ranker.applies_to("composed")
    strict = train_ranker(X, y, groups, {"ranking": {**PARAMS["ranking"], "min_validation_gain": 1.0}}, seed=3,
                          qids=qids)
    assert strict.info["rerank_kinds"] == [] and not strict.applies_to("text")
    plain = train_ranker(*_synthetic(40, seed=1)[:3], PARAMS, seed=3)  # no pre_rerank/kind features: no gate
    assert "rerank_kinds" not in plain.info and plain.applies_to("image")
    gated = LambdaMARTRanker(ranker.booster, ranker.features, info={"rerank_kinds": ["image"]})
    assert gated.applies_to("image") and not gated.applies_to("text")


def test_training_is_deterministic_for_a_seed() -> None:
    X, y, groups, qids = _synthetic(40, seed=3)
    a = train_ranker(X, y, groups, PARAMS, seed=7, qids=qids).rerank(None, X)
    b = train_ranker(X, y, groups, PARAMS, seed=7, qids=qids).rerank(None, X)
    np.testing.assert_array_equal(a, b)


def test_missing_or_bad_features_raise_clear_errors() -> None:
    X, y, groups, qids = _synthetic(30, seed=4)
    ranker = train_ranker(X, y, groups, PARAMS, seed=42, qids=qids)
    with pytest.raises(MissingFeatureError, match="noise_b"):
        ranker.rerank(None, X.drop(columns=["noise_b"]))
    bad = X.copy()
    bad["signal"] = "high"
    with pytest.raises(ValueError, match="numeric"):
        ranker.rerank(None, bad)
    assert ranker.rerank(None, X.iloc[:0]).shape == (0,)
    with pytest.raises(ValueError, match="inconsistent"):
        train_ranker(X, y[:-1], groups, PARAMS, seed=42)


class _FakeEngine:
    """Stands in for SearchEngine.candidate_features: candidates with a feature tied to the judgement."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.calls: list[str] = []

    def candidate_features(self, query: Mapping[str, Any], top_k: int, data_dir: str | None = None) -> pd.DataFrame:
        self.calls.append(query["qid"])
        items = [f"i{j}" for j in range(top_k)]
        rel = query["relevance"]
        return pd.DataFrame(
            {
                "item_id": items,
                "signal": [rel.get(i, 0) + self.rng.normal(scale=0.5) for i in items],
                "noise_a": self.rng.normal(size=top_k),
                "noise_b": self.rng.random(top_k),
            }
        )


def _queries(n: int) -> list[dict]:
    rng = np.random.default_rng(5)
    out = []
    for q in range(n):
        rel = {f"i{j}": int(rng.integers(1, 4)) for j in rng.choice(15, size=3, replace=False)}
        out.append({"qid": f"q{q}", "kind": "text", "text": "x", "relevance": rel, "split": "train" if q % 2 else "eval"})
    out.append({"qid": "no_hit", "kind": "text", "text": "x", "relevance": {"zz": 2}, "split": "train"})
    return out


def test_no_qid_overlap_between_ranker_training_and_eval() -> None:
    queries = _queries(40)
    train, evaluation = split_queries(queries)
    eval_qids = {q["qid"] for q in evaluation}
    assert eval_qids and not eval_qids & {q["qid"] for q in train}

    engine = _FakeEngine()
    X, y, groups, qids = build_training_frame(engine, train, candidates_k=15, features=FEATURES)
    assert set(engine.calls) == {q["qid"] for q in train}  # the engine was never asked about an eval query
    assert not set(qids.tolist()) & eval_qids
    assert "no_hit" not in set(qids.tolist())  # no relevant candidate -> no ranking signal -> skipped
    assert list(X.columns) == FEATURES and len(X) == len(y) == groups.sum()

    ranker = train_ranker(X, y, groups, PARAMS, seed=42, qids=qids)
    assert ranker.trained_qids and not ranker.trained_qids & eval_qids

    with pytest.raises(ValueError, match="not a train query"):
        build_training_frame(engine, evaluation[:1], candidates_k=15, features=FEATURES)


def test_split_queries_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="split"):
        split_queries([{"qid": "a", "split": "test"}])
    with pytest.raises(ValueError, match="duplicate"):
        split_queries([{"qid": "a", "split": "train"}, {"qid": "a", "split": "eval"}])
    with pytest.raises(ValueError, match="qid"):
        split_queries([{"split": "train"}])


def test_missing_feature_in_training_candidates() -> None:
    train, _ = split_queries(_queries(10))
    with pytest.raises(MissingFeatureError, match="popularity"):
        build_training_frame(_FakeEngine(), train, candidates_k=15, features=[*FEATURES, "popularity"])


# ----------------------------------------------------------------------------------------------
# The real SearchEngine on a generated tiny catalog (hash encoders keep it fast, no model needed)
# ----------------------------------------------------------------------------------------------
class _HashTextEncoder:
    name, dim = "hash", 32

    def encode(self, texts, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        import zlib

        from modules.search.lexical import tokenize

        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            for tok in tokenize(t):
                out[i] += np.random.default_rng(zlib.crc32(tok.encode())).standard_normal(self.dim)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


class _MeanColourImageEncoder:
    name, dim = "mean-colour", 32

    def encode_images(self, images) -> np.ndarray:
        rows = []
        for im in images:
            rgb = np.asarray(im.convert("RGB").resize((8, 8)), np.float32).reshape(-1, 3).mean(axis=0) / 255.0
            v = np.resize(np.concatenate([rgb, 1.0 - rgb]), self.dim)
            rows.append(v / np.linalg.norm(v))
        return np.asarray(rows, np.float32)


@pytest.fixture(scope="module")
def tiny_engine_and_queries(tmp_path_factory):
    from modules.config import load_params
    from modules.data.catalog.generate import generate_catalog
    from modules.data.data_io import item_text, load_items, load_queries
    from modules.data.images import load_image
    from modules.search import SearchEngine

    root = tmp_path_factory.mktemp("tiny") / "data"
    params = load_params()
    generate_catalog("tiny", root, seed=42, params=params, progress=False)
    items = load_items(root)
    text_enc, img_enc = _HashTextEncoder(), _MeanColourImageEncoder()
    images = [load_image(root / p) for p in items["image_path"]]
    engine = SearchEngine.build(items, text_enc.encode(item_text(items)), img_enc.encode_images(images), None,
                                text_enc, img_enc, params)
    return engine, load_queries(root), root, params


def test_real_engine_ranker_never_sees_eval_queries(tiny_engine_and_queries) -> None:
    from modules.evaluation import search_eval as evaluation
    from modules.search import RANK_FEATURES

    engine, queries, root, params = tiny_engine_and_queries
    train, evaluation_queries = split_queries(queries)
    eval_qids = {q["qid"] for q in evaluation_queries}
    assert train and evaluation_queries and not eval_qids & {q["qid"] for q in train}

    train_text = [q for q in train if q["kind"] == "text"][:120]
    X, y, groups, qids = build_training_frame(engine, train_text, data_dir=str(root))
    assert list(X.columns) == RANK_FEATURES and y.max() >= 1
    assert set(qids.tolist()) <= {q["qid"] for q in train_text}
    assert not set(qids.tolist()) & eval_qids

    ranker = train_ranker(X, y, groups, PARAMS, seed=42, qids=qids)
    engine.ranker = ranker
    try:
        sample = [q for q in evaluation_queries if q["kind"] == "text"][:60]
        res = evaluation.evaluate_engine(engine, sample, methods=("bm25", "hybrid", "hybrid+ltr"), data_dir=root)
        assert set(res) == {"bm25", "hybrid", "hybrid+ltr"}
        assert res["hybrid+ltr"]["n_queries"] == len(sample)
        # A ranker that has seen an eval query is refused.
        engine.ranker = train_ranker(X, y, groups, PARAMS, seed=42, qids=np.where(qids == qids[0], sample[0]["qid"], qids))
        with pytest.raises(ValueError, match="evaluation qid"):
            evaluation.evaluate_engine(engine, sample, methods=("hybrid+ltr",), data_dir=root)
    finally:
        engine.ranker = None


def test_ranker_serves_only_intents_it_saw_within_a_training_query() -> None:
    """A catalog whose titles never name a colour trains text queries whose `color_match` never varies: the ranker
    records that, and a text query asking for a colour keeps the hybrid order (image queries, where the photo's
    colour was an intent in training, still re-rank)."""
    from modules.search.rerank_train import intent_features_seen, intent_queries

    X, y, groups, qids = _synthetic(60, seed=5)
    image_q = np.isin(qids, [f"s5_q{q}" for q in range(40, 60)])
    X["has_text"], X["has_image"] = (~image_q).astype(float), image_q.astype(float)
    rng = np.random.default_rng(5)
    X["color_match"] = np.where(image_q, rng.integers(0, 2, len(y)), 0).astype(float)  # varies in image queries only
    X["category_match"] = rng.integers(0, 2, len(y)).astype(float)
    X["price_in_range"] = 1.0  # no price asked in any query: constant
    X.loc[qids == "s5_q0", "color_match"] = np.arange(20) % 2  # one text query's words read as a colour
    counts = intent_queries(X, qids)
    assert counts["text"] == {"category_match": 40, "color_match": 1, "price_in_range": 0}
    assert counts["image"]["color_match"] == 20
    seen = intent_features_seen(counts, min_queries=10)
    assert seen == {"image": ["category_match", "color_match"], "text": ["category_match"]}
    assert intent_features_seen(counts, min_queries=1)["text"] == ["category_match", "color_match"]
    assert intent_queries(X.drop(columns="has_image"), qids) == {}

    ranker = train_ranker(X, y, groups, {"ranking": {**PARAMS["ranking"], "min_intent_queries": 10}}, seed=5,
                          qids=qids)
    assert ranker.info["intent_features_seen"] == seen   # counted on its training (not validation) queries
    assert ranker.info["intent_queries"]["text"]["color_match"] <= 1
    assert ranker.knows_intents("text", {"category": "tshirts", "color": None})
    assert not ranker.knows_intents("text", {"category": "tshirts", "color": "red"})
    assert not ranker.knows_intents("text", {"price_max": 50.0})
    assert ranker.knows_intents("image", {"color": "red"})
    assert LambdaMARTRanker(ranker.booster, ranker.features).knows_intents("text", {"color": "red"})  # no record
