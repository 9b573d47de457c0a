"""Stage 6b, same photo: a photo query whose photo IS a candidate's catalog photo (re-encoded, resized: a shopper's
copy of it) puts that candidate first.

The image vectors give a product's own re-encoded photo a cosine of only ~0.82-0.90, and the re-ranker may order
visually similar products above it. The fingerprints (``modules.encoders.fingerprint``) tell "the same photo" from
"a similar product": a candidate whose fingerprint is within ``retrieval.photo.duplicate_distance`` of the query
photo's moves to the top, closest first; the other candidates keep their order. Only the final candidates are
compared (no catalog scan), so filters and deletions hold as they are.

Photo queries only (``search_image``): a composed query ("like this but in navy") asks for a change, and its photo
is usually a catalog photo, so its own item would be the wrong first answer. Off when the engine has no
fingerprints (built or saved before them) or the threshold is null.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from modules.encoders.fingerprint import fingerprint_distance, fingerprint_grid, photo_fingerprint
from modules.search.features import take

if TYPE_CHECKING:
    from modules.search.state import EngineState


def promote_same_photo(state: EngineState, feats: dict[str, np.ndarray], img: Image.Image | None
                       ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """The candidates with same-photo matches first (closest first, the rest in their order) and each candidate's
    fingerprint distance where it matched (NaN elsewhere); ``(feats, None)`` when nothing matched or the step is
    off."""
    threshold = state.retrieval.photo.duplicate_distance
    stored = state.photo_fingerprints
    rows = feats["row"]
    if img is None or threshold is None or stored is None or not len(rows):
        return feats, None
    dist = fingerprint_distance(photo_fingerprint(img, fingerprint_grid(stored)), stored[rows])
    same = np.flatnonzero(dist < threshold)
    if not len(same):
        return feats, None
    first = same[np.argsort(dist[same], kind="stable")]
    order = np.concatenate([first, np.setdiff1d(np.arange(len(rows)), same)])   # setdiff1d: sorted = kept order
    return take(feats, order), np.where(dist < threshold, dist, np.nan)[order]
