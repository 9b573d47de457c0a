"""Helpers shared by the PixelMatch components: params, items, queries from Examples, image loading."""
from __future__ import annotations

import glob
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modules.config import load_params, param_seed

log = logging.getLogger(__name__)
# where a component writes a model artifact's payload inside ``artifact.uri`` (the layout TFX's Pusher expects)
SERVING_SUBDIR = "Format-Serving"


def params_from(params_json: str) -> dict[str, Any]:
    """The params the pipeline was built with (a JSON string, so a changed hyperparameter changes the
    TFX cache key); '' falls back to params.yaml as modules.config resolves it."""
    return json.loads(params_json) if params_json else load_params()


def params_and_seed(params_json: str) -> tuple[dict[str, Any], int]:
    """``params_from(params_json)`` and the run's seed (``params["seed"]``): what every trainer/builder takes."""
    params = params_from(params_json)
    return params, param_seed(params)


def record_output(artifact: Any, info_file: str, info: Mapping[str, Any], ints: Mapping[str, Any] | None = None,
                  strings: Mapping[str, Any] | None = None) -> None:
    """Finish a component's output artifact: ``info`` as indented JSON at ``artifact.uri/info_file`` (the summary
    each component leaves beside its payload), then the custom properties, ``ints`` as int and ``strings`` as str
    (what the pipeline's resolvers and the metadata store show)."""
    with open(os.path.join(artifact.uri, info_file), "w") as f:
        json.dump(info, f, indent=2)
    for key, value in (ints or {}).items():
        artifact.set_int_custom_property(key, int(value))
    for key, value in (strings or {}).items():
        artifact.set_string_custom_property(key, str(value))
    log.info("%s: %s, %s", artifact.uri, info_file, {**(ints or {}), **(strings or {})})


def load_items(data_dir: str | Path) -> pd.DataFrame:
    """The catalog through modules.data.data_io (the one reader every part uses)."""
    from modules.data.data_io import load_items as _load

    return _load(data_dir)


def read_examples(examples_artifact: Any, split: str) -> list[dict[str, Any]]:
    """Decode one split of an Examples artifact (gzipped TFRecords) into plain dicts (single values unwrapped)."""
    import tensorflow as tf

    files = sorted(glob.glob(os.path.join(examples_artifact.uri, f"Split-{split}", "*")))
    rows: list[dict[str, Any]] = []
    if not files:
        return rows
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator():
        ex = tf.train.Example.FromString(record)
        row: dict[str, Any] = {}
        for key, feat in ex.features.feature.items():
            kind = feat.WhichOneof("kind")
            values = list(getattr(feat, kind).value)
            if kind == "bytes_list":
                values = [v.decode() for v in values]
            row[key] = values[0] if len(values) == 1 else values
        rows.append(row)
    return rows


def read_queries(examples_artifact: Any, split: str) -> list[dict[str, Any]]:
    """Judged queries of one split, in the queries.jsonl shape (relevance as a dict)."""
    out = []
    for row in read_examples(examples_artifact, split):
        q = {
            "qid": row.get("qid", ""),
            "kind": row.get("kind", "text"),
            "text": row.get("text", ""),
            "image_path": row.get("image_path", ""),
            "relevance": json.loads(row.get("relevance", "{}")),
            "cold": bool(row.get("cold", 0)),
            "source": row.get("source", "judged"),
            "split": split,
        }
        out.append(q)
    return out


def write_json(path: str | Path, payload: Any) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2, sort_keys=True, default=_json_default))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)
