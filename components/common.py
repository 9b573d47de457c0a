"""Helpers shared by the PixelMatch components: params, items, queries from Examples, local staging of artifact URIs."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
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
    (what the pipeline's resolvers and the metadata store show). Written through tf.io.gfile: the URI may be remote."""
    import tensorflow as tf

    tf.io.gfile.makedirs(artifact.uri)
    with tf.io.gfile.GFile(os.path.join(artifact.uri, info_file), "w") as f:
        f.write(json.dumps(info, indent=2))
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

    files = sorted(tf.io.gfile.glob(os.path.join(examples_artifact.uri, f"Split-{split}", "*")))
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


# --------------------------------------------------------------------------------- artifact URIs on any filesystem
def is_local(uri: str) -> bool:
    """A plain path (no ``scheme://``): the modules' pathlib code reads and writes it directly."""
    return "://" not in str(uri)


def copy_tree(src: str, dst: str) -> int:
    """Copy the directory tree ``src`` into ``dst`` through tf.io.gfile (either side a path or a URI such as
    ``gs://``, ``s3://``, ``ram://``); returns the number of files copied."""
    import tensorflow as tf

    src, n = str(src).rstrip("/"), 0
    for root, _dirs, files in tf.io.gfile.walk(src):
        rel = str(root)[len(src):].strip("/")
        target = os.path.join(dst, rel) if rel else str(dst)
        tf.io.gfile.makedirs(target)
        for name in files:
            tf.io.gfile.copy(os.path.join(root, name), os.path.join(target, name), overwrite=True)
            n += 1
    return n


def _uri(x: Any) -> str | None:
    return None if x is None else str(getattr(x, "uri", x))


@contextlib.contextmanager
def local_dirs(inputs: Mapping[str, Any] | None = None, outputs: Mapping[str, Any] | None = None
               ) -> Iterator[dict[str, str | None]]:
    """Local directories for a component body whose library code uses local paths (pathlib, numpy, FAISS, pandas).

    ``inputs`` / ``outputs``: name -> an artifact (its ``uri``), a URI string or a path (``None``: an absent optional
    input, yielded as ``None``). Yields name -> a local directory. A local path is yielded as is (no copy, no cost:
    the local runner's case). A non-local URI (``gs://``, ``s3://``, ``ram://``, as a Kubeflow pipeline root gives)
    is staged: an input is copied down to a temporary directory first; an output starts as an empty temporary
    directory and is copied up to its URI when the body finishes without an exception. The temporary directory is
    removed either way. Artifact URIs themselves are never changed, so properties that record a URI stay true."""
    inputs, outputs = dict(inputs or {}), dict(outputs or {})
    if set(inputs) & set(outputs):
        raise ValueError(f"names both input and output: {sorted(set(inputs) & set(outputs))}")
    local: dict[str, str | None] = {}
    staged_out: dict[str, str] = {}
    tmp: str | None = None
    try:
        for role, items in (("in", inputs), ("out", outputs)):
            for name, x in items.items():
                uri = _uri(x)
                if uri is None or is_local(uri):
                    local[name] = uri
                    continue
                tmp = tmp or tempfile.mkdtemp(prefix="pixelmatch-stage-")
                local[name] = os.path.join(tmp, role, name)
                os.makedirs(local[name])
                if role == "in":
                    log.info("staging %s: %d files from %s", name, copy_tree(uri, local[name]), uri)
                else:
                    staged_out[name] = uri
        yield local
        for name, uri in staged_out.items():
            log.info("staging %s: %d files to %s", name, copy_tree(local[name], uri), uri)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
