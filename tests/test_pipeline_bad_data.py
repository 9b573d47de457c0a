"""Bad input data stops the pipeline with a clear message (file, column, problem), pushes nothing and
leaves the serving directory untouched. Each rule is checked by the fast pre-flight; the TFX run itself
(ExampleValidator + DataCheck gate, no pre-flight) is shown to enforce the same rules too.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from components.data_check.rules import DataCheckError, check_data_dir
from pipelines.local_runner import EXIT_BAD_DATA, run_pipeline


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from modules.data.catalog.generate import generate_catalog

    out = tmp_path_factory.mktemp("tiny") / "data"
    generate_catalog("tiny", out, seed=42)
    return out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("images"))
    os.symlink(src / "images", dst / "images")
    return dst


def _items(d: Path) -> pd.DataFrame:
    return pd.read_csv(d / "items.csv", dtype=str, keep_default_na=False)


def _missing_column(d: Path) -> None:
    _items(d).drop(columns=["price"]).to_csv(d / "items.csv", index=False)


def _non_numeric_price(d: Path) -> None:
    df = _items(d)
    df.loc[3, "price"] = "cheap"
    df.to_csv(d / "items.csv", index=False)


def _negative_price(d: Path) -> None:
    df = _items(d)
    df.loc[5, "price"] = "-12.5"
    df.to_csv(d / "items.csv", index=False)


def _duplicate_ids(d: Path) -> None:
    df = _items(d)
    df.loc[7, "item_id"] = df.loc[8, "item_id"]
    df.to_csv(d / "items.csv", index=False)


def _empty_title(d: Path) -> None:
    df = _items(d)
    df.loc[2, "title"] = ""
    df.to_csv(d / "items.csv", index=False)


def _unknown_item(d: Path) -> None:
    inter = pd.read_csv(d / "interactions.csv", dtype=str, keep_default_na=False)
    inter.loc[0, "item_id"] = "sku_does_not_exist"
    inter.to_csv(d / "interactions.csv", index=False)


CASES = {
    "missing_column": (_missing_column, "items.csv", "price", "required column is missing"),
    "non_numeric_price": (_non_numeric_price, "items.csv", "price", "non-numeric"),
    "negative_price": (_negative_price, "items.csv", "price", "negative"),
    "duplicate_ids": (_duplicate_ids, "items.csv", "item_id", "duplicate item ids"),
    "empty_title": (_empty_title, "items.csv", "title", "empty value"),
    "unknown_items": (_unknown_item, "interactions.csv", "item_id", "unknown items"),
}


def test_clean_tiny_catalog_passes(tiny_data: Path) -> None:
    assert check_data_dir(tiny_data)["n_items"] == 300


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_data_stops_before_anything_runs(case: str, tiny_data: Path, tmp_path: Path, capsys) -> None:
    mutate, file, column, problem = CASES[case]
    data = _copy(tiny_data, tmp_path / "data")
    mutate(data)
    with pytest.raises(DataCheckError) as err:
        check_data_dir(data)
    assert any(p.file.endswith(file) and p.column == column and problem in p.problem for p in err.value.problems), str(
        err.value
    )

    serving = tmp_path / "serving"
    serving.mkdir()
    (serving / "LATEST").write_text("v0\n")
    code = run_pipeline(str(data), str(serving), pipeline_root=str(tmp_path / "root"), feature_repo=str(tmp_path / "fr"))
    assert code == EXIT_BAD_DATA
    message = capsys.readouterr().err
    assert file in message and f"column '{column}'" in message and problem in message
    assert sorted(p.name for p in serving.iterdir()) == ["LATEST"]  # nothing pushed, LATEST untouched
    assert (serving / "LATEST").read_text() == "v0\n"
    assert not (tmp_path / "root" / "metadata.sqlite").exists()  # the TFX run never started


@pytest.mark.integration  # in `make test` (issue 20): ~2 min idle, the TFX run stops at the gate
def test_tfx_validators_enforce_the_rules_without_preflight(tiny_data: Path, tmp_path: Path, capsys) -> None:
    """With the pre-flight off, ExampleValidator (schema) and DataCheck (cross-row rules) stop the TFX run."""
    data = _copy(tiny_data, tmp_path / "data")
    _negative_price(data)
    _duplicate_ids(data)
    _unknown_item(data)
    serving = tmp_path / "serving"
    code = run_pipeline(str(data), str(serving), pipeline_root=str(tmp_path / "root"),
                        feature_repo=str(tmp_path / "fr"), preflight=False)
    assert code == EXIT_BAD_DATA
    out = capsys.readouterr()
    message = out.out + out.err
    assert "DataCheck stopped the run" in message
    assert "items.csv: column 'price'" in message and "SchemaDiff.pb" in message  # TFDV anomaly + its report
    assert "duplicate item ids" in message and "unknown items" in message  # DataCheck's own rules
    assert not serving.exists()
    assert not (tmp_path / "root" / "EmbeddingGen").exists()  # nothing after the gate ran
