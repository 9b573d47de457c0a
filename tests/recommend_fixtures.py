"""What the recommender tests share: the tiny catalog split at its cutoff, with cheap content vectors."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from modules.data.data_io import item_text, load_interactions, load_items, load_manifest, new_item_ids
from modules.recommend.features import temporal_split


def tfidf_content(items: pd.DataFrame, dim: int = 48, seed: int = 42) -> np.ndarray:
    """Cheap deterministic text embeddings (TF-IDF + SVD) so the tests need no language model."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    x = TfidfVectorizer(min_df=1).fit_transform(item_text(items))
    emb = TruncatedSVD(n_components=dim, random_state=seed).fit_transform(x).astype(np.float32)
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-9)


def tiny_split(data_dir: Path, params: dict[str, Any]) -> SimpleNamespace:
    """The catalog in ``data_dir`` split at its cutoff: items, interactions (all / train / test), cutoff, params,
    TF-IDF content vectors (``text``) and the new item ids."""
    items = load_items(data_dir)
    cutoff = int(load_manifest(data_dir)["cutoff_ts"])
    inter = load_interactions(data_dir)
    train, test = temporal_split(inter, cutoff)
    return SimpleNamespace(data_dir=data_dir, items=items, inter=inter, train=train, test=test, cutoff=cutoff,
                           params=params, text=tfidf_content(items), new_ids=new_item_ids(data_dir, items))


def write_transformed_items(transformed: Any, items: pd.DataFrame, out_dir: Path, seed: int = 0) -> Path:
    """Items' transformed features in the layout of TFX Transform's ``transformed_examples`` (gzipped tf.Examples
    under ``Split-train/`` and ``Split-eval/``), rows shuffled with ``seed`` so readers must join by item_id."""
    import tensorflow as tf

    from modules.recommend.item_transform import FLOAT_FEATURES, transform_rows

    feats = transform_rows(transformed.output, items)
    ids = items["item_id"].astype(str).to_numpy()
    order = np.random.default_rng(seed).permutation(len(ids))
    for split, rows in (("train", order[::2]), ("eval", order[1::2])):
        (out_dir / f"Split-{split}").mkdir(parents=True, exist_ok=True)
        with tf.io.TFRecordWriter(str(out_dir / f"Split-{split}" / "transformed_examples.gz"), options="GZIP") as w:
            for r in rows:
                f = {"item_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[ids[r].encode()]))}
                for k, v in feats.items():
                    f[k] = (tf.train.Feature(float_list=tf.train.FloatList(value=[float(v[r])])) if k in FLOAT_FEATURES
                            else tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v[r])])))
                w.write(tf.train.Example(features=tf.train.Features(feature=f)).SerializeToString())
    return out_dir
