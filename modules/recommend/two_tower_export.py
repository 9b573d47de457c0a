"""Two-tower stage 4, export and serving: the SavedModel with its two signatures, the ``two_tower_inputs.json`` that
describes how to build every input, and :class:`SavedTwoTower` (what the hybrid recommender loads).

Exported SavedModel signatures (see ``two_tower_inputs.json`` written next to ``saved_model.pb``):
    query_embedding(user_id: string [None], history_emb: float32 [None, C], taste: float32 [None, T])
        -> {"embedding": float32 [None, D]}
    candidate_embedding(item_id: string [None], content: float32 [None, C], category: string [None],
                        brand: string [None], price: float32 [None]) -> {"embedding": float32 [None, D]}

The candidate signature takes raw item features and applies the TFX Transform graph the tower was trained on
(:mod:`modules.transform`, tracked in the SavedModel with its vocabulary assets), so a live-added item gets exactly
the training-time features and callers (serving, TF Serving) pass raw columns.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from modules.recommend.two_tower_model import TwoTowerModel  # noqa: E402

INPUTS_JSON = "two_tower_inputs.json"


class _ExportModule(tf.Module):
    def __init__(self, model: TwoTowerModel) -> None:
        # here, not at the top: serving loads SavedTwoTower from this module without importing tensorflow_transform
        from modules.recommend.item_transform import FLOAT_FEATURES, INT_FEATURES, raw_item_inputs

        super().__init__()
        self.query_tower = model.query_tower
        self.candidate_tower = model.candidate_tower
        tft_output = model.item_transform.output
        self.transform_layer = tft_output.transform_features_layer()  # tracked: the graph and its assets are saved
        c, t = model.content_dim, model.taste_dim

        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.string, name="user_id"),
                tf.TensorSpec([None, c], tf.float32, name="history_emb"),
                tf.TensorSpec([None, t], tf.float32, name="taste"),
            ]
        )
        def query_embedding(user_id: tf.Tensor, history_emb: tf.Tensor, taste: tf.Tensor) -> dict[str, tf.Tensor]:
            feats = {"user_id": user_id, "history_emb": history_emb, "taste": taste}
            return {"embedding": self.query_tower(feats, training=False)}

        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.string, name="item_id"),
                tf.TensorSpec([None, c], tf.float32, name="content"),
                tf.TensorSpec([None], tf.string, name="category"),
                tf.TensorSpec([None], tf.string, name="brand"),
                tf.TensorSpec([None], tf.float32, name="price"),
            ]
        )
        def candidate_embedding(
            item_id: tf.Tensor, content: tf.Tensor, category: tf.Tensor, brand: tf.Tensor, price: tf.Tensor
        ) -> dict[str, tf.Tensor]:
            transformed = self.transform_layer(raw_item_inputs(tft_output, item_id, category, brand, price))
            feats = {k: tf.reshape(transformed[k], [-1]) for k in INT_FEATURES + FLOAT_FEATURES}
            return {"embedding": self.candidate_tower({**feats, "content": content}, training=False)}

        self.query_embedding = query_embedding
        self.candidate_embedding = candidate_embedding



def export_two_tower(model: TwoTowerModel, export_dir: str | Path, content_layout: str = "") -> Path:
    """Write the SavedModel (signatures ``query_embedding`` and ``candidate_embedding``) into ``export_dir``.

    ``export_dir`` is used as is (TF Serving layout means the caller passes ``.../two_tower/<version>``).
    ``two_tower_inputs.json`` is written inside it, describing every input and how to build it.
    """
    export_dir = Path(export_dir)
    export_dir.parent.mkdir(parents=True, exist_ok=True)
    module = _ExportModule(model)
    tf.saved_model.save(
        module,
        str(export_dir),
        signatures={"query_embedding": module.query_embedding, "candidate_embedding": module.candidate_embedding},
    )
    f = model.item_features
    spec = {
        "embedding_dim": model.embedding_dim,
        "normalised": "L2",
        "score": "dot product of query and candidate embeddings (cosine)",
        "signatures": {
            "query_embedding": {
                "user_id": "string [None]; unknown ids map to the OOV bucket",
                "history_emb": f"float32 [None, {model.content_dim}]; mean content vector of the user's last "
                f"{model.params['history_len']} interactions (zeros when none)",
                "taste": f"float32 [None, {model.taste_dim}]; category distribution over category_vocab, then "
                f"price-band distribution over {f.n_price_bands} bands (band = searchsorted(price_boundaries, price, 'right'))",
            },
            "candidate_embedding": {
                "transform": "item_id, category, brand and price go through the TFX Transform graph inside the "
                "signature (modules/transform.py: vocabularies with an OOV bucket, quantile price bucket, z-scored "
                "log price)",
                "item_id": "string [None]; new SKUs map to the OOV bucket",
                "content": f"float32 [None, {model.content_dim}]; {content_layout or 'item content vector'}",
                "category": "string [None]",
                "brand": "string [None]",
                "price": "float32 [None]",
            },
        },
        "content_dim": model.content_dim,
        "content": content_layout,
        "taste_dim": model.taste_dim,
        "history_len": int(model.params["history_len"]),
        **f.to_json(),  # the query side's taste vocabulary and price bands
        "transform_sizes": model.item_transform.sizes(),
        "metrics": {k: v for k, v in model.metrics.items() if k != "history"},
    }
    (export_dir / INPUTS_JSON).write_text(json.dumps(spec, indent=2))
    return export_dir



class SavedTwoTower:
    """An exported two-tower SavedModel, with helpers that build its inputs (used by the hybrid recommender)."""

    def __init__(self, export_dir: str | Path) -> None:
        self.export_dir = Path(export_dir)
        self.spec = json.loads((self.export_dir / INPUTS_JSON).read_text())
        self._loaded = tf.saved_model.load(str(self.export_dir))
        self._query = self._loaded.signatures["query_embedding"]
        self._candidate = self._loaded.signatures["candidate_embedding"]

    def query_embeddings(self, user_ids: list[str], history_emb: np.ndarray, taste: np.ndarray) -> np.ndarray:
        out = self._query(
            user_id=tf.constant(np.asarray(user_ids, dtype=str)),
            history_emb=tf.constant(history_emb, tf.float32),
            taste=tf.constant(taste, tf.float32),
        )
        return out["embedding"].numpy()

    def candidate_embeddings(
        self, item_ids: list[str], content: np.ndarray, category: list[str], brand: list[str], price: np.ndarray,
        batch: int = 4096,
    ) -> np.ndarray:
        out = []
        for s in range(0, len(item_ids), batch):
            out.append(
                self._candidate(
                    item_id=tf.constant(np.asarray(item_ids[s : s + batch], dtype=str)),
                    content=tf.constant(np.asarray(content[s : s + batch], np.float32)),
                    category=tf.constant(np.asarray(category[s : s + batch], dtype=str)),
                    brand=tf.constant(np.asarray(brand[s : s + batch], dtype=str)),
                    price=tf.constant(np.asarray(price[s : s + batch], np.float32)),
                )["embedding"].numpy()
            )
        return np.concatenate(out) if out else np.zeros((0, int(self.spec["embedding_dim"])), np.float32)

