"""The person-vs-namer colour check (bench/colour_agreement.py): its photos are the documented seeded selection, its
names are basic terms, and its agreement figure and interval are computed right."""
from __future__ import annotations

import csv

import pytest

from bench.colour_agreement import HUMAN_FILE, agreement, blind_selection, read_human
from modules.config import shared_dir
from modules.encoders.color_naming import COLOR_NAMES

FASHION = shared_dir() / "datasets" / "fashion-sample"


def test_agreement_share_and_interval() -> None:
    share, low, high = agreement(["red", "blue", "black", "white"], ["red", "blue", "black", "grey"], seed=3)
    assert share == 0.75
    assert 0.0 <= low <= share <= high <= 1.0 and low < high
    assert agreement(["red"] * 5, ["red"] * 5) == (1.0, 1.0, 1.0)
    assert agreement([], []) == (0.0, 0.0, 0.0)
    assert agreement(["a", "b"], ["a", "c"], seed=1) == agreement(["a", "b"], ["a", "c"], seed=1)  # seeded
    with pytest.raises(ValueError):
        agreement(["red"], ["red", "blue"])


def test_person_names_are_basic_terms() -> None:
    names = read_human()
    assert len(names) == 200
    assert set(names.values()) <= set(COLOR_NAMES)


@pytest.mark.skipif(not (FASHION / "catalog.csv").is_file(), reason=f"fashion-sample dataset not available ({FASHION})")
def test_photos_are_the_seeded_selection_not_picked_by_hand() -> None:
    with (FASHION / "catalog.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert blind_selection(rows, n=200, seed=2026) == list(read_human(HUMAN_FILE))
