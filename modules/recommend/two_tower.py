"""Two-tower retrieval model (TensorFlow Recommenders on tf-keras): the training loop and the TFX Trainer entry point.

The candidate tower's item features are the TFX Transform features of :mod:`modules.transform` (vocabulary ids,
quantile price bucket, z-scored log price), read through :mod:`modules.recommend.item_transform`: Transform's
transformed items in the pipeline, the same ``preprocessing_fn`` analysed in-process elsewhere.

The stages a two-tower run passes through, one module each:
    :mod:`modules.recommend.two_tower_data`    settings, point-in-time examples, tf.data pipelines, the Trainer's inputs
    :mod:`modules.recommend.two_tower_model`   QueryTower, CandidateTower, the TFRS net, TwoTowerModel
    this module                                 :func:`train_two_tower` (fit, early stopping on Recall@k), :func:`run_fn`
    :mod:`modules.recommend.two_tower_export`  the SavedModel (query_embedding / candidate_embedding), SavedTwoTower

Training: in-batch sampled softmax (``tfrs.tasks.Retrieval``) with logQ correction
(``candidate_sampling_probability`` = the item's share of training interactions), accidental in-batch hits
removed (compared on int catalog rows, not on the id strings), event-weighted examples. Only training-window
interactions (``ts < cutoff_ts``) are ever used; the latest ``eval_fraction`` of that window is held out for early
stopping on Recall@k.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from modules.config import param_seed  # noqa: E402
from modules.recommend.item_transform import ItemTransform, item_transform  # noqa: E402
from modules.recommend.two_tower_data import (  # noqa: E402
    TrainingData,
    load_content_embeddings,
    read_interaction_examples,
    tower_params,
    training_data,
    validated_inputs,
)
from modules.recommend.two_tower_export import export_two_tower  # noqa: E402
from modules.recommend.two_tower_model import CandidateTower, QueryTower, TwoTowerModel, TwoTowerNet  # noqa: E402

log = logging.getLogger(__name__)


def _recall_at_k(model: TwoTowerNet, eval_ds: tf.data.Dataset, cand_emb: tf.Tensor, targets: np.ndarray, k: int) -> float:
    """Share of held-out (user, item) examples whose item is in the query's top k over the whole catalog."""
    hits, start = 0, 0
    for b in eval_ds:
        q = model.query_tower(b, training=False)
        top = tf.math.top_k(tf.matmul(q, cand_emb, transpose_b=True), k=min(k, int(cand_emb.shape[0]))).indices.numpy()
        t = targets[start : start + len(top)]
        hits += int((top == t[:, None]).any(axis=1).sum())
        start += len(top)
    return hits / max(start, 1)



def _fit(net: TwoTowerNet, model: TwoTowerModel, data: TrainingData, p: dict[str, Any]) -> dict[str, Any]:
    """Train epoch by epoch, keep the weights of the best early-stopping Recall@``eval_k`` (stop after
    ``early_stopping_patience`` epochs without a gain); returns the recall, best epoch and per-epoch history."""
    k = int(p["eval_k"])
    best_recall, best_epoch, best_weights, waited = -1.0, 0, None, 0
    history: list[dict[str, float]] = []
    for epoch in range(1, int(p["epochs"]) + 1):
        fit = net.fit(data.train_ds, epochs=1, verbose=0)
        cand = tf.constant(model.candidate_embeddings())
        recall = _recall_at_k(net, data.eval_ds, cand, data.eval_targets, k)
        history.append({"epoch": epoch, "loss": float(fit.history["loss"][-1]), f"eval_recall@{k}": recall})
        log.info("two-tower epoch %d loss %.4f eval recall@%d %.4f", epoch, history[-1]["loss"], k, recall)
        if recall > best_recall:
            best_recall, best_epoch, best_weights, waited = recall, epoch, net.get_weights(), 0
        else:
            waited += 1
            if waited >= int(p["early_stopping_patience"]):
                break
    if best_weights is not None:
        net.set_weights(best_weights)
    return {f"eval_recall@{k}": best_recall, "best_epoch": best_epoch, "history": history}


def train_two_tower(
    train_interactions: pd.DataFrame,
    items: pd.DataFrame,
    content_emb: np.ndarray,
    params: dict[str, Any],
    seed: int | None = None,
    cutoff_ts: int | None = None,
    transformed: ItemTransform | None = None,
) -> TwoTowerModel:
    """Train the two-tower model on training-window interactions.

    ``content_emb`` is (n_items, C) aligned with ``items.item_id`` (e.g. text and image embeddings
    concatenated). ``params`` is params.yaml, its ``recommend`` section or the ``two_tower`` section.
    When ``cutoff_ts`` is given, rows with ``ts >= cutoff_ts`` are dropped (defence in depth: callers
    should already pass the training window only). ``transformed``: the items' TFX Transform features (the pipeline
    passes Transform's outputs); when None the same ``preprocessing_fn`` is analysed in-process over ``items``.
    """
    seed = param_seed(params) if seed is None else seed
    p = tower_params(params)
    content_emb, feats, train = validated_inputs(train_interactions, items, content_emb, p, cutoff_ts)
    if transformed is None:
        transformed = item_transform(items, int(p["n_price_bands"]))
    if transformed.item_ids != feats.item_ids:
        raise ValueError("the transformed item features are not aligned with the catalog rows")
    keras.utils.set_random_seed(seed)
    data = training_data(train, feats, content_emb, transformed.features, p, seed)
    query_tower = QueryTower(data.user_vocab, p)
    candidate_tower = CandidateTower(transformed.sizes(), p)
    net = TwoTowerNet(query_tower, candidate_tower, float(p["temperature"]), bool(p["logq_correction"]))
    net.compile(optimizer=keras.optimizers.Adam(learning_rate=float(p["learning_rate"])))
    model = TwoTowerModel(query_tower, candidate_tower, feats, transformed, content_emb, data.user_vocab, p)
    fitted = _fit(net, model, data, p)
    k = int(p["eval_k"])
    model.metrics = {
        f"eval_recall@{k}": fitted[f"eval_recall@{k}"],
        "best_epoch": fitted["best_epoch"],
        "epochs_run": len(fitted["history"]),
        "n_train_examples": data.n_train,
        "batch_size": data.batch_size,
        "n_eval_examples": int(len(data.eval_targets)),
        "eval_window_start_ts": data.eval_start,
        "max_train_ts": data.max_train_ts,
        "history": fitted["history"],
    }
    return model


def run_fn(fn_args: Any) -> None:
    """TFX Trainer ``run_fn``.

    Reads ``fn_args.train_files`` and ``fn_args.eval_files`` (gzipped TFRecord tf.Examples: user_id, item_id,
    event bytes; ts int64), keeps only ``ts < cutoff_ts`` from both (the early-stopping slice is carved from the
    end of that training window, so the pipeline's own split never lets held-out data in), trains, exports the
    SavedModel to ``fn_args.serving_model_dir`` and writes ``metrics.json`` to ``fn_args.model_run_dir``.

    ``fn_args.custom_config``:
        items_csv: path to items.csv
        embeddings_dir: directory with ``text.npy`` (n, 384), optional ``image.npy`` (n, 384), and
            ``item_ids.json`` (list of the n item ids, in row order)
        cutoff_ts: int, the temporal split
        transform_graph: Transform's ``transform_graph`` directory (the graph of :mod:`modules.transform`)
        transformed_examples: Transform's ``transformed_examples`` directory (``Split-*/`` gzipped TFRecords), the
            items' features the candidate tower trains on (joined to the catalog rows by item_id)
        params: params.yaml dict (or its ``recommend`` section)
        seed: optional int (default: params["seed"], see modules.config.param_seed)
    """
    cfg = dict(fn_args.custom_config or {})
    for key in ("items_csv", "embeddings_dir", "cutoff_ts", "transform_graph", "transformed_examples"):
        if key not in cfg:
            raise ValueError(f"custom_config is missing {key!r}")
    params = cfg.get("params") or {}
    seed = int(cfg.get("seed", param_seed(params)))
    cutoff_ts = int(cfg["cutoff_ts"])
    items = pd.read_csv(cfg["items_csv"], dtype={"item_id": str, "category": str, "brand": str}, keep_default_na=False)
    interactions = pd.concat(
        [read_interaction_examples(fn_args.train_files), read_interaction_examples(fn_args.eval_files)], ignore_index=True
    ).drop_duplicates()
    train = interactions.loc[interactions["ts"] < cutoff_ts]
    content, desc = load_content_embeddings(cfg["embeddings_dir"], items["item_id"].astype(str).tolist())
    p = tower_params(params)
    transformed = item_transform(items, int(p["n_price_bands"]), cfg["transform_graph"], cfg["transformed_examples"])
    model = train_two_tower(train, items, content, params, seed=seed, cutoff_ts=cutoff_ts, transformed=transformed)
    export_two_tower(model, fn_args.serving_model_dir, content_layout=desc)
    run_dir = Path(fn_args.model_run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.json").write_text(json.dumps({**model.metrics, "cutoff_ts": cutoff_ts}, indent=2))

