"""Turns DATA_DIR tables into tf.Example splits (gzipped TFRecords in TFX's Examples layout).

- items: every column as bytes except the numeric ones (``price`` float, ``created_at`` int). A value
  that does not parse stays bytes, so TFDV reports a type anomaly instead of the value being dropped.
  Empty cells are left out, so TFDV's presence rules see them. Split: ``created_at < cutoff_ts`` is
  train, newer items (the held-back new SKUs) are eval; without a cutoff, a stable hash of item_id.
- interactions: split by time, ``ts < cutoff_ts`` train, the rest eval.
- queries: the ``split`` field chosen by the generator (judged queries are split by query).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import tensorflow as tf

from components.data_check.rules import read_csv_text

log = logging.getLogger(__name__)
SPLITS = ("train", "eval")
ITEM_NUMERIC = {"price": float, "created_at": int}
INTERACTION_NUMERIC = {"ts": int}


def data_fingerprint(data_dir: str | Path) -> str:
    """sha256 over the input tables and the image listing (name, size, mtime): the run's data hash."""
    data_dir = Path(data_dir)
    digest = hashlib.sha256()
    for name in ("items.csv", "interactions.csv", "queries.jsonl", "manifest.json"):
        path = data_dir / name
        digest.update(name.encode())
        if path.is_file():
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    images = data_dir / "images"
    if images.is_dir():
        for root, _dirs, files in sorted(os.walk(images)):
            for fname in sorted(files):
                st = os.stat(os.path.join(root, fname))
                digest.update(f"{os.path.relpath(os.path.join(root, fname), data_dir)}:{st.st_size}:{int(st.st_mtime)}".encode())
    return digest.hexdigest()


def _feature(value: Any, kind: type | None) -> tf.train.Feature | None:
    """One tf.train.Feature; None for an empty cell. Numeric columns fall back to bytes when unparseable."""
    if isinstance(value, list):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(v).encode() for v in value]))
    if isinstance(value, bool):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
    text = "" if value is None else str(value)
    if text.strip() == "":
        return None
    if kind is float:
        try:
            return tf.train.Feature(float_list=tf.train.FloatList(value=[float(text)]))
        except ValueError:
            pass
    elif kind is int:
        try:
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(float(text))]))
        except ValueError:
            pass
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()]))


def to_example(row: dict[str, Any], numeric: dict[str, type]) -> bytes:
    feats = {}
    for key, value in row.items():
        feat = _feature(value, numeric.get(key))
        if feat is not None:
            feats[key] = feat
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def write_splits(uri: str, rows_by_split: dict[str, Iterable[bytes]]) -> dict[str, int]:
    """Write ``uri/Split-<name>/data_tfrecord-00000-of-00001.gz`` (``uri``: a path or any tf.io.gfile URI); return
    the row count per split."""
    counts = {}
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    for split, rows in rows_by_split.items():
        split_dir = os.path.join(uri, f"Split-{split}")
        tf.io.gfile.makedirs(split_dir)
        n = 0
        with tf.io.TFRecordWriter(os.path.join(split_dir, "data_tfrecord-00000-of-00001.gz"), options) as w:
            for record in rows:
                w.write(record)
                n += 1
        counts[split] = n
    return counts


def _stable_bucket(key: str, buckets: int = 10) -> int:
    return int(hashlib.md5(key.encode()).hexdigest(), 16) % buckets


def items_examples(data_dir: Path, cutoff: int | None) -> dict[str, list[bytes]]:
    items = read_csv_text(data_dir / "items.csv")
    out: dict[str, list[bytes]] = {s: [] for s in SPLITS}
    for row in items.to_dict("records"):
        if cutoff is not None:
            try:
                is_new = int(float(row.get("created_at", ""))) >= cutoff
            except ValueError:
                is_new = False
        else:
            is_new = _stable_bucket(str(row.get("item_id", ""))) == 0
        out["eval" if is_new else "train"].append(to_example(row, ITEM_NUMERIC))
    return out


def interactions_examples(data_dir: Path, cutoff: int | None) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {s: [] for s in SPLITS}
    path = data_dir / "interactions.csv"
    if not path.is_file() or path.stat().st_size == 0:
        return out
    inter = read_csv_text(path)
    for row in inter.to_dict("records"):
        try:
            ts = int(float(row.get("ts", "")))
        except ValueError:
            ts = -1
        train = ts < cutoff if cutoff is not None else _stable_bucket(f"{row.get('user_id')}|{ts}") != 0
        out["train" if train else "eval"].append(to_example(row, INTERACTION_NUMERIC))
    return out


def queries_examples(data_dir: Path) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {s: [] for s in SPLITS}
    path = data_dir / "queries.jsonl"
    if not path.is_file():
        return out
    with path.open() as f:
        for line in f:
            if not line.strip():
                continue
            q = json.loads(line)
            row = {
                "qid": q.get("qid", ""),
                "kind": q.get("kind", ""),
                "text": q.get("text", ""),
                "image_path": q.get("image_path", ""),
                "relevance": json.dumps(q.get("relevance", {}), sort_keys=True),
                "n_relevant": len(q.get("relevance", {}) or {}),
                "cold": bool(q.get("cold", False)),
                "source": q.get("source", "judged"),
            }
            split = q.get("split") if q.get("split") in SPLITS else "eval"
            out[split].append(to_example(row, {"n_relevant": int}))
    return out
