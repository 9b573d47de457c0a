"""`pixelmatch benchmark --serving-dir DIR --data DATA`: the pushed bundle, loaded by the server's loader, measured on
the catalog's EVAL queries with the benchmark's evaluation code (the cached real tiny bundle, ~30 s)."""
from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from modules.bundle import read_latest
from modules.data.data_io import load_queries
from modules.evaluation.benchmark import SERVING_SECTION
from modules.evaluation.search_eval import METHODS
from pixelmatch_cli import app

runner = CliRunner()


def test_no_bundle_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "serving").mkdir()
    result = runner.invoke(app, ["benchmark", "--serving-dir", str(tmp_path / "serving"), "--data", str(tmp_path),
                                 "--out", str(tmp_path / "b.md")])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "no LATEST bundle" in lines[0], result.output
    assert not (tmp_path / "b.md").exists()
    result = runner.invoke(app, ["benchmark", "--serving-dir", str(tmp_path / "serving")])
    assert result.exit_code == 2 and "--serving-dir needs --data" in result.output, result.output
    (tmp_path / "serving" / "LATEST").write_text("v1\n")
    (tmp_path / "serving" / "v1").mkdir()
    (tmp_path / "serving" / "v1" / "manifest.json").write_text('{"files": {"search/x.npy": "00"}}')
    result = runner.invoke(app, ["benchmark", "--serving-dir", str(tmp_path / "serving"), "--data", str(tmp_path)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output   # refused, 1 line


def test_measures_the_pushed_bundle(real_bundle: Path, tmp_path: Path) -> None:
    serving_dir, data = real_bundle / "serving_dir", real_bundle / "data"
    md = tmp_path / "docs" / "bench.md"
    result = runner.invoke(app, ["benchmark", "--serving-dir", str(serving_dir), "--data", str(data),
                                 "--out", str(md)])
    assert result.exit_code == 0, result.output
    version = read_latest(serving_dir)
    entry = json.loads(md.with_suffix(".json").read_text())[SERVING_SECTION]
    results, extra = entry["results"], entry["extra"]
    assert extra["bundle"] == version and entry["command"].startswith("pixelmatch benchmark --serving-dir")
    assert set(results) <= set(METHODS) and {"bm25", "hybrid", "hybrid+ltr"} <= set(results)   # the bundle's ranker
    n_text = sum(1 for q in load_queries(data, split="eval") if q["kind"] == "text" and q["relevance"])
    assert results["hybrid"]["n_queries"] == n_text
    assert all(0.0 <= r["ndcg@10"] <= 1.0 for r in results.values())
    text = md.read_text()
    assert f"<!-- BEGIN {SERVING_SECTION} -->" in text and f"Bundle: `{version}`" in text
    assert (md.parent / f"benchmark_{SERVING_SECTION}.png").is_file()
