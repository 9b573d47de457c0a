"""Readers for DATA_DIR (the one format written by `pixelmatch generate` and `pixelmatch ingest`).

Every reader validates what it loads and raises ``ValueError`` (or ``FileNotFoundError`` for a missing
required file) with a message that names the file and the problem.

The hidden-truth files (truth_items.csv, truth_users.csv) are only for the generator and the query judge;
nothing on the search or training path may read them, and ``item_text`` never uses truth columns.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ITEMS_FILE = "items.csv"
INTERACTIONS_FILE = "interactions.csv"
QUERIES_FILE = "queries.jsonl"
MANIFEST_FILE = "manifest.json"
TRUTH_ITEMS_FILE = "truth_items.csv"
TRUTH_USERS_FILE = "truth_users.csv"

REQUIRED_ITEM_COLUMNS: list[str] = ["item_id", "title", "description", "category", "brand", "price", "gender",
                                    "image_path", "created_at"]
TEXT_CORE_COLUMNS: list[str] = ["title", "description", "category", "brand", "gender"]
# Columns that are never text features: ids, paths, numbers, and synthetic hidden truth should it ever leak in.
ATTRIBUTE_COLUMNS_EXCLUDED: frozenset[str] = frozenset({
    "item_id", "image_path", "created_at", "price", "price_pct", "brand_tier", "pattern_in_text", "color_in_title",
    "is_new", "pop_rank",
})
INTERACTION_COLUMNS: list[str] = ["user_id", "item_id", "event", "ts"]
EVENTS: list[str] = ["view", "click", "add_to_cart", "purchase"]
GENDERS: list[str] = ["women", "men", "unisex"]
QUERY_KINDS: list[str] = ["text", "image", "composed"]
QUERY_REQUIRED_KEYS: list[str] = ["qid", "kind", "relevance"]

# The EmbeddingGen artifact: one row per catalog item in item_ids.json order, plus the trained image tower.
EMB_TEXT_FILE, EMB_IMAGE_FILE, EMB_COLOR_FILE = "text.npy", "image.npy", "color.npy"
EMB_IDS_FILE, EMB_COLOR_NAMES_FILE, EMB_TOWER_DIR = "item_ids.json", "item_colors.json", "image_tower"
EMB_ATTRIBUTES_FILE = "attributes.json"  # attributes learned from the catalog's labels (modules/attributes.py)
EMB_FINGERPRINTS_FILE = "photo_fingerprints.npy"  # "same photo" fingerprints (modules/encoders/fingerprint.py)


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot parse CSV ({e})") from e
    except pd.errors.EmptyDataError as e:
        raise ValueError(f"{path}: file is empty (expected a header row)") from e


def _require_columns(df: pd.DataFrame, required: list[str], path: Path) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing required columns {missing}; found {list(df.columns)}")


def _to_number(df: pd.DataFrame, column: str, path: Path, integer: bool) -> pd.Series:
    values = pd.to_numeric(df[column].str.strip(), errors="coerce")
    bad = values.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{path}: column {column!r} has a non-numeric value {df[column].iloc[row]!r} "
                         f"(data row {row + 1})")
    if integer:
        if (values != np.floor(values)).any():
            raise ValueError(f"{path}: column {column!r} must hold integers")
        return values.astype(np.int64)
    return values.astype(np.float64)


def load_items(data_dir: str | Path) -> pd.DataFrame:
    """items.csv: item_id (str, unique), text columns (NaN -> ""), price (float >= 0), created_at (int)."""
    path = Path(data_dir) / ITEMS_FILE
    df = _read_csv(path, "items file")
    _require_columns(df, REQUIRED_ITEM_COLUMNS, path)
    df["item_id"] = df["item_id"].str.strip()
    if (df["item_id"] == "").any():
        raise ValueError(f"{path}: empty item_id")
    dup = df["item_id"][df["item_id"].duplicated()]
    if not dup.empty:
        raise ValueError(f"{path}: duplicate item_id {dup.iloc[0]!r}")
    df["price"] = _to_number(df, "price", path, integer=False)
    if (df["price"] < 0).any():
        raise ValueError(f"{path}: negative price")
    df["created_at"] = _to_number(df, "created_at", path, integer=True)
    return df.reset_index(drop=True)


def _no_interactions() -> pd.DataFrame:
    return pd.DataFrame({"user_id": pd.Series(dtype=str), "item_id": pd.Series(dtype=str),
                         "event": pd.Series(dtype=str), "ts": pd.Series(dtype=np.int64)})


def load_interactions(data_dir: str | Path) -> pd.DataFrame:
    """interactions.csv (may be header-only or absent -> empty frame): user_id, item_id (str), event, ts (int)."""
    path = Path(data_dir) / INTERACTIONS_FILE
    if not path.is_file():
        return _no_interactions()
    df = _read_csv(path, "interactions file")
    _require_columns(df, INTERACTION_COLUMNS, path)
    bad = ~df["event"].isin(EVENTS)
    if bad.any():
        raise ValueError(f"{path}: unknown event {df['event'][bad].iloc[0]!r}; expected one of {EVENTS}")
    df["ts"] = _to_number(df, "ts", path, integer=True) if len(df) else df["ts"].astype(np.int64)
    return df.reset_index(drop=True)


def load_queries(data_dir: str | Path, split: str | None = None) -> list[dict[str, Any]]:
    """queries.jsonl as a list of dicts ([] if the file is absent), optionally only one split (train/eval).

    Missing optional keys get defaults: text "", image_path "", split "eval", cold False, source "judged".
    """
    path = Path(data_dir) / QUERIES_FILE
    if not path.is_file():
        return []
    if split is not None and split not in ("train", "eval"):
        raise ValueError(f"split must be 'train', 'eval' or None, got {split!r}")
    out: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                q = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{line_no}: invalid JSON ({e.msg})") from e
            if not isinstance(q, dict):
                raise ValueError(f"{path}:{line_no}: expected a JSON object")
            missing = [k for k in QUERY_REQUIRED_KEYS if k not in q]
            if missing:
                raise ValueError(f"{path}:{line_no}: missing keys {missing}")
            if q["kind"] not in QUERY_KINDS:
                raise ValueError(f"{path}:{line_no}: unknown kind {q['kind']!r}; expected one of {QUERY_KINDS}")
            rel = q["relevance"]
            if not isinstance(rel, dict) or not all(isinstance(g, int) and 0 <= g <= 3 for g in rel.values()):
                raise ValueError(f"{path}:{line_no}: relevance must map item_id to an integer grade 0..3")
            q.setdefault("text", "")
            q.setdefault("image_path", "")
            q.setdefault("split", "eval")
            q.setdefault("cold", False)
            q.setdefault("source", "judged")
            if split is None or q["split"] == split:
                out.append(q)
    return out


def load_manifest(data_dir: str | Path) -> dict[str, Any]:
    """manifest.json as a dict; needs at least ``source`` and ``cutoff_ts``."""
    path = Path(data_dir) / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path} (run `pixelmatch generate` or `pixelmatch ingest`)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON ({e.msg})") from e
    if not isinstance(manifest, dict) or "source" not in manifest or "cutoff_ts" not in manifest:
        raise ValueError(f"{path}: expected an object with at least 'source' and 'cutoff_ts'")
    return manifest


def load_truth_items(data_dir: str | Path) -> pd.DataFrame:
    """truth_items.csv (synthetic catalogs only). For the generator and query judging ONLY, never features."""
    path = Path(data_dir) / TRUTH_ITEMS_FILE
    df = _read_csv(path, "truth file")
    _require_columns(df, ["item_id", "category", "color", "pattern"], path)
    return df


def load_truth_users(data_dir: str | Path) -> pd.DataFrame:
    """truth_users.csv (synthetic catalogs only): latent user tastes, for analysis ONLY."""
    path = Path(data_dir) / TRUTH_USERS_FILE
    df = _read_csv(path, "truth file")
    _require_columns(df, ["user_id"], path)
    return df


def new_item_ids(data_dir: str | Path, items: pd.DataFrame | None = None) -> set[str]:
    """Ids of new SKUs: the manifest's new_item_ids_file if present, else created_at >= cutoff_ts."""
    manifest = load_manifest(data_dir)
    name = manifest.get("new_item_ids_file")
    if name and (Path(data_dir) / name).is_file():
        return {s.strip() for s in (Path(data_dir) / name).read_text().splitlines() if s.strip()}
    items = load_items(data_dir) if items is None else items
    return set(items.loc[items["created_at"] >= int(manifest["cutoff_ts"]), "item_id"])


def split_interactions(interactions: pd.DataFrame, cutoff_ts: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training events: ts < cutoff_ts, held-out events: ts >= cutoff_ts)."""
    train = interactions["ts"] < int(cutoff_ts)
    return interactions[train].reset_index(drop=True), interactions[~train].reset_index(drop=True)


def read_cutoff(data_dir: str | Path) -> int | None:
    """The end of the training window: the manifest's ``cutoff_ts`` (``None`` without a manifest or that key)."""
    manifest = Path(data_dir) / MANIFEST_FILE
    if manifest.is_file():
        value = json.loads(manifest.read_text()).get("cutoff_ts")
        return int(value) if value is not None else None
    return None


def training_interactions(data_dir: str | Path) -> pd.DataFrame:
    """The training window of interactions.csv: events with ``ts < cutoff_ts`` (every event when the catalog has no
    cutoff; an empty frame when the file is absent, header-only or empty). The one place that cuts the window for
    popularity, the recommender and the feature store."""
    path = Path(data_dir) / INTERACTIONS_FILE
    if path.is_file() and path.stat().st_size == 0:  # an empty file (not even a header): no history
        return _no_interactions()
    inter = load_interactions(data_dir)
    cutoff = read_cutoff(data_dir)
    return split_interactions(inter, cutoff)[0] if cutoff is not None else inter


def item_popularity(data_dir: str | Path, item_ids: Sequence[str]) -> np.ndarray:
    """Training-window interaction count of each of ``item_ids`` (float32; 0 for new SKUs, unknown ids and
    catalogs without history)."""
    train = training_interactions(data_dir)
    if len(train) == 0:
        return np.zeros(len(item_ids), dtype=np.float32)
    counts = train["item_id"].astype(str).value_counts()
    return counts.reindex([str(i) for i in item_ids], fill_value=0).to_numpy(dtype=np.float32)


def extra_attribute_columns(items: pd.DataFrame) -> list[str]:
    """Columns beyond the required ones that are used as text (synthetic: material, style)."""
    return [c for c in items.columns if c not in REQUIRED_ITEM_COLUMNS and c not in ATTRIBUTE_COLUMNS_EXCLUDED]


def item_text(items: pd.DataFrame) -> list[str]:
    """The text embedded/indexed per item: title. description. category brand gender <extra attribute values>."""
    head = items["title"].fillna("").astype(str) + ". " + items["description"].fillna("").astype(str)
    tail_cols = [c for c in TEXT_CORE_COLUMNS[2:] if c in items.columns] + extra_attribute_columns(items)
    tail = items[tail_cols].fillna("").astype(str).agg(" ".join, axis=1) if tail_cols else ""
    text = (head + " " + tail) if tail_cols else head
    return [" ".join(t.split()) for t in text]


def load_embedding_rows(emb_dir: str | Path, item_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Text, image and colour rows of an EmbeddingGen artifact, re-ordered to ``item_ids``.

    Raises ``ValueError`` naming the directory when any of ``item_ids`` has no row (no silent zero vectors).
    """
    emb_dir = Path(emb_dir)
    ids = json.loads((emb_dir / EMB_IDS_FILE).read_text())
    row = {item_id: i for i, item_id in enumerate(ids)}
    missing = [i for i in item_ids if i not in row]
    if missing:
        raise ValueError(f"embeddings at {emb_dir} lack {len(missing)} item(s), e.g. {missing[:3]}")
    order = np.asarray([row[i] for i in item_ids])
    text, image, color = (np.load(emb_dir / name, mmap_mode="r")[order]
                          for name in (EMB_TEXT_FILE, EMB_IMAGE_FILE, EMB_COLOR_FILE))
    return text, image, color


def load_photo_fingerprints(emb_dir: str | Path, item_ids: Sequence[str]) -> np.ndarray | None:
    """The "same photo" fingerprint rows of an EmbeddingGen artifact re-ordered to ``item_ids``, or None when the
    artifact predates them (the engine then runs without the same-photo promotion)."""
    emb_dir = Path(emb_dir)
    if not (emb_dir / EMB_FINGERPRINTS_FILE).is_file():
        return None
    row = {item_id: i for i, item_id in enumerate(json.loads((emb_dir / EMB_IDS_FILE).read_text()))}
    missing = [i for i in item_ids if i not in row]
    if missing:
        raise ValueError(f"fingerprints at {emb_dir} lack {len(missing)} item(s), e.g. {missing[:3]}")
    return np.load(emb_dir / EMB_FINGERPRINTS_FILE)[np.asarray([row[i] for i in item_ids], dtype=np.int64)]


def load_photo_colours(emb_dir: str | Path, item_ids: Sequence[str]) -> list[str] | None:
    """The colour namer's name for each of ``item_ids``' photos ("" for none) from an EmbeddingGen artifact, or None
    when the artifact has no names. Raises ``ValueError`` when an item has no row."""
    emb_dir = Path(emb_dir)
    if not (emb_dir / EMB_COLOR_NAMES_FILE).is_file():
        return None
    names = dict(zip(json.loads((emb_dir / EMB_IDS_FILE).read_text()),
                     json.loads((emb_dir / EMB_COLOR_NAMES_FILE).read_text()), strict=True))
    missing = [i for i in item_ids if i not in names]
    if missing:
        raise ValueError(f"colour names at {emb_dir} lack {len(missing)} item(s), e.g. {missing[:3]}")
    return [str(names[i] or "") for i in item_ids]
