"""bench/fashion_benchmark.py's catalog preparation: what --strip-colour removes, what it keeps as held-back truth,
and that rebuilding its docs section leaves the rest of the results file alone. (The benchmark itself runs the whole
pipeline and is not a test.)"""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bench.fashion_benchmark import (
    BEGIN,
    END,
    FASHION,
    RETRIEVERS,
    colour_pattern,
    prepare_catalog,
    render_section,
    same_photo_first,
    write_section,
)


def test_colour_pattern_prefers_the_longest_colour_phrase() -> None:
    pattern = colour_pattern({"Blue", "Navy Blue", "Off White"})
    assert pattern.sub("", "Navy Blue Slim Fit Shirt").split() == ["Slim", "Fit", "Shirt"]
    assert pattern.sub("", "Grey melange off white GRAY tee").split() == ["Grey", "melange", "tee"]
    assert pattern.sub("", "Bluetooth speaker") == "Bluetooth speaker"   # whole words only


@pytest.mark.skipif(not (FASHION / "catalog.csv").is_file(), reason="the shared fashion sample is not present")
def test_strip_colour_removes_colour_words_and_column_but_keeps_the_truth(tmp_path: Path) -> None:
    kept, truth_kept, _ = prepare_catalog(tmp_path / "full", 60, strip_colour=False)
    stripped, truth, stats = prepare_catalog(tmp_path / "stripped", 60, strip_colour=True)
    with kept.open(encoding="utf-8") as f:
        before = list(csv.DictReader(f))
    with stripped.open(encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header, after = list(reader.fieldnames or []), list(reader)
    assert len(before) == len(after) == 60 and "baseColour" in before[0] and "baseColour" not in header
    assert truth == truth_kept and {t["colour"] for t in truth.values()} - {""}   # labels held back, not lost
    pattern = colour_pattern({t["colour"] for t in truth.values()})
    changed = 0
    for b, a in zip(before, after, strict=True):
        assert a["id"] == b["id"] and a["title"].strip()
        if a["title"] != b["title"]:
            changed += 1
            assert not pattern.search(a["title"]), a["title"]
    assert changed == stats["titles_changed"] > 0
    assert stats["colour_words_removed"] >= changed


def test_write_section_replaces_only_its_own_section(tmp_path: Path) -> None:
    md = tmp_path / "results.md"
    md.write_text(f"# results\n\nkeep me\n\n{BEGIN}\nold\n{END}\n\n## after\nkeep me too\n", encoding="utf-8")
    write_section(md, f"{BEGIN}\nnew\n{END}")
    text = md.read_text(encoding="utf-8")
    assert "new" in text and "old" not in text and "keep me\n" in text and "keep me too" in text
    other = tmp_path / "other.md"
    other.write_text("# results\n", encoding="utf-8")
    write_section(other, f"{BEGIN}\nnew\n{END}")
    assert other.read_text(encoding="utf-8").endswith(f"{END}\n")


@pytest.mark.skipif(not (FASHION / "catalog.csv").is_file(), reason="the shared fashion sample is not present")
def test_colour_naming_counts_every_labelled_photo_once(tmp_path: Path) -> None:
    from bench.colour_naming import main, name_accuracy

    got = name_accuracy(FASHION / "catalog.csv", FASHION / "images", rows=40)
    assert got["n"] + got["skipped"] == 40 and got["n"] > 0
    for label, v in got["labels"].items():
        assert sum(v["names"].values()) <= v["n"] and 0.0 <= v["correct"] <= 1.0
        assert v["correct"] == pytest.approx(v["names"].get(label, 0) / v["n"]) or len(v["names"]) == 4
    assert 0.0 < got["overall"] <= 1.0        # the first 40 rows hold black and grey photos, named right often
    assert main(["--catalog", str(tmp_path / "missing.csv")]) == 2


@pytest.mark.skipif(not (FASHION / "catalog.csv").is_file(), reason="the shared fashion sample is not present")
def test_a_byte_identical_photo_counts_as_the_same_photo() -> None:
    # 13242 and 13243 are two products with byte-identical photo files; 10000 is another photo
    assert (FASHION / "images" / "13242.jpg").read_bytes() == (FASHION / "images" / "13243.jpg").read_bytes()
    assert same_photo_first("13242", ["13242", "10000"]) and same_photo_first("13242", ["13243", "13242"])
    assert not same_photo_first("13242", ["10000", "13242"]) and not same_photo_first("13242", [])
    assert not same_photo_first("no-such-item", ["no-such-other"])


def test_render_section_reports_both_own_photo_rates_and_reads_older_results() -> None:
    own = {"n": 500, "first": 488, "rate": 0.976, "misses": [], "p50_ms": 40.0, "p95_ms": 60.0}
    result = {"variant": "full", "rows_arg": "all", "measured_at": "today", "machine": "2 CPU cores",
              "counts": {"items": 9583, "with_image": 9583, "queries": 600}, "ingest_s": 1.0, "run_s": 2.0,
              "run_peak_rss_mb": 3.0, "serve_ready_s": 4.0, "latency": {"n": 1, "p50_ms": 1.0, "p95_ms": 2.0},
              "colour_queries": ["black watches"],
              "retrievers": {r: {"colour_p10": 0.5, "type_p10": 0.5, "both_p10": 0.5} for r in RETRIEVERS},
              "photos": {"own_photo": own, "image_to_image_type_p10": {"n": 200, "p10": 0.7}}}
    assert "488 of 500 (97.6%)" in render_section([result]) and "byte-identical" not in render_section([result])
    own.update(first_or_identical=497, rate_or_identical=0.994)
    assert "488 of 500 (97.6%)** random products, it or a product with a byte-identical photo file for **497 (99.4%)" \
        in render_section([result])
