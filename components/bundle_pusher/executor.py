"""BundlePusher logic: stage the serving bundle, checksum it, push it atomically (modules/bundle.py)."""
from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from modules.bundle import push_atomic, read_latest, write_manifest
from modules.config import param_seed

log = logging.getLogger(__name__)


def default_version(data_hash: str) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + f"-{data_hash[:8]}"


def same_as_serving(serving_dir: str, engine_id: int, ranker_id: int, data_hash: str) -> str | None:
    """The LATEST version when it already holds these exact artifacts (a re-evaluation, not a new model)."""
    latest = read_latest(serving_dir)
    manifest_path = Path(serving_dir) / (latest or "") / "manifest.json"
    if not latest or not manifest_path.is_file():
        return None
    manifest = json.loads(manifest_path.read_text())
    ids = manifest.get("mlmd_ids", {})
    if ids.get("search_engine") == engine_id and ids.get("ranker") == ranker_id and manifest.get("data_hash") == data_hash:
        return latest
    return None


def stage_bundle(
    staging: Path,
    *,
    search_dir: str,
    ranker_dir: str,
    transform_dir: str,
    two_tower_dir: str | None,
    params: dict[str, Any],
    data_dir: str,
    emb_dir: str,
) -> dict[str, str]:
    """Lay the bundle out as docs/architecture.md describes; return {role: relative path}."""
    from modules.encoders.text import text_encoder_from_params

    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    layout = {"index": "search", "ranker": "ranker", "transform": "model/transform", "text_encoder": "model/text_encoder/1"}
    shutil.copytree(search_dir, staging / layout["index"])
    shutil.copytree(ranker_dir, staging / layout["ranker"])
    shutil.copytree(transform_dir, staging / layout["transform"])
    encoder = text_encoder_from_params(params)
    encoder.export_savedmodel(staging / layout["text_encoder"])   # stays for TF Serving
    stage_text_runtime(encoder, params, staging, layout)
    if two_tower_dir:
        layout["model"] = "model/two_tower/1"
        shutil.copytree(two_tower_dir, staging / layout["model"])
    else:
        layout["model"] = layout["text_encoder"]  # no recommender history: the text encoder is the served model
    layout["images"] = "images"
    copy_catalog_images(data_dir, staging)
    layout["recommend"] = "recommend"
    build_recommender_dir(
        staging / layout["recommend"], data_dir, emb_dir, params,
        staging / layout["model"] if two_tower_dir else None, layout.get("model") if two_tower_dir else None,
    )
    return layout


def stage_text_runtime(encoder: Any, params: dict[str, Any], staging: Path, layout: dict[str, str]) -> None:
    """The ONNX query encoder the server runs (encoders.text.runtime; kind tf: none, the server uses TF)."""
    from modules.encoders.text_runtime import cached_export, copy_runtime, runtime_params

    cfg = runtime_params(params)
    if cfg.kind != "onnx":
        return
    layout["text_runtime"] = "model/text_runtime"
    copy_runtime(cached_export(encoder, cfg.precision), staging / layout["text_runtime"])


def copy_catalog_images(data_dir: str, staging: Path) -> int:
    """Copy each item's photo into the bundle at its DATA_DIR-relative image_path (the server reads only the bundle).

    Always a real copy: a hard link would let a later rewrite of DATA_DIR change a pushed (checksummed) bundle.
    """
    from components.common import load_items

    root = Path(data_dir).resolve()
    copied = 0
    for rel in load_items(data_dir)["image_path"].fillna("").astype(str):
        if not rel:
            continue
        src = (root / rel).resolve()
        if root not in src.parents or not src.is_file():  # never follow a path out of DATA_DIR
            continue
        dst = staging / Path(rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
        copied += 1
    log.info("bundle: %d catalog images staged", copied)
    return copied


def build_recommender_dir(
    out: Path, data_dir: str, emb_dir: str, params: dict[str, Any], two_tower_dir: Path | None, two_tower_rel: str | None
) -> None:
    """HybridRecommender.save() from the training-window interactions (content-only without history)."""
    import pandas as pd

    from components.common import load_items
    from modules.data.data_io import load_embedding_rows, load_photo_colours, training_interactions
    from modules.recommend.hybrid import build_recommender

    items = load_items(data_dir)
    ids = items["item_id"].astype(str).tolist()
    text, image, color = load_embedding_rows(emb_dir, ids)
    rec = build_recommender(items, pd.DataFrame(training_interactions(data_dir)), text, image, color, params,
                            seed=param_seed(params), two_tower_dir=two_tower_dir,
                            photo_colours=load_photo_colours(emb_dir, ids))
    rec.save(out)
    config_path = out / "config.json"
    config = json.loads(config_path.read_text())
    config["two_tower_dir"] = two_tower_rel  # bundle-relative, never a pipeline-root path
    config_path.write_text(json.dumps(config, indent=2))


def push(
    staging: Path, serving_dir: str, version: str, layout: dict[str, str], metrics_file: str, extra: dict[str, Any]
) -> Path:
    metrics = json.loads(Path(metrics_file).read_text()) if metrics_file and Path(metrics_file).is_file() else {}
    manifest_extra = {"version": version, "components": layout, "metrics": metrics, **extra}
    write_manifest(staging, manifest_extra)
    final = push_atomic(staging, serving_dir, version)
    shutil.rmtree(staging, ignore_errors=True)
    return final
