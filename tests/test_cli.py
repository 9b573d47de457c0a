"""The `pixelmatch` CLI only dispatches; these check the dispatch and its error handling."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pixelmatch_cli import app

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("generate", "ingest", "encode", "run", "serve", "benchmark"):
        assert command in result.output


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "pixelmatch"
    assert exe.is_file(), "setup.py's console script `pixelmatch` is not installed in the venv"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0 and "generate" in out.stdout


def test_generate_rejects_unknown_scale(tmp_path: Path) -> None:
    result = runner.invoke(app, ["generate", "--scale", "gigantic", "--out", str(tmp_path / "d")])
    assert result.exit_code == 2
    assert "gigantic" in result.output


def test_generate_tiny_writes_the_data_dir(tmp_path: Path) -> None:
    out = tmp_path / "data"
    result = runner.invoke(app, ["generate", "--scale", "tiny", "--out", str(out), "--looks", "3"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"] == "generated" and manifest["scale"] == "tiny"
    for name in ("items.csv", "interactions.csv", "queries.jsonl"):
        assert (out / name).is_file()
    assert len((out / "looks.jsonl").read_text().splitlines()) == 3 and "looks=3" in result.output


def test_encode_text_prints_one_json_line_per_input() -> None:
    result = runner.invoke(app, ["encode", "--text", "minimalist white sneakers", "--text", "red dress"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert len(lines) == 2
    assert all(row["dim"] == 384 == len(row["vector"]) for row in lines)


def test_encode_reports_a_broken_image_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "not_an_image.jpg"
    bad.write_text("hello")
    result = runner.invoke(app, ["encode", "--image", str(bad)])
    assert result.exit_code == 2
    assert "error:" in result.output


def test_encode_needs_an_input() -> None:
    result = runner.invoke(app, ["encode"])
    assert result.exit_code == 2


@pytest.mark.parametrize("bad_map", ["item_id", "=id", "item_id="])
def test_ingest_rejects_malformed_map(tmp_path: Path, bad_map: str) -> None:
    csv = tmp_path / "c.csv"
    csv.write_text("id,title\n1,a\n")
    result = runner.invoke(app, ["ingest", str(csv), "--out", str(tmp_path / "o"), "--map", bad_map])
    assert result.exit_code == 2
    assert "TARGET=SOURCE" in result.output


def test_serve_without_a_bundle_says_what_to_do(tmp_path: Path) -> None:
    result = runner.invoke(app, ["serve", "--serving-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "pixelmatch run" in result.output


@pytest.mark.parametrize("params_text, message", [
    ("retrieval:\n  hnsw:\n    ef_serch: 64\n", "retrieval.hnsw.ef_serch: unknown key"),
    ("serving:\n  top_k_max: many\n", "serving.top_k_max: expected int, got str"),
])
def test_run_refuses_a_bad_params_file_before_anything_runs(tmp_path: Path, params_text: str, message: str) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(params_text)
    root = tmp_path / "root"
    result = runner.invoke(app, ["run", "--data", str(tmp_path / "data"), "--serving-dir", str(tmp_path / "serving"),
                                 "--pipeline-root", str(root), "--params", str(params)])
    assert result.exit_code == 2, result.output
    assert message in result.output and str(params) in result.output
    assert not root.exists()          # refused before the lock, the pre-flight check or the TFX run


def test_run_refuses_a_missing_params_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = runner.invoke(app, ["run", "--data", str(tmp_path), "--params", str(missing)])
    assert result.exit_code == 2 and "params file not found" in result.output
