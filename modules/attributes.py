"""Attributes learned from the catalog's own labels: fill a categorical column where the shop left it empty.

A column qualifies when it is an extra attribute column (not a core one), has between 2 and ``max_classes`` label
values and at least ``min_labelled`` labelled items with a photo. Per column, a multinomial logistic regression on
the frozen image vectors (plus the model-free colour features) is fitted on a seeded split of the labelled items;
its accuracy on the held-out rest is the column's reported figure. Items without a label get the predicted value
and its probability as confidence when that reaches ``min_confidence``. Classes with fewer than
``min_class_count`` examples are left out of training (they cannot be learned or measured).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from modules.data.data_io import extra_attribute_columns

log = logging.getLogger(__name__)


def attribute_features(image_vecs: np.ndarray, color_feats: np.ndarray, color_weight: float) -> np.ndarray:
    """[unit image vector; color_weight * unit colour features] per item."""
    def unit(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    return np.hstack([unit(image_vecs), color_weight * unit(color_feats)]).astype(np.float32)


def attribute_classifier(cfg: Mapping[str, Any], seed: int) -> Any:
    """The model every learned attribute uses: a multinomial logistic regression (``attributes.C``, ``max_iter``)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=float(cfg["C"]), max_iter=int(cfg["max_iter"]), random_state=seed)


def _labels(items: pd.DataFrame, col: str) -> pd.Series:
    return items[col].fillna("").astype(str).str.strip()


def candidate_columns(items: pd.DataFrame, has_image: np.ndarray, cfg: Mapping[str, Any]) -> list[str]:
    """Extra attribute columns that look categorical and have enough labelled items with a photo."""
    wanted = cfg.get("columns") or extra_attribute_columns(items)
    out = []
    for col in wanted:
        if col not in items.columns:
            continue
        labels = _labels(items, col)
        labelled = (labels != "") & has_image
        counts = labels[labelled].value_counts()
        if (2 <= len(counts) <= int(cfg["max_classes"]) and labelled.sum() >= int(cfg["min_labelled"])
                and (counts >= int(cfg["min_class_count"])).sum() >= 2):
            out.append(col)
    return out


def _fit_column(x: np.ndarray, labels: pd.Series, has_image: np.ndarray, cfg: Mapping[str, Any], seed: int
                ) -> tuple[Any, dict[str, Any]]:
    counts = labels[(labels != "") & has_image].value_counts()
    keep = set(counts[counts >= int(cfg["min_class_count"])].index)
    rows = np.flatnonzero(labels.isin(keep).to_numpy() & has_image)
    rng = np.random.default_rng(seed)
    rows = rng.permutation(rows)
    if len(rows) > int(cfg["max_train_rows"]):
        rows = rows[: int(cfg["max_train_rows"])]
    n_test = max(1, int(round(len(rows) * float(cfg["holdout_fraction"]))))
    test, train = rows[:n_test], rows[n_test:]
    y = labels.to_numpy()
    model = attribute_classifier(cfg, seed)
    model.fit(x[train], y[train])
    accuracy = float((model.predict(x[test]) == y[test]).mean())
    majority = float((y[test] == pd.Series(y[train]).value_counts().index[0]).mean())
    return model, {"held_out_accuracy": round(accuracy, 4), "majority_baseline": round(majority, 4),
                   "n_train": int(len(train)), "n_held_out": int(n_test), "classes": int(len(keep))}


def fill_attributes(items: pd.DataFrame, features: np.ndarray, has_image: np.ndarray, cfg: Mapping[str, Any],
                    seed: int) -> dict[str, Any]:
    """``{"metrics": {col: {...}}, "filled": {col: {item_id: [value, confidence]}}}`` for every qualifying column."""
    metrics: dict[str, Any] = {}
    filled: dict[str, dict[str, list]] = {}
    ids = items["item_id"].astype(str).to_numpy()
    for col in candidate_columns(items, has_image, cfg):
        labels = _labels(items, col)
        model, m = _fit_column(features, labels, has_image, cfg, seed)
        todo = np.flatnonzero((labels == "").to_numpy() & has_image)
        fills: dict[str, list] = {}
        if len(todo):
            proba = model.predict_proba(features[todo])
            best = proba.argmax(axis=1)
            for r, b, p in zip(todo, best, proba.max(axis=1), strict=True):
                if p >= float(cfg["min_confidence"]):
                    fills[str(ids[r])] = [str(model.classes_[b]), round(float(p), 4)]
        m.update({"n_missing": int(len(todo)), "n_filled": len(fills)})
        metrics[col], filled[col] = m, fills
        log.info("attribute %s: held-out accuracy %.3f (majority %.3f), filled %d of %d missing", col,
                 m["held_out_accuracy"], m["majority_baseline"], len(fills), len(todo))
    return {"metrics": metrics, "filled": filled}


def apply_fills(items: pd.DataFrame, fills: Mapping[str, Mapping[str, list]]) -> tuple[pd.DataFrame, dict]:
    """Items with the filled values written into their columns (so they are indexed and searchable), and
    ``{item_id: {column: {"value", "confidence"}}}`` for ``explain``."""
    out = items.copy()
    by_item: dict[str, dict[str, dict[str, Any]]] = {}
    ids = out["item_id"].astype(str)
    for col, per_item in fills.items():
        if col not in out.columns or not per_item:
            continue
        values = ids.map(lambda i, d=per_item: d[i][0] if i in d else None)
        empty = out[col].fillna("").astype(str).str.strip() == ""
        out[col] = out[col].astype(object).where(~(empty & values.notna()), values)
        for iid, (value, conf) in per_item.items():
            by_item.setdefault(iid, {})[col] = {"value": value, "confidence": conf}
    return out, by_item
