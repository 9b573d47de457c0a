"""The items' TFX Transform features (modules/transform.py via modules/recommend/item_transform.py): the
preprocessing_fn's outputs, the per-item table aligned to catalog rows, and the pipeline wiring that hands
Transform's outputs to the two-tower trainer and the index builder."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from recommend_fixtures import write_transformed_items

from modules.config import load_params
from modules.recommend.item_transform import INT_FEATURES, item_transform, transform_rows


def _items(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({
        "item_id": [f"sku_{i:03d}" for i in range(n)],
        "category": rng.choice(["Dresses", "shoes ", "bags"], n),
        "brand": rng.choice(["Acme", "Zed"], n),
        "price": np.round(rng.uniform(5.0, 300.0, n), 2),
    })


@pytest.fixture(scope="module")
def analysed():
    return item_transform(_items(), 3)


def test_preprocessing_fn_outputs_follow_the_bucket_count(analysed) -> None:
    items = _items()
    f, sizes = analysed.features, analysed.sizes()
    assert analysed.source == "in_process" and analysed.item_ids == items["item_id"].tolist()
    assert sizes == {"item_id_idx": 41, "category_idx": 4, "brand_idx": 3, "price_bucket": 3}  # vocab + 1 OOV
    assert set(np.unique(f["price_bucket"])) == {0, 1, 2}
    order = np.argsort(items["price"].to_numpy())
    assert np.all(np.diff(f["price_bucket"][order]) >= 0)  # quantile buckets follow price
    assert np.all(np.diff(f["price_log_z"][order]) > 0)
    assert abs(f["price_log_z"].mean()) < 1e-4 and abs(f["price_log_z"].std() - 1.0) < 1e-3
    assert len(set(f["item_id_idx"])) == len(items)
    # categories are lower-cased and stripped: "shoes " and "SHOES" share an index
    cat = dict(zip(items["category"], f["category_idx"], strict=True))
    assert transform_rows(analysed.output, pd.DataFrame({"item_id": ["x"], "category": ["SHOES"], "brand": ["Acme"],
                                                          "price": [1.0]}))["category_idx"][0] == cat["shoes "]


def test_unknown_values_map_to_the_oov_bucket(analysed) -> None:
    new = pd.DataFrame({"item_id": ["NEW"], "category": ["hats"], "brand": ["Nobody"], "price": [99.0]})
    out = transform_rows(analysed.output, new)
    sizes = analysed.sizes()
    for key in ("item_id_idx", "category_idx", "brand_idx"):
        assert out[key][0] == sizes[key] - 1


def test_item_table_from_transformed_examples_is_aligned_to_catalog_rows(analysed, tmp_path: Path) -> None:
    """Transform's transformed examples come in split and shuffled: the table follows the catalog's row order."""
    items = _items()
    write_transformed_items(analysed, items, tmp_path / "examples", seed=1)
    catalog = items.sample(frac=1.0, random_state=7).reset_index(drop=True)  # another catalog row order
    table = item_transform(catalog, 3, analysed.transform_dir, tmp_path / "examples")
    assert table.source == "transformed_examples" and table.item_ids == catalog["item_id"].tolist()
    direct = transform_rows(analysed.output, catalog)
    for key in INT_FEATURES:
        assert np.array_equal(table.features[key], direct[key])
    np.testing.assert_allclose(table.features["price_log_z"], direct["price_log_z"], rtol=1e-6)
    with pytest.raises(ValueError, match="no transformed row"):
        item_transform(pd.concat([catalog, catalog.head(1).assign(item_id="missing")]), 3, analysed.transform_dir,
                       tmp_path / "examples")


def test_pipeline_hands_transform_outputs_to_the_two_tower_and_the_index_builder(tiny_catalog: Path,
                                                                                  tmp_path: Path) -> None:
    from google.protobuf import json_format
    from tfx.proto import transform_pb2

    from pipelines.local_runner import build

    pipeline = build(str(tiny_catalog), str(tmp_path / "serving"), str(tmp_path / "root"), None)
    nodes = {c.id: c for c in pipeline.components}
    transform, trainer = nodes["Transform"], nodes["TwoTowerTrainer"]
    assert trainer.inputs["transform_graph"] is transform.outputs["transform_graph"]
    assert trainer.inputs["transformed_items"] is transform.outputs["transformed_examples"]
    builder = nodes["IndexBuilder"]  # the engine's price feature (modules/search/transformed.py)
    assert builder.inputs["transform_graph"] is transform.outputs["transform_graph"]
    assert builder.inputs["transformed_items"] is transform.outputs["transformed_examples"]
    splits = transform.exec_properties["splits_config"]
    if isinstance(splits, str):   # TFX may hold a proto exec property as its JSON text
        splits = json_format.Parse(splits, transform_pb2.SplitsConfig())
    assert set(splits.analyze) == {"train", "eval"}  # every catalog item
    config = transform.exec_properties["custom_config"]
    assert f'"n_price_bands": {load_params()["recommend"]["n_price_bands"]:d}' in str(config)
