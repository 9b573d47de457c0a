"""FeastPublisher logic: item and user feature tables -> Parquet -> Feast apply + materialize."""
from __future__ import annotations

import datetime as dt
import importlib.util
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from components.common import load_items
from modules.data.data_io import EMB_IDS_FILE as IDS_FILE
from modules.data.data_io import EMB_IMAGE_FILE as IMAGE_FILE
from modules.data.data_io import EMB_TEXT_FILE as TEXT_FILE
from modules.data.data_io import load_photo_colours, read_cutoff, training_interactions
from modules.recommend.online_features import ItemAttrs, history_len, recent_profile

log = logging.getLogger(__name__)
ITEM_TABLE, USER_TABLE = "item_features.parquet", "user_features.parquet"


def item_table(data_dir: str, emb_dir: str, now: dt.datetime) -> pd.DataFrame:
    """One row per item: [text; image] embedding (each half unit-length, the whole unit-length: the image space
    need not be the text space), training popularity, attributes, cold-start flag."""
    items = load_items(data_dir)
    ids = json.loads((Path(emb_dir) / IDS_FILE).read_text())
    row = {iid: i for i, iid in enumerate(ids)}
    order = np.asarray([row[str(i)] for i in items["item_id"]])
    text, image = np.load(Path(emb_dir) / TEXT_FILE)[order], np.load(Path(emb_dir) / IMAGE_FILE)[order]
    has_image = np.linalg.norm(image, axis=1) > 0
    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    emb = unit(np.hstack([unit(text), unit(image)]))  # a missing photo leaves its half zero
    inter = training_interactions(data_dir)
    pop = inter["item_id"].value_counts() if len(inter) else pd.Series(dtype=float)
    cutoff = read_cutoff(data_dir)
    created = pd.to_numeric(items["created_at"], errors="coerce").fillna(0)
    cold = (created >= cutoff) if cutoff is not None else ~items["item_id"].isin(pop.index)
    return pd.DataFrame(
        {
            "item_id": items["item_id"].astype(str),
            "embedding": [v.astype(np.float32).tolist() for v in emb],
            "popularity": items["item_id"].map(pop).fillna(0).astype(np.float32),
            "category": items["category"].astype(str),
            "brand": items["brand"].fillna("").astype(str),
            "price": pd.to_numeric(items["price"]).astype(np.float32),
            "cold_start": np.asarray(cold, dtype=np.int64),
            "has_image": has_image.astype(np.int64),
            "event_timestamp": pd.Timestamp(now),
        }
    )


def user_table(data_dir: str, history_len: int, now: dt.datetime, n_price_bands: int,
               colors: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per user of the training window: recent items (newest first) and tastes, built with pandas group
    operations. Ties: top categories by count, then the most recently seen first; top brand by count, then the
    smallest value (what ``Series.mode`` picks). The recent profile (categories, colours, price band of the recent
    items) is ``online_features.recent_profile``, the rule ``POST /events`` applies too."""
    inter = training_interactions(data_dir)
    cols = ["user_id", "recent_items", "session_items", "recent_categories", "recent_colors", "price_band", "n_events",
            "top_categories", "top_brand", "mean_price", "last_event_ts", "event_timestamp"]
    if inter.empty:
        return pd.DataFrame(columns=cols)
    items = load_items(data_dir)[["item_id", "category", "brand", "price"]].astype({"item_id": str})
    attrs = ItemAttrs.build(items["item_id"], items["category"], pd.to_numeric(items["price"]),
                            [(colors or {}).get(i, "") for i in items["item_id"]], n_price_bands)
    df = inter.merge(items, on="item_id", how="left").sort_values(["user_id", "ts"], ascending=[True, False])
    df["pos"] = np.arange(len(df))  # rows of a user are contiguous, newest first
    out = pd.DataFrame({"n_events": df.groupby("user_id", sort=True).size().astype(int)})
    out["recent_items"] = _lists(df.groupby("user_id", sort=False).head(history_len), "item_id", out.index)
    out["top_categories"] = _lists(_ranked(df, "category", ["n", "first"], [False, True]).head(3), "category",
                                   out.index)
    top_brand = _ranked(df, "brand", ["n", "brand"], [False, True]).first()["brand"]
    out["top_brand"] = top_brand.reindex(out.index).fillna("").astype(str)
    out["mean_price"] = pd.to_numeric(df["price"]).groupby(df["user_id"], sort=True).mean().astype(float)
    out["session_items"] = [[] for _ in range(len(out))]     # nothing posted to /events since this publish
    out["last_event_ts"] = df.groupby("user_id", sort=True)["ts"].max().astype(np.int64)
    profiles = pd.DataFrame([recent_profile(r, attrs) for r in out["recent_items"]], index=out.index)
    out[["recent_categories", "recent_colors", "price_band"]] = profiles[["recent_categories", "recent_colors",
                                                                          "price_band"]]
    out["event_timestamp"] = pd.Timestamp(now)
    return out.rename_axis("user_id").reset_index().astype({"user_id": str})[cols]


def _ranked(df: pd.DataFrame, col: str, by: list[str], ascending: list[bool]) -> Any:
    """Per user, the distinct non-null values of ``col`` with their count ``n`` and first (newest) position,
    sorted by user then ``by`` (the order of ``value_counts``: count, then first seen; or of ``mode``: count, then
    value), grouped by user (for ``head`` / ``first``)."""
    counts = df.dropna(subset=[col]).groupby(["user_id", col], sort=False).agg(n=("pos", "size"), first=("pos", "min"))
    ranked = counts.reset_index().sort_values(["user_id", *by], ascending=[True, *ascending], kind="stable")
    return ranked.groupby("user_id", sort=False)


def _lists(rows: pd.DataFrame, col: str, users: pd.Index) -> list[list[str]]:
    """``col`` of each user's rows as a list of str (rows: contiguous per user, users sorted), in ``users`` order
    ([] for a user without rows)."""
    uid = rows["user_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, uid[1:] != uid[:-1]]) if len(uid) else np.zeros(0, int)
    found = dict(zip(uid[starts], np.split(rows[col].astype(str).to_numpy(), starts[1:]), strict=True))
    return [found[u].tolist() if u in found else [] for u in users]


def _color_names(data_dir: str, emb_dir: str) -> dict[str, str]:
    """item id -> the colour namer's name for its photo ("" for none; {} when the artifact has no names)."""
    ids = load_items(data_dir)["item_id"].astype(str).tolist()
    names = load_photo_colours(emb_dir, ids)
    return {} if names is None else dict(zip(ids, names, strict=True))


def _definitions(repo: Path) -> list[Any]:
    """The Feast objects declared in ``repo/definitions.py`` (what `feast apply` would register)."""
    from feast import Entity, FeatureView, PushSource

    spec = importlib.util.spec_from_file_location("pixelmatch_feast_definitions", repo / "definitions.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return [v for v in vars(module).values() if isinstance(v, (Entity, FeatureView, PushSource))]


def publish(data_dir: str, emb_dir: str, repo_dir: str, params: dict[str, Any]) -> dict[str, Any]:
    """Write both Parquet tables into ``repo_dir/data``, apply the definitions and materialize them online."""
    repo = Path(repo_dir)
    if not (repo / "feature_store.yaml").is_file():
        raise FileNotFoundError(f"{repo}: no feature_store.yaml (expected a Feast repository like feature_repo/)")
    data = repo / "data"
    data.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    items = item_table(data_dir, emb_dir, now)
    users = user_table(data_dir, history_len(params), now, int(params["recommend"]["n_price_bands"]),
                       colors=_color_names(data_dir, emb_dir))
    items.to_parquet(data / ITEM_TABLE, index=False)
    users.to_parquet(data / USER_TABLE, index=False)
    views = ["item_features"] + (["user_features"] if len(users) else [])
    if not len(users):
        log.info("FeastPublisher: no interactions: user features skipped (bring-your-own catalog)")
    apply_and_materialize(repo, views, now)
    return {"n_items": len(items), "n_users": len(users), "views": views, "repo": str(repo)}


def apply_and_materialize(repo: Path, views: list[str], now: dt.datetime) -> None:
    """``feast apply`` of the repository's definitions, then ``materialize`` of ``views`` (tables already written)."""
    from feast import FeatureStore

    store = FeatureStore(repo_path=str(repo))
    store.apply(_definitions(repo))
    store.materialize(start_date=now - dt.timedelta(days=1), end_date=now + dt.timedelta(minutes=1), feature_views=views)


def copy_repo_template(template: Path, dest: Path) -> Path:
    """``dest/feature_repo``: a copy of the ``template`` Feast repo's definitions and config, with an empty ``data/``
    (no tables, no registry, no online store): a private repo to publish into, never the template's own data."""
    repo = Path(dest) / "feature_repo"
    shutil.copytree(template, repo, ignore=shutil.ignore_patterns("data", "__pycache__"))
    (repo / "data").mkdir()
    return repo


def user_features_repo(template: Path, dest: Path, data_dir: str, params: dict[str, Any]) -> Path:
    """``dest/feature_repo``: a copy of the ``template`` Feast repo (its ``data/`` left out) with the user features
    of ``data_dir``'s training window materialised online, as a run leaves it (item features need the EmbeddingGen
    artifact and are not written). For tests and benchmarks of the online lookup; returns the repo path."""
    repo = copy_repo_template(template, dest)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    users = user_table(str(data_dir), history_len(params), now, int(params["recommend"]["n_price_bands"]))
    users.to_parquet(repo / "data" / USER_TABLE, index=False)
    apply_and_materialize(repo, ["user_features"], now)
    return repo
