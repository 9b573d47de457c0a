"""The photo-category head: a logistic regression over the image space, trained on the catalog's photos and
generically augmented copies of them, names a photo query's category when sure enough; the query then gets
a hybrid-score boost for that category (not the re-ranker's ``category_match``) and a list of its nearest items
within it. Engines without a head (older bundles, the step off) search as before."""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw
from test_search import FakeImageEncoder, FakeTextEncoder

from modules.config import load_params
from modules.search import SearchEngine, document_text
from modules.search.encode import encode_query
from modules.search.filters import allowed_rows
from modules.search.persistence import HEAD_FILE
from modules.search.photo_category import PhotoCategoryHead, fit_head, train_photo_category
from modules.search.query import Intents
from modules.search.retrieve import Retrieved, retrieve
from modules.settings import load_section

PARAMS = copy.deepcopy(load_params())
PARAMS["retrieval"]["photo"]["category_confidence"] = 0.4   # as params.yaml; pinned so these tests keep the step on
CFG = load_section("retrieval.photo.category_head")
N = 24
CATEGORY_COLOUR = {"shoes": (200, 30, 30), "bags": (30, 60, 200)}


def photo(i: int, category: str) -> Image.Image:
    """A studio-like photo: light background, a product blob in its category's colour (seeded shape)."""
    rng = np.random.default_rng(i)
    img = Image.new("RGB", (96, 96), (245, 245, 245))
    ImageDraw.Draw(img).polygon([tuple(int(v) for v in rng.integers(10, 86, 2)) for _ in range(6)] +
                                [(30, 30), (66, 30), (66, 66), (30, 66)], fill=CATEGORY_COLOUR[category])
    return img


def catalog(tmp_path: Path) -> tuple[pd.DataFrame, list[Image.Image], list[Path]]:
    cats = [["shoes", "bags"][i % 2] for i in range(N)]
    photos = [photo(i, c) for i, c in enumerate(cats)]
    paths = []
    for i, p in enumerate(photos):
        paths.append(tmp_path / f"p{i:02d}.png")
        p.save(paths[-1])
    items = pd.DataFrame([{"item_id": f"p{i:02d}", "title": f"product {i}", "description": "", "category": c,
                           "price": 10.0 + i, "image_path": f"p{i:02d}.png"} for i, c in enumerate(cats)])
    return items, photos, paths


def test_fit_head_names_classes_abstains_and_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8)) * 4
    x = np.vstack([c + rng.normal(size=(30, 8)) for c in centres])
    y = [name for name in ("a", "b", "c") for _ in range(30)]
    head = fit_head(x, y, C=10.0, max_iter=1000, seed=0)
    assert [head.confident(c, 0.5)[0] for c in centres] == ["a", "b", "c"]
    assert head.confident(centres[0], 1.01)[0] is None                 # never that sure: abstains
    head.save(tmp_path)
    again = PhotoCategoryHead.load(tmp_path)
    assert list(again.classes) == ["a", "b", "c"] and np.allclose(again.probabilities(x[0]), head.probabilities(x[0]))
    assert PhotoCategoryHead.load(tmp_path / "nowhere") is None
    binary = fit_head(x[:60], y[:60], C=10.0, max_iter=1000, seed=0)   # sklearn keeps one row for two classes
    assert [binary.confident(c, 0.5)[0] for c in centres[:2]] == ["a", "b"]


def test_training_on_catalog_photos_and_augmented_copies(tmp_path: Path) -> None:
    items, photos, paths = catalog(tmp_path)
    enc = FakeImageEncoder(FakeTextEncoder())
    vectors = enc.encode_images(photos)
    cats = items["category"].to_numpy(dtype=object)
    encode = lambda img: enc.encode_images([img])[0]   # noqa: E731
    (tmp_path / "broken.png").write_text("not a photo")
    paths_with_broken = [*paths[:-1], tmp_path / "broken.png"]
    head, info = train_photo_category(encode, vectors, cats, paths_with_broken, np.ones(N, bool), CFG, seed=0)
    assert sorted(head.classes) == ["bags", "shoes"]
    assert info["augmented_photos"] == N - 1 and 0.0 <= info["heldout_augmented_accuracy"] <= 1.0
    assert head.confident(encode(photo(99, "bags")), 0.5)[0] == "bags"
    one, why = train_photo_category(encode, vectors, np.array(["shoes"] * N, dtype=object), paths,
                                    np.ones(N, bool), CFG, seed=0)
    assert one is None and "categories" in why["skipped"]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> SearchEngine:
    tmp = tmp_path_factory.mktemp("cat")
    items, photos, paths = catalog(tmp)
    text_enc = FakeTextEncoder()
    img_enc = FakeImageEncoder(text_enc)
    eng = SearchEngine.build(items, text_enc.encode(document_text(items)), img_enc.encode_images(photos), None,
                             text_enc, img_enc, PARAMS)
    eng.state.photo_category, _ = train_photo_category(lambda img: img_enc.encode_images([img])[0],
                                                       np.asarray(eng.state.image_index.vectors), eng.state.cat, paths,
                                                       np.ones(N, bool), CFG, seed=0)
    return eng


def _retrieved(engine: SearchEngine, img: Image.Image, text: str | None = None) -> Retrieved:
    s = engine.state
    vec = encode_query(s, text, text or "", img, 1.0 if text is None else 0.5)
    return retrieve(s, text, text or "", img, vec, Intents(), allowed_rows(s, None))


def test_a_photo_query_gets_its_heads_category_as_a_list_and_a_boost(engine: SearchEngine) -> None:
    got = _retrieved(engine, photo(123, "bags"))
    assert got.photo_category == "bags"
    assert len(got.lists["photo_in_category"]) and set(engine.state.cat[got.lists["photo_in_category"]]) == {"bags"}
    top = engine.search_image(photo(123, "bags"), top_k=5)
    assert set(top.item_ids) <= {f"p{i:02d}" for i in range(1, N, 2)}     # bags only
    assert top.intents.get("category") is None          # not an intent: the re-ranker's category_match stays 0
    composed = _retrieved(engine, photo(123, "bags"), text="product")
    assert composed.photo_category is None and "photo_in_category" not in composed.lists   # the text speaks
    state = engine.state
    before = state.retrieval
    try:
        state.retrieval = dataclasses.replace(before, photo=dataclasses.replace(before.photo, category_confidence=None))
        off = _retrieved(engine, photo(123, "bags"))
        assert off.photo_category is None and "photo_in_category" not in off.lists
    finally:
        state.retrieval = before


def test_the_head_is_saved_and_old_engines_load_without_it(engine: SearchEngine, tmp_path: Path) -> None:
    text_enc = engine.text_encoder
    engine.save(tmp_path / "new")
    assert (tmp_path / "new" / HEAD_FILE).is_file()
    again = SearchEngine.load(tmp_path / "new", text_encoder=text_enc, image_encoder=FakeImageEncoder(text_enc))
    assert list(again.photo_category.classes) == list(engine.photo_category.classes)
    (tmp_path / "new" / HEAD_FILE).unlink()
    old = SearchEngine.load(tmp_path / "new", text_encoder=text_enc, image_encoder=FakeImageEncoder(text_enc))
    assert old.photo_category is None
    assert _retrieved(old, photo(5, "shoes")).photo_category is None
