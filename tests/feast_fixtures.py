"""A real Feast repository for serving tests: feature_repo/ copied, its user table built from a catalog's training
window by FeastPublisher's own code, then ``feast apply`` + ``materialize`` (SQLite online store), as a pipeline
run leaves it. Item features are not materialised (they need the EmbeddingGen artifact; serving reads user rows)."""
from __future__ import annotations

from pathlib import Path

from components.feast_publisher.executor import copy_repo_template, user_features_repo

REPO = Path(__file__).resolve().parent.parent


def empty_feature_repo(dest: Path) -> Path:
    """``dest/feature_repo``: the repo's feature_repo/ definitions with an empty ``data/``. Every test that publishes
    (a pipeline run's FeastPublisher) publishes here, never into the repository's own feature_repo/data."""
    return copy_repo_template(REPO / "feature_repo", dest)


def build_feature_repo(dest: Path, data_dir: Path, params: dict) -> Path:
    """``dest/feature_repo`` with the user features of ``data_dir`` materialised online; returns the repo path."""
    return user_features_repo(REPO / "feature_repo", dest, str(data_dir), params)
