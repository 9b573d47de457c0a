"""The text queries' RRF list weights tuned on the catalog at index build (modules/search/rrf_tuning.py): the order
it scores is the served order, it moves toward the list that finds the relevant items, it stands aside when off or
short of queries, and the tuned weights travel with the saved engine."""
from __future__ import annotations

import dataclasses

import pytest
from test_search import FakeImageEncoder, FakeTextEncoder, build_engine

from modules.config import load_params
from modules.search import SearchEngine
from modules.search.rrf_tuning import fused_query, hybrid_top, mean_ndcg, tune_rrf_weights

TEXTS = [f"{brand} {adj} {cat}" for brand in ("Kinetix", "Basix", "Pacer")
         for adj in ("classic", "sporty", "casual", "vintage") for cat in ("sneaker", "boot", "dress")]


def _params(**tuning) -> dict:
    params = load_params()
    params["fusion"] = {**params["fusion"], "method": "concat"}  # every TRAIN query may tune (none fitted a fusion)
    params["retrieval"] = {**params["retrieval"], "rrf_tuning": {**params["retrieval"]["rrf_tuning"], **tuning}}
    return params


def _start(engine: SearchEngine, weights: dict, **tuning) -> None:
    s = engine.state
    s.retrieval = dataclasses.replace(s.retrieval, rrf_weights=weights,
                                      rrf_tuning=dataclasses.replace(s.retrieval.rrf_tuning, **tuning))


def _bm25_queries(engine: SearchEngine) -> list[dict]:
    """TRAIN queries whose relevant items are BM25's top 3: a catalog where the lexical list is the one to trust."""
    return [{"qid": f"q{i}", "split": "train", "kind": "text", "text": t,
             "relevance": {r.item_id: 1 for r in engine.search_text(t, top_k=3, retriever="bm25").results}}
            for i, t in enumerate(TEXTS)]


@pytest.fixture()
def engine() -> SearchEngine:
    return build_engine()


def test_scored_order_is_the_served_order(engine: SearchEngine) -> None:
    weights = dict(engine.state.retrieval.rrf_weights)
    for text in TEXTS[:12] + ["red sneaker under 50", "white desk lamp"]:
        q = fused_query(engine.state, text, {})
        assert hybrid_top(engine.state, q, weights) == [
            r.item_id for r in engine.search_text(text, top_k=10, rerank=False).results], text


def test_tuning_raises_the_list_that_finds_the_relevant_items(engine: SearchEngine) -> None:
    queries = _bm25_queries(engine)
    _start(engine, {"bm25": 0.25}, min_queries=30)
    report = tune_rrf_weights(engine.state, queries, _params(), seed=0)
    assert report["queries"] == len(TEXTS)
    assert report["start"]["bm25"] == 0.25 and report["weights"]["bm25"] > 0.25
    assert report["ndcg_at_10"]["tuned"] > report["ndcg_at_10"]["start"]
    assert engine.state.retrieval.rrf_weights == report["weights"]
    assert engine.state.params["retrieval"]["rrf_weights"] == report["weights"]
    fused = [fused_query(engine.state, q["text"], q["relevance"]) for q in queries]
    assert mean_ndcg(engine.state, fused, report["weights"]) == pytest.approx(report["ndcg_at_10"]["tuned"], abs=1e-4)


@pytest.mark.parametrize("tuning", [{"enabled": False}, {"min_queries": 1000}])
def test_tuning_stands_aside(engine: SearchEngine, tuning: dict) -> None:
    _start(engine, {"bm25": 0.25}, **tuning)
    report = tune_rrf_weights(engine.state, _bm25_queries(engine), _params(), seed=0)
    assert "skipped" in report
    assert engine.state.retrieval.rrf_weights == {"bm25": 0.25} and engine.state.rrf_tuning is None


def test_tuned_weights_travel_with_the_saved_engine(engine: SearchEngine, tmp_path) -> None:
    _start(engine, {"bm25": 0.25}, min_queries=30)
    tuned = tune_rrf_weights(engine.state, _bm25_queries(engine), _params(), seed=0)["weights"]
    engine.save(tmp_path / "engine")
    text_enc = FakeTextEncoder()

    def load(params: dict) -> SearchEngine:
        return SearchEngine.load(tmp_path / "engine", params=params, text_encoder=text_enc,
                                 image_encoder=FakeImageEncoder(text_enc))

    assert dict(load(load_params()).state.retrieval.rrf_weights) == tuned  # over the server's params.yaml weights
    off = load(_params(enabled=False))
    assert dict(off.state.retrieval.rrf_weights) == dict(load_params()["retrieval"]["rrf_weights"])
    engine.state.rrf_tuning = None
    engine.save(tmp_path / "engine")   # saved again untuned: no stale tuning file is left behind
    assert dict(load(load_params()).state.retrieval.rrf_weights) == dict(load_params()["retrieval"]["rrf_weights"])


def test_a_list_few_queries_have_keeps_its_weight(engine: SearchEngine) -> None:
    """Only colour queries have a ``color`` list: too few of them, and its weight is left as params.yaml has it."""
    queries = _bm25_queries(engine)
    queries += [{"qid": f"c{i}", "split": "train", "kind": "text", "text": f"{c} sneaker",
                 "relevance": {r.item_id: 1 for r in engine.search_text(f"{c} boot", top_k=3).results}}
                for i, c in enumerate(("red", "navy", "white"))]   # relevance the colour list cannot find
    _start(engine, {"bm25": 0.25, "color": 1.0}, min_queries=30)
    report = tune_rrf_weights(engine.state, queries, _params(), seed=0)
    assert "color" in report["start"] and "color" not in report["tuned_lists"]
    assert report["weights"]["color"] == 1.0 and "bm25" in report["tuned_lists"]


def test_reports_say_which_weights_serve() -> None:
    from modules.evaluation.benchmark import describe_rrf_tuning

    assert describe_rrf_tuning(None) == "RRF weights (text queries): params.yaml's"
    assert "skipped: 3 held-out" in describe_rrf_tuning({"skipped": "3 held-out TRAIN text queries"})
    line = describe_rrf_tuning({"queries": 42, "start": {"bm25": 1.0}, "weights": {"bm25": 2.0},
                                "ndcg_at_10": {"start": 0.745, "tuned": 0.7594}})
    assert "tuned on 42 held-out TRAIN text queries" in line and "0.7450 -> 0.7594" in line
