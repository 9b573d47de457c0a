"""DataCheck rules beyond the five issue cases (those are in tests/test_pipeline_bad_data.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from components.data_check.rules import DataCheckError, check_data_dir, check_items

HEADER = "item_id,title,description,category,brand,price,gender,image_path,created_at\n"


def test_gender_outside_domain_is_reported() -> None:
    items = pd.DataFrame([{"item_id": "a", "title": "t", "description": "", "category": "c", "brand": "",
                           "price": "1", "gender": "kids", "image_path": "", "created_at": "1"}])
    (problem,) = check_items(items)
    assert problem.column == "gender" and "kids" in problem.problem


def test_judgements_on_unknown_items_and_bad_json(tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_text(HEADER + "a,Dress,,dresses,X,1,women,,1\n")
    good = {"qid": "q", "kind": "text", "text": "x", "image_path": "", "split": "eval", "relevance": {"zz": 3}}
    (tmp_path / "queries.jsonl").write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(DataCheckError) as err:
        check_data_dir(tmp_path)
    text = str(err.value)
    assert "queries.jsonl: column 'relevance': line 1" in text and "line 2: not valid JSON" in text


def test_missing_catalog_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataCheckError, match="items.csv.*file not found"):
        check_data_dir(tmp_path)


def test_header_only_interactions_are_fine(tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_text(HEADER + "a,Dress,,dresses,X,1,women,,1\n")
    (tmp_path / "interactions.csv").write_text("user_id,item_id,event,ts\n")
    assert check_data_dir(tmp_path) == {"n_items": 1, "n_interactions": 0}
