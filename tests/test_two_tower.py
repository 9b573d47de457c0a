"""Two-tower recommender on the tiny generated catalog: trains, exports, reloads, embeds new SKUs sensibly."""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from executor_fixtures import run_pipeline_transform
from recommend_fixtures import tiny_split

from modules.config import load_params
from modules.recommend.two_tower import run_fn, train_two_tower
from modules.recommend.two_tower_export import INPUTS_JSON, SavedTwoTower, export_two_tower


@pytest.fixture(scope="module")
def tiny(tiny_catalog: Path) -> SimpleNamespace:
    params = load_params()
    params["recommend"]["two_tower"]["epochs"] = 6
    params["recommend"]["two_tower"]["batch_size"] = 256
    return tiny_split(tiny_catalog, params)


@pytest.fixture(scope="module")
def model(tiny: SimpleNamespace):
    return train_two_tower(tiny.train, tiny.items, tiny.text, tiny.params, seed=42)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_two_tower(model, tmp_path_factory.mktemp("tt_export") / "two_tower" / "1", "tfidf-svd (48-d)")


def test_training_uses_training_window_only(model, tiny: SimpleNamespace) -> None:
    assert model.metrics["max_train_ts"] < tiny.cutoff
    assert model.metrics["n_train_examples"] + model.metrics["n_eval_examples"] <= len(tiny.train)
    assert 0.0 <= model.metrics["eval_recall@10"] <= 1.0
    assert model.metrics["best_epoch"] >= 1


def test_training_rejects_post_cutoff_rows_when_cutoff_given(tiny: SimpleNamespace) -> None:
    with pytest.raises(ValueError, match="no training interactions"):
        train_two_tower(tiny.test, tiny.items, tiny.text, tiny.params, cutoff_ts=int(tiny.test["ts"].min()))


def test_bad_content_shape_is_a_clear_error(tiny: SimpleNamespace) -> None:
    with pytest.raises(ValueError, match="content_emb must be"):
        train_two_tower(tiny.train, tiny.items, tiny.text[:10], tiny.params)


def test_exported_signatures_load_and_embed(exported: Path, model) -> None:
    loaded = tf.saved_model.load(str(exported))
    assert {"query_embedding", "candidate_embedding"} <= set(loaded.signatures)
    spec = json.loads((exported / INPUTS_JSON).read_text())
    d, c, t = spec["embedding_dim"], spec["content_dim"], spec["taste_dim"]
    q = loaded.signatures["query_embedding"](
        user_id=tf.constant(["u_00001", "never-seen"]), history_emb=tf.zeros([2, c]), taste=tf.zeros([2, t])
    )["embedding"].numpy()
    cand = loaded.signatures["candidate_embedding"](
        item_id=tf.constant(["sku_000001"]), content=tf.constant(model.content[:1]), category=tf.constant(["dresses"]),
        brand=tf.constant(["Urban Thread"]), price=tf.constant([10.0]),
    )["embedding"].numpy()
    assert q.shape == (2, d) and cand.shape == (1, d)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(cand, axis=1), 1.0, atol=1e-4)


def test_raw_feature_signature_equals_the_training_embeddings(exported: Path, model, tiny: SimpleNamespace) -> None:
    """The exported signature applies the transform graph to raw columns: for every catalog item it gives the
    embedding the tower computed in training from Transform's features."""
    f = model.item_features
    assert model.item_transform.sizes()["price_bucket"] == tiny.params["recommend"]["n_price_bands"]
    raw = SavedTwoTower(exported).candidate_embeddings(f.item_ids, model.content, list(f.category), list(f.brand),
                                                       f.price)
    np.testing.assert_allclose(raw, model.candidate_embeddings(), atol=1e-5)


def test_new_item_embedding_is_close_to_its_category(exported: Path, tiny: SimpleNamespace, model) -> None:
    """A brand-new SKU (OOV id) built from a known item's content lands nearer its own category."""
    saved = SavedTwoTower(exported)
    f = model.item_features
    train_items = set(tiny.train["item_id"])
    warm = np.array([i for i, iid in enumerate(f.item_ids) if iid in train_items])
    warm_emb = model.candidate_embeddings()[warm]
    warm_cat = f.category[warm]
    gaps = []
    for i in warm[:: max(1, len(warm) // 40)]:
        new = saved.candidate_embeddings([f"NEW-{f.item_ids[i]}"], model.content[i : i + 1], [f.category[i]],
                                         [f.brand[i]], f.price[i : i + 1])[0]
        assert np.linalg.norm(new) > 0.99
        sims = warm_emb @ new
        gaps.append(sims[warm_cat == f.category[i]].mean() - sims[warm_cat != f.category[i]].mean())
    assert np.mean(gaps) > 0.1
    assert np.mean(np.array(gaps) > 0) > 0.9


def _write_examples(df: pd.DataFrame, path: Path) -> None:
    with tf.io.TFRecordWriter(str(path), options="GZIP") as w:
        for r in df.itertuples(index=False):
            ex = tf.train.Example(features=tf.train.Features(feature={
                "user_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[r.user_id.encode()])),
                "item_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[r.item_id.encode()])),
                "event": tf.train.Feature(bytes_list=tf.train.BytesList(value=[r.event.encode()])),
                "ts": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(r.ts)])),
            }))
            w.write(ex.SerializeToString())


def test_run_fn_contract(tiny: SimpleNamespace, model, tmp_path: Path) -> None:
    """The TFX Trainer entry point reads gzipped tf.Examples + EmbeddingGen files + Transform's graph and transformed
    items, and exports a SavedModel whose raw-feature signature applies that graph."""
    (tmp_path / "Split-train").mkdir()
    (tmp_path / "Split-eval").mkdir()
    both = pd.concat([tiny.train, tiny.test])  # the pipeline may hand post-cutoff rows: run_fn must drop them
    _write_examples(both.iloc[::2], tmp_path / "Split-train" / "data.gz")
    _write_examples(both.iloc[1::2], tmp_path / "Split-eval" / "data.gz")
    emb_dir = tmp_path / "emb"
    emb_dir.mkdir()
    order = np.random.default_rng(0).permutation(len(tiny.items))  # stored order differs from items.csv
    np.save(emb_dir / "text.npy", tiny.text[order])
    (emb_dir / "item_ids.json").write_text(json.dumps(tiny.items["item_id"].iloc[order].tolist()))
    params = json.loads(json.dumps(tiny.params))
    params["recommend"]["two_tower"]["epochs"] = 1
    transform = run_pipeline_transform(tiny.data_dir, tmp_path / "tfx")  # the pipeline's own Transform, run here
    graph, examples = transform["transform_graph"].uri, transform["transformed_examples"].uri
    fn_args = SimpleNamespace(
        train_files=[str(tmp_path / "Split-train" / "*")], eval_files=[str(tmp_path / "Split-eval" / "*")],
        serving_model_dir=str(tmp_path / "serving"), model_run_dir=str(tmp_path / "run"),
        custom_config={"items_csv": str(tiny.data_dir / "items.csv"), "embeddings_dir": str(emb_dir),
                       "cutoff_ts": tiny.cutoff, "params": params, "transform_graph": graph,
                       "transformed_examples": str(examples)},
    )
    with pytest.raises(ValueError, match="transformed_examples"):
        run_fn(SimpleNamespace(**{**vars(fn_args), "custom_config": {
            k: v for k, v in fn_args.custom_config.items() if k != "transformed_examples"}}))
    run_fn(fn_args)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["max_train_ts"] < tiny.cutoff and "eval_recall@10" in metrics
    assert metrics["n_train_examples"] + metrics["n_eval_examples"] <= len(tiny.train)
    assert (tmp_path / "serving" / "saved_model.pb").is_file()
    spec = json.loads((tmp_path / "serving" / INPUTS_JSON).read_text())
    # every catalog item has its own id (Transform analysed both splits); buckets as params.yaml says
    assert spec["transform_sizes"]["item_id_idx"] == len(tiny.items) + 1
    assert spec["transform_sizes"]["price_bucket"] == params["recommend"]["n_price_bands"]
    assert spec["transform_sizes"] == model.item_transform.sizes()
    # the in-process analysis (what train_two_tower does outside the pipeline) gives Transform's features
    from modules.recommend.item_transform import item_transform

    piped, local = item_transform(tiny.items, 5, graph, examples).features, model.item_transform.features
    for key in ("item_id_idx", "category_idx", "brand_idx"):
        assert np.array_equal(piped[key], local[key]), key
    assert np.mean(piped["price_bucket"] == local["price_bucket"]) > 0.99
    np.testing.assert_allclose(piped["price_log_z"], local["price_log_z"], atol=1e-4)
    assert gzip.open(tmp_path / "Split-train" / "data.gz").read(1)  # really gzipped


def test_accidental_hit_mask_on_int_rows_equals_the_string_mask() -> None:
    """The in-batch mask compares int catalog rows: the same logits as comparing the (unique) id strings."""
    from tensorflow_recommenders.layers.loss import RemoveAccidentalHits

    from modules.recommend.two_tower_data import make_dataset

    rng = np.random.default_rng(0)
    n_items, n = 30, 64
    ids = np.array([f"sku-{i:03d}" for i in range(n_items)])
    tables = {"content": tf.constant(rng.normal(size=(n_items, 4)).astype(np.float32)), "item_id": tf.constant(ids),
              "category": tf.constant(ids), "brand": tf.constant(ids),
              "price": tf.constant(np.ones(n_items, np.float32))}
    item_idx = rng.integers(0, n_items, n)  # many in-batch repeats
    ds = make_dataset(np.array([f"u{i % 7}" for i in range(n)]), item_idx, np.full((n, 3), -1), np.zeros((n, 2),
                       np.float32), np.ones(n, np.float32), np.ones(n, np.float32), tables, 32, shuffle_seed=1)
    layer = RemoveAccidentalHits()
    for b in ds:
        assert [s.decode() for s in b["item_id"].numpy()] == ids[b["item_idx"].numpy()].tolist()
        k = int(b["item_idx"].shape[0])
        labels, logits = tf.eye(k), tf.constant(rng.normal(size=(k, k)).astype(np.float32))
        by_int = layer(labels, logits, b["item_idx"]).numpy()
        assert np.array_equal(by_int, layer(labels, logits, b["item_id"]).numpy())
        assert (by_int < -1e8).any()  # the batch did hold accidental hits
