"""Evaluation harness: eval-only queries, leakage guard, blessing rules, section-safe benchmark writing."""
from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image

from modules.evaluation import benchmark as BM
from modules.evaluation import blessing as B
from modules.evaluation import report as R
from modules.evaluation import search_eval as E

PARAMS = {"evaluation": {"k": 10, "bless_margin_over_bm25": 0.05, "regression_tolerance": 0.02}}


@dataclass
class _Result:
    item_id: str
    score: float


class _FakeEngine:
    """Answers from a fixed table: `good` retrievers rank the relevant item first, `bm25` ranks it third."""

    def __init__(self, ranker: Any = None, fusion: str = "learned") -> None:
        self.ranker = ranker
        self.fusion = SimpleNamespace(method=fusion)
        self.calls: list[tuple[str, str]] = []

    def _answer(self, target: str, position: int, k: int) -> SimpleNamespace:
        ids = [f"other{j}" for j in range(k)]
        ids.insert(position, target)
        return SimpleNamespace(results=[_Result(i, 1.0) for i in ids[:k]])  # equal scores: engine order must win

    def search_text(self, text: str, top_k: int = 10, retriever: str = "hybrid", rerank: bool = False) -> Any:
        self.calls.append(("text", text))
        return self._answer(text, 2 if retriever == "bm25" else 0, top_k)

    def search_image(self, img: Image.Image, top_k: int = 10, rerank: bool = False) -> Any:
        self.calls.append(("image", "img"))
        return self._answer("photo_item", 1, top_k)

    def search_multimodal(self, text: str, img: Image.Image, top_k: int = 10, rerank: bool = False) -> Any:
        self.calls.append(("composed", text))
        return self._answer(text, 0, top_k)


def _queries(tmp_path) -> list[dict]:
    (tmp_path / "images" / "queries").mkdir(parents=True)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(tmp_path / "images" / "queries" / "q.png")
    qs = [
        {"qid": f"t{i}", "kind": "text", "text": f"item{i}", "image_path": "", "relevance": {f"item{i}": 3},
         "split": "eval", "cold": i % 4 == 0, "source": "judged"}
        for i in range(12)
    ]
    qs.append({"qid": "p0", "kind": "image", "text": "", "image_path": "images/queries/q.png",
               "relevance": {"photo_item": 2}, "split": "eval", "cold": False, "source": "judged"})
    qs.append({"qid": "c0", "kind": "composed", "text": "itemc", "image_path": "images/queries/q.png",
               "relevance": {"itemc": 1}, "split": "eval", "cold": False, "source": "judged"})
    return qs


def test_evaluate_engine_routes_kinds_and_scores(tmp_path) -> None:
    engine = _FakeEngine()
    res = E.evaluate_engine(engine, _queries(tmp_path), k=10, data_dir=tmp_path)
    assert "hybrid+ltr" not in res and "late" not in res  # no ranker attached; the engine's fusion is `learned`
    assert res["hybrid"]["ndcg@10"] == pytest.approx(1.0)
    assert res["bm25"]["ndcg@10"] == pytest.approx(0.5)  # relevant at rank 3: 1/log2(4)
    assert res["bm25"]["mrr"] == pytest.approx(1 / 3)
    assert res["hybrid"]["n_queries"] == 12 and res["hybrid"]["n_cold"] == 3
    assert res["hybrid"]["cold_recall@10"] == pytest.approx(1.0)
    assert res["photo"]["n_queries"] == 1 and res["photo"]["mrr"] == pytest.approx(0.5)
    assert res["composed"]["ndcg@10"] == pytest.approx(1.0)
    assert set(res["hybrid"]["latency_ms"]) == {"p50", "p95", "p99", "mean"}
    assert res["hybrid"]["latency_ms"]["p95"] >= 0
    assert "ndcg@10_ci_low" not in res["hybrid"]  # intervals only when asked for


def test_evaluate_engine_bootstrap_intervals(tmp_path) -> None:
    ci = {"n_boot": 200, "level": 0.95, "seed": 3}
    res = E.evaluate_engine(_FakeEngine(), _queries(tmp_path), k=10, data_dir=tmp_path, ci=ci)
    bm25 = res["bm25"]
    assert bm25["ndcg@10_ci_low"] <= bm25["ndcg@10"] <= bm25["ndcg@10_ci_high"]
    assert bm25["recall@10_ci_low"] <= bm25["recall@10"] <= bm25["recall@10_ci_high"] and bm25["ci_level"] == 0.95
    assert res["hybrid"]["ndcg@10_ci_low"] == pytest.approx(1.0)  # every query perfect: a zero-width interval


def test_evaluate_engine_uses_ranker_and_rejects_leaks(tmp_path) -> None:
    queries = _queries(tmp_path)
    ranker = SimpleNamespace(trained_qids=frozenset({"train_only"}))
    res = E.evaluate_engine(_FakeEngine(ranker=ranker), queries, methods=("hybrid", "hybrid+ltr"), data_dir=tmp_path)
    assert set(res) == {"hybrid", "hybrid+ltr"}

    leaky = SimpleNamespace(trained_qids=frozenset({"t3"}))
    with pytest.raises(ValueError, match="trained on 1 evaluation qid"):
        E.evaluate_engine(_FakeEngine(ranker=leaky), queries, data_dir=tmp_path)
    with pytest.raises(ValueError, match="eval-split queries only"):
        E.evaluate_engine(_FakeEngine(), [{**queries[0], "split": "train"}], data_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown method"):
        E.evaluate_engine(_FakeEngine(), queries, methods=("bogus",), data_dir=tmp_path)


def _res(**ndcg: float) -> dict:
    return {k: {"ndcg@10": v} for k, v in ndcg.items()}


def test_bless_cases() -> None:
    ok, why = B.bless(_res(bm25=0.40, hybrid=0.50), None, PARAMS)
    assert ok and any("no blessed baseline" in r for r in why)
    ok, why = B.bless(_res(bm25=0.40, hybrid=0.44), None, PARAMS)
    assert not ok and "does not beat BM25" in why[0]
    # The served method (hybrid + LambdaMART) is what is judged when present.
    ok, _ = B.bless(_res(bm25=0.40, hybrid=0.41, **{"hybrid+ltr": 0.47}), None, PARAMS)
    assert ok
    ok, why = B.bless(_res(bm25=0.40, hybrid=0.50), _res(bm25=0.4, hybrid=0.53), PARAMS)
    assert not ok and "regression" in why[-1]
    ok, why = B.bless(_res(bm25=0.40, hybrid=0.50), _res(bm25=0.4, hybrid=0.515), PARAMS)
    assert ok and "no regression" in why[-1]
    assert B.bless(_res(hybrid=0.9), None, PARAMS)[0] is False
    assert B.bless(_res(bm25=0.1), None, PARAMS)[0] is False


def _fake_results() -> dict:
    lat = {"p50": 1.0, "p95": 2.5, "p99": 3.0, "mean": 1.2}
    row = {"ndcg@10": 0.5, "mrr": 0.4, "recall@10": 0.6, "precision@10": 0.1, "map@10": 0.3,
           "cold_recall@10": None, "n_queries": 5, "n_cold": 0, "latency_ms": lat}
    return {"bm25": {**row, "label": "BM25"}, "hybrid": {**row, "ndcg@10": 0.7, "label": "Hybrid"}}


def test_write_benchmark_replaces_only_its_section(tmp_path) -> None:
    md = tmp_path / "bench.md"
    md.write_text(
        "# Results\n\nintro kept\n\n<!-- BEGIN recommend -->\nREC TABLE v1\n<!-- END recommend -->\n\n"
        "<!-- BEGIN search -->\nold search\n<!-- END search -->\n\ntrailer kept\n"
    )
    (tmp_path / "bench.json").write_text(json.dumps({"recommend": {"x": 1}}))
    paths = R.write_benchmark(_fake_results(), md, section="search", command="pixelmatch benchmark --scale tiny",
                              machine="test box")
    text = md.read_text()
    assert "REC TABLE v1" in text and "intro kept" in text and "trailer kept" in text
    assert "old search" not in text
    assert "| Hybrid | 0.7000 | 0.4000 | 0.6000 | n/a | n/a | 2.5 |" in text
    assert "`pixelmatch benchmark --scale tiny`" in text and "test box" in text
    assert text.count("<!-- BEGIN search -->") == 1
    data = json.loads(paths["json"].read_text())
    assert data["recommend"] == {"x": 1} and data["search"]["results"]["hybrid"]["ndcg@10"] == 0.7
    assert paths["png"].is_file() and paths["png"].stat().st_size > 1000

    # A second write updates in place; a new section is appended without touching the rest.
    R.write_benchmark(_fake_results(), md, section="search", command="cmd2", machine="m")
    R.write_benchmark(_fake_results(), md, section="extra", command="cmd3", machine="m")
    text = md.read_text()
    assert text.count("<!-- BEGIN search -->") == 1 and "cmd2" in text and "REC TABLE v1" in text
    assert text.index("<!-- END search -->") < text.index("<!-- BEGIN extra -->")

    with pytest.raises(ValueError, match="command"):
        R.write_benchmark(_fake_results(), md, command="")
    with pytest.raises(ValueError, match="section name"):
        R.write_benchmark(_fake_results(), md, section="bad name -->", command="c")


def test_machine_info_names_cores() -> None:
    assert "cores" in R.machine_info()


def test_run_benchmark_cli_rejects_unknown_scale(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown scale"):
        BM.run_benchmark_cli("huge", data_dir=str(tmp_path / "d"), out_md=str(tmp_path / "b.md"))
    assert not (tmp_path / "d").exists()


@pytest.mark.slow
def test_run_benchmark_cli_tiny_end_to_end(tmp_path) -> None:
    """The whole `pixelmatch benchmark --scale tiny` path (several minutes on 2 cores: real SBERT + tower)."""
    out = BM.run_benchmark_cli("tiny", data_dir=str(tmp_path / "data"), out_md=str(tmp_path / "docs" / "bench.md"))
    res = out["results"]
    assert {"bm25", "tfidf", "text", "hybrid", "hybrid+ltr", "photo", "composed"} <= set(res)
    assert res["hybrid"]["ndcg@10"] > res["bm25"]["ndcg@10"]
    text = (tmp_path / "docs" / "bench.md").read_text()
    assert "<!-- BEGIN search-tiny -->" in text and "pixelmatch benchmark --scale tiny" in text
    assert out["ranker"]["n_train_queries"] > 0


def test_cold_and_warm_ndcg_are_scored_apart() -> None:
    queries = [{"qid": "c1", "relevance": {"new1": 1}, "cold": True},
               {"qid": "w1", "relevance": {"old1": 1}, "cold": False},
               {"qid": "w2", "relevance": {"old2": 1}}]
    run = {"c1": [("x", 2.0), ("new1", 1.0)], "w1": [("old1", 1.0)], "w2": [("old2", 1.0)]}
    out = E._method_metrics(run, queries, [1.0, 1.0, 1.0], k=10)
    assert out["n_cold"] == 1
    assert out["warm_ndcg@10"] == pytest.approx(1.0)
    assert 0.5 < out["cold_ndcg@10"] < 0.7           # the new item found second: 1 / log2(3)
    row = R._cold_warm(out, 10)
    assert row.startswith(f"{out['cold_ndcg@10']:.4f} / 1.0000 (0.63")
    assert R._cold_warm({"cold_ndcg@10": None, "warm_ndcg@10": 0.5}, 10) == "n/a"
