"""BundlePusher logic: stage the serving bundle, checksum it, push it atomically (modules/bundle.py)."""
from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from modules.bundle import push_atomic, write_manifest

log = logging.getLogger(__name__)
SERVING_SUBDIR = "Format-Serving"


def default_version(data_hash: str) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + f"-{data_hash[:8]}"


def stage_bundle(
    staging: Path,
    *,
    search_dir: str,
    ranker_dir: str,
    transform_dir: str,
    two_tower_dir: str | None,
    params: dict[str, Any],
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
    text_encoder_from_params(params).export_savedmodel(staging / layout["text_encoder"])
    if two_tower_dir:
        layout["model"] = "model/two_tower/1"
        shutil.copytree(two_tower_dir, staging / layout["model"])
    else:
        layout["model"] = layout["text_encoder"]  # no recommender history: the text encoder is the served model
    return layout


def push(
    staging: Path, serving_dir: str, version: str, layout: dict[str, str], metrics_file: str, extra: dict[str, Any]
) -> Path:
    metrics = json.loads(Path(metrics_file).read_text()) if metrics_file and Path(metrics_file).is_file() else {}
    manifest_extra = {"version": version, "components": layout, "metrics": metrics, **extra}
    write_manifest(staging, manifest_extra)
    final = push_atomic(staging, serving_dir, version)
    shutil.rmtree(staging, ignore_errors=True)
    return final
