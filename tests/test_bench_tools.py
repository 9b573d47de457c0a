"""The bundle benchmarks (bench.hnsw_bundle, bench.search_stages) on the cached real tiny bundle, and their shared
refusals when pointed at the wrong directory."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench._common import add_data_source, data_dir_from, eval_text_queries, latest_bundle_or_exit


@pytest.fixture(scope="module")
def real(real_bundle: Path) -> Path:
    return real_bundle


def _table(out: str) -> dict[str, list[str]]:
    """Rows of the markdown table a benchmark prints, keyed by their first cell (header and rule skipped)."""
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("| ")]
    return {r[0]: r[1:] for r in rows[1:]}


def test_refusals_exit_2_with_a_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        latest_bundle_or_exit(tmp_path)
    assert e.value.code == 2 and "no LATEST bundle" in capsys.readouterr().err
    (tmp_path / "LATEST").write_text("v-missing\n")
    with pytest.raises(SystemExit) as e:
        latest_bundle_or_exit(tmp_path)
    assert e.value.code == 2 and "without a manifest.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        eval_text_queries(tmp_path)
    assert e.value.code == 2 and "no EVAL text queries" in capsys.readouterr().err


def test_a_benchmark_reads_data_or_generates_a_scale_but_not_both(tmp_path: Path) -> None:
    import argparse

    from modules.config import load_params

    ap = argparse.ArgumentParser()
    add_data_source(ap)
    with pytest.raises(SystemExit):
        ap.parse_args(["--data", "d", "--scale", "tiny"])
    assert data_dir_from(ap.parse_args(["--data", "some/dir"]), tmp_path, {}, 0) == "some/dir"
    made = data_dir_from(ap.parse_args(["--scale", "tiny"]), tmp_path, load_params(), 42)
    assert made == str(tmp_path / "data") and (tmp_path / "data" / "items.csv").is_file()


def test_eval_text_queries_are_eval_text_only(real: Path) -> None:
    from modules.data.data_io import load_queries

    texts = eval_text_queries(real / "data")
    every = load_queries(real / "data")
    assert texts == [q["text"] for q in every if q["split"] == "eval" and q["kind"] == "text" and q["text"]]
    assert any(q["split"] == "train" for q in every)      # so the filter is doing something
    assert eval_text_queries(real / "data", limit=2) == texts[:2]


def test_hnsw_bundle_recall_against_exact(real: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bench.hnsw_bundle import main

    assert main(["--serving-dir", str(real / "serving_dir"), "--data", str(real / "data"), "--queries", "8",
                 "--ef", "16,128"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"120 text vectors \(dim 384\), \d+ EVAL text queries", out), out
    table = _table(out)
    assert set(table) == {"16", "128"}
    recall = {ef: float(cells[0]) for ef, cells in table.items()}
    assert all(0.0 <= r <= 1.0 for r in recall.values())
    assert recall["128"] >= 0.95, recall   # efSearch 128 over 120 vectors visits nearly all of them
    assert all(float(cells[1]) > 0 for cells in table.values())   # median µs measured


def test_search_stages_split_the_call(real: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bench.search_stages import main

    assert main(["--serving-dir", str(real / "serving_dir"), "--data", str(real / "data"), "--queries", "6",
                 "--warmup", "2", "--eval-queries"]) == 0
    out = capsys.readouterr().out
    assert "6 EVAL text queries" in out and "with the LambdaMART re-ranker" in out, out
    table = _table(out)
    assert {"total", "MiniLM query encoding", "BM25 (whole catalog)", "LambdaMART re-rank"} <= set(table), table
    total = float(table["total"][0])
    assert total > 0 and all(float(cells[0]) <= total + 1e-6 for cells in table.values())


def test_encoder_ndcg_of_the_bundles_own_runtime_is_unchanged(real: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """bench.encoder_ndcg with the bundle's own ONNX runtime as the 'other' encoder: same lists, same NDCG."""
    import json

    from bench.encoder_ndcg import main

    _, vdir = latest_bundle_or_exit(real / "serving_dir")
    assert main(["--serving-dir", str(real / "serving_dir"), "--data", str(real / "data"),
                 "--runtime", str(vdir / "model" / "text_runtime"), "--limit", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["queries"] == 5 and out["top10_lists_changed"] == 0 and out["difference"] == 0.0
    assert 0.0 <= out["ndcg@10_bundle"] <= 1.0
