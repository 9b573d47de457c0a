"""modules/bundle.py: manifest checksums, verification and the atomic push."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from modules.bundle import BundleError, push_atomic, read_latest, verify_bundle, write_manifest


def _stage(root: Path) -> Path:
    stage = root / "stage"
    (stage / "search").mkdir(parents=True)
    (stage / "search" / "index.bin").write_bytes(b"\x00\x01faiss")
    (stage / "ranker").mkdir()
    (stage / "ranker" / "model.txt").write_text("tree\n")
    return stage


def test_manifest_lists_every_file_with_sha256(tmp_path: Path) -> None:
    stage = _stage(tmp_path)
    manifest = write_manifest(stage, {"version": "v1", "metrics": {"ndcg@10": 0.5}})
    assert set(manifest["files"]) == {"search/index.bin", "ranker/model.txt"}
    assert all(len(d) == 64 for d in manifest["files"].values())
    assert manifest["version"] == "v1"
    assert verify_bundle(stage)["metrics"] == {"ndcg@10": 0.5}


@pytest.mark.parametrize("damage", ["modify", "delete", "add"])
def test_verify_detects_tampering(tmp_path: Path, damage: str) -> None:
    stage = _stage(tmp_path)
    write_manifest(stage, {})
    if damage == "modify":
        (stage / "ranker" / "model.txt").write_text("other\n")
    elif damage == "delete":
        (stage / "search" / "index.bin").unlink()
    else:
        (stage / "extra.txt").write_text("x")
    with pytest.raises(BundleError):
        verify_bundle(stage)


def test_verify_rejects_missing_or_broken_manifest(tmp_path: Path) -> None:
    stage = _stage(tmp_path)
    with pytest.raises(BundleError, match="manifest missing"):
        verify_bundle(stage)
    (stage / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        verify_bundle(stage)


def test_push_atomic_publishes_version_and_latest(tmp_path: Path) -> None:
    stage = _stage(tmp_path)
    write_manifest(stage, {"version": "v1"})
    serving = tmp_path / "serving"
    final = push_atomic(stage, serving, "v1")
    assert final == serving / "v1"
    assert read_latest(serving) == "v1"
    assert verify_bundle(final)["version"] == "v1"
    assert not [p for p in serving.iterdir() if p.name.startswith(".")]  # no temp left behind

    write_manifest(stage, {"version": "v2"})
    push_atomic(stage, serving, "v2")
    assert read_latest(serving) == "v2"
    assert (serving / "v1").is_dir()  # older versions stay for rollback
    with pytest.raises(BundleError, match="already exists"):
        push_atomic(stage, serving, "v2")


def test_push_refuses_corrupt_bundle_and_leaves_serving_untouched(tmp_path: Path) -> None:
    stage = _stage(tmp_path)
    write_manifest(stage, {})
    serving = tmp_path / "serving"
    serving.mkdir()
    (serving / "LATEST").write_text("old\n")
    (stage / "ranker" / "model.txt").write_text("corrupted")
    with pytest.raises(BundleError, match="checksum mismatch"):
        push_atomic(stage, serving, "v3")
    assert sorted(p.name for p in serving.iterdir()) == ["LATEST"]
    assert read_latest(serving) == "old"


@pytest.mark.parametrize("bad", ["../evil", "", "a/b", ".hidden"])
def test_push_rejects_unsafe_version_names(tmp_path: Path, bad: str) -> None:
    stage = _stage(tmp_path)
    write_manifest(stage, {})
    with pytest.raises(BundleError, match="invalid version"):
        push_atomic(stage, tmp_path / "serving", bad)


def test_manifest_is_json_with_sorted_keys(tmp_path: Path) -> None:
    stage = _stage(tmp_path)
    write_manifest(stage, {"b": 1, "a": 2})
    text = (stage / "manifest.json").read_text()
    assert json.loads(text)["a"] == 2
