"""Query understanding for photos: which of the catalog's categories a shopper's photo shows.

A text query names its category ("red dress"); a photo query does not, and the image vectors of a cluttered photo
describe the scene as much as the product (the 20 nearest catalog photos share the query's category for about 60%
of the synthetic street photos). A multinomial logistic regression over the image space, trained at index build on
the catalog's own photos *and* generically augmented copies of a seeded sample of them (background replaced by a
texture, random resized crop, rotation, colour jitter: ``modules.encoders.tower_augment.photo_augment``, nothing
of any generator), names the category of such photos far more often (a one-off check on the 5K demo catalog's
EVAL street photos: 58.5% -> 86.7%).

At query time (``retrieve``), a photo query without a category whose head is at least
``retrieval.photo.category_confidence`` sure of one gets one more candidate list, the photo's nearest items within
that category, and ``retrieval.intent_boost`` on that category's candidates in the hybrid score. It is not made a
category intent (the re-ranker's ``category_match`` stays the text's): as one, the synthetic catalog's re-ranker got
worse on text and on photo + text queries. On by default since the re-ranker stopped learning from memorised fusion
scores (params.yaml says why).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from modules.search.dense import l2_normalize

log = logging.getLogger(__name__)

HEAD_FILE = "photo_category.npz"


@dataclass
class PhotoCategoryHead:
    """Softmax over ``classes`` of ``coef @ unit(vector) + intercept``."""

    classes: np.ndarray      # (C,) category strings, as the engine's ``cat`` column holds them
    coef: np.ndarray         # (C, dim) float32
    intercept: np.ndarray    # (C,) float32

    def probabilities(self, vector: np.ndarray) -> np.ndarray:
        logits = self.coef @ l2_normalize(vector).ravel() + self.intercept
        e = np.exp(logits - logits.max())
        return e / e.sum()

    def confident(self, vector: np.ndarray, threshold: float) -> tuple[str | None, float]:
        """``(category, probability)`` of the most probable category, the category None below ``threshold``."""
        p = self.probabilities(vector)
        best = int(np.argmax(p))
        return (str(self.classes[best]) if p[best] >= threshold else None), float(p[best])

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / HEAD_FILE
        np.savez(path, classes=self.classes.astype(str), coef=self.coef, intercept=self.intercept)
        return path

    @classmethod
    def load(cls, directory: str | Path) -> PhotoCategoryHead | None:
        """The head saved in ``directory``, or None (an engine saved before it, or one without photos)."""
        path = Path(directory) / HEAD_FILE
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as z:
            return cls(z["classes"].astype(object), z["coef"].astype(np.float32), z["intercept"].astype(np.float32))


def fit_head(vectors: np.ndarray, labels: Sequence[str], C: float, max_iter: int, seed: int) -> PhotoCategoryHead:
    """The logistic regression on unit ``vectors``."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=float(C), max_iter=int(max_iter), random_state=seed)
    clf.fit(l2_normalize(vectors), np.asarray(labels, dtype=object))
    coef, intercept = clf.coef_, clf.intercept_
    if len(clf.classes_) == 2:   # sklearn's binary case keeps one row: the second class's logit
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    return PhotoCategoryHead(np.asarray(clf.classes_, dtype=object), coef.astype(np.float32),
                             intercept.astype(np.float32))


def augmented_vectors(encode: Any, paths: Sequence[Path], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(vectors, ok)``: each photo decoded, augmented once (seeded) and embedded with ``encode(PIL image)``;
    ``ok[i]`` False (and no row) where photo ``i`` cannot be read."""
    from modules.data.images import ImageError, load_image
    from modules.encoders.tower_augment import photo_augment

    rng = np.random.default_rng(seed)
    out, ok = [], np.zeros(len(paths), dtype=bool)
    for i, p in enumerate(paths):
        try:
            arr = np.asarray(load_image(p).convert("RGB"), dtype=np.float32) / 255.0
        except (ImageError, OSError) as exc:
            log.warning("photo category head: %s skipped (%s)", p, exc)
            continue
        img = Image.fromarray((photo_augment(arr, rng) * 255.0).astype(np.uint8), "RGB")
        out.append(np.asarray(encode(img), dtype=np.float32).ravel())
        ok[i] = True
    return (np.vstack(out) if out else np.zeros((0, 0), np.float32)), ok


def train_photo_category(encode: Any, image_vectors: np.ndarray, categories: np.ndarray,
                         paths: Sequence[Path | None], has_image: np.ndarray, cfg: Any, seed: int
                         ) -> tuple[PhotoCategoryHead | None, dict[str, Any]]:
    """The head (None when the catalog has fewer than two categories of ``cfg.min_class_count`` photos) and what
    to report: classes, rows, the augmented photos' held-out accuracy (a street-photo proxy).

    ``cfg``: ``retrieval.photo.category_head`` (augmented_photos, holdout_fraction, min_class_count, C, max_iter).
    Row ``i`` of ``image_vectors`` / ``categories`` / ``paths`` / ``has_image`` describe one item; ``encode`` embeds
    a photo the way a query photo is embedded."""
    t0 = time.perf_counter()
    cats = np.asarray(categories, dtype=object)
    usable = np.asarray(has_image, dtype=bool) & np.array([p is not None for p in paths]) & (cats != "")
    values, counts = np.unique(cats[usable], return_counts=True)
    keep = set(values[counts >= int(cfg.min_class_count)].tolist())
    rows = np.flatnonzero(usable & np.isin(cats, list(keep)))
    if len(keep) < 2:
        return None, {"skipped": f"{len(keep)} categories with >= {cfg.min_class_count} photos"}
    rng = np.random.default_rng(seed)
    sample = rng.permutation(rows)[: int(cfg.augmented_photos)]
    aug, ok = augmented_vectors(encode, [paths[i] for i in sample], seed)
    sample = sample[ok]
    n_hold = int(round(len(sample) * float(cfg.holdout_fraction)))
    hold, train = np.arange(n_hold), np.arange(n_hold, len(sample))
    accuracy = None
    if n_hold:
        probe = fit_head(np.vstack([image_vectors[rows], aug[train]]),
                         [*cats[rows], *cats[sample[train]]], cfg.C, cfg.max_iter, seed)
        pred = [probe.classes[int(np.argmax(probe.probabilities(v)))] for v in aug[hold]]
        accuracy = float(np.mean([p == c for p, c in zip(pred, cats[sample[hold]], strict=True)]))
    head = fit_head(np.vstack([image_vectors[rows], aug]), [*cats[rows], *cats[sample]], cfg.C, cfg.max_iter, seed)
    info = {"classes": len(head.classes), "catalog_rows": int(len(rows)), "augmented_photos": int(len(sample)),
            "heldout_augmented_accuracy": accuracy}   # no timings: the build info is compared across runs
    log.info("photo category head (%.1f s): %s", time.perf_counter() - t0, info)
    return head, info


def confident_photo_category(state: Any, q_photo: np.ndarray) -> str | None:
    """The category the head names for a query photo (``EngineState``: its head and
    ``retrieval.photo.category_confidence``), or None (no head, the step off, or not sure enough)."""
    head, threshold = state.photo_category, state.retrieval.photo.category_confidence
    if head is None or threshold is None:
        return None
    return head.confident(q_photo, float(threshold))[0]
