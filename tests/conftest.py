"""Shared pytest fixtures. Heavy artefacts (tiny catalog, encoders) are built once per session."""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

# Fixture modules the tests share (import their helpers directly; the fixtures below wrap the cached builds):
#   serving_fixtures.py  - tiny bundles in SERVING_DIR layout, and the cached real tiny build (real_bundle_cache)
#   look_fixtures.py     - shop-the-look photos
#   progress_components.py - TFX components that report progress, for the pipeline-progress tests


@pytest.fixture(scope="session")
def real_bundle() -> Path:
    """The cached real tiny build: ``serving_dir/`` (a pushed bundle) and ``data/`` (its catalog). Read-only; tests
    that write into the serving dir take a copy (``serving_fixtures.real_serving_dir``)."""
    from serving_fixtures import real_bundle_cache

    return real_bundle_cache()


@pytest.fixture(scope="session")
def tiny_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated tiny catalog (seed 42), built once per session. Read-only: a test that writes takes a copy."""
    from modules.data.catalog import generate_catalog

    data_dir = tmp_path_factory.mktemp("tiny_catalog")
    generate_catalog("tiny", data_dir, seed=42, progress=False)
    return data_dir


@pytest.fixture(scope="session")
def small_catalog(tiny_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny catalog cut to its first 60 items, the interactions and at most 60 judged queries on them: the
    executors run on it in seconds rather than minutes (tests that chain several real executors). Read-only."""
    import json
    import shutil

    import pandas as pd

    data_dir = tmp_path_factory.mktemp("small_catalog") / "data"
    shutil.copytree(tiny_catalog, data_dir)
    items = pd.read_csv(data_dir / "items.csv", dtype=str, keep_default_na=False).head(60)
    items.to_csv(data_dir / "items.csv", index=False)
    keep = set(items["item_id"])
    inter = pd.read_csv(data_dir / "interactions.csv", dtype=str, keep_default_na=False)
    inter[inter["item_id"].isin(keep)].to_csv(data_dir / "interactions.csv", index=False)
    queries = [q for q in map(json.loads, (data_dir / "queries.jsonl").read_text().splitlines())
               if set(q.get("relevance", {})) <= keep][:60]
    (data_dir / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    return data_dir


def _repo_feature_data() -> dict[str, tuple[int, int]]:
    """{file: (size, mtime_ns)} under the repository's own feature_repo/data (what a stray publish would change)."""
    data = Path(__file__).resolve().parent.parent / "feature_repo" / "data"
    return {str(p.relative_to(data)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(data.rglob("*")) if p.is_file()} if data.is_dir() else {}


@pytest.fixture(scope="session", autouse=True)
def repo_feature_store_untouched():
    """No test publishes into the repository's own feature_repo/data: tests publish into a private copy
    (``feast_fixtures.empty_feature_repo`` / ``build_feature_repo``). Checked once, when the session ends."""
    before = _repo_feature_data()
    yield
    assert _repo_feature_data() == before, ("a test wrote into feature_repo/data: publish into "
                                            "feast_fixtures.empty_feature_repo(tmp_path) instead")
