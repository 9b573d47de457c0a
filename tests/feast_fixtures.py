"""A real Feast repository for serving tests: feature_repo/ copied, its user table built from a catalog's training
window by FeastPublisher's own code, then ``feast apply`` + ``materialize`` (SQLite online store), as a pipeline
run leaves it. Item features are not materialised (they need the EmbeddingGen artifact; serving reads user rows)."""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from components.feast_publisher import executor
from modules.recommend.online_features import history_len

REPO = Path(__file__).resolve().parent.parent


def build_feature_repo(dest: Path, data_dir: Path, params: dict) -> Path:
    """``dest/feature_repo`` with the user features of ``data_dir`` materialised online; returns the repo path."""
    repo = dest / "feature_repo"
    shutil.copytree(REPO / "feature_repo", repo, ignore=shutil.ignore_patterns("data", "__pycache__"))
    (repo / "data").mkdir()
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    users = executor.user_table(str(data_dir), history_len(params), now, int(params["recommend"]["n_price_bands"]))
    users.to_parquet(repo / "data" / executor.USER_TABLE, index=False)
    executor.apply_and_materialize(repo, ["user_features"], now)
    return repo
