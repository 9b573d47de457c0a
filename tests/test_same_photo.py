"""The "same photo" lookup: the fingerprint survives JPEG q85 + an 80% resize and tells different photos (a recoloured
copy of the same shot included) apart; a photo query puts the candidate whose catalog photo it is first (closest
first, the rest in order, filters kept, composed queries untouched, ``explain["same_photo"]``); an engine built or
saved without fingerprints still loads and searches; live-added photos are fingerprinted."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw
from test_search import FakeImageEncoder, FakeTextEncoder

from modules.config import load_params
from modules.data.images import load_image
from modules.encoders.fingerprint import fingerprint_distance, photo_fingerprint
from modules.search import SearchEngine, document_text
from modules.search.persistence import FINGERPRINTS_FILE

PARAMS = load_params()
GRID = int(PARAMS["encoders"]["fingerprint"]["grid"])
THRESHOLD = float(PARAMS["retrieval"]["photo"]["duplicate_distance"])
N = 24


def product_photo(seed: int, colour: tuple[int, int, int] | None = None) -> Image.Image:
    """A studio-like photo: a light background, a seeded product silhouette in one colour, a few darker details."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (160, 200), (246, 246, 246))
    d = ImageDraw.Draw(img)
    fill = colour or tuple(int(v) for v in rng.integers(20, 230, 3))
    d.polygon([tuple(int(v) for v in rng.integers((20, 20), (140, 180))) for _ in range(7)], fill=fill)
    for _ in range(4):
        x, y = (int(v) for v in rng.integers(30, 120, 2))
        d.ellipse([x, y, x + int(rng.integers(6, 30)), y + int(rng.integers(6, 30))],
                  fill=tuple(int(v) // 2 for v in fill))
    return img


def shopper_copy(img: Image.Image) -> Image.Image:
    """The photo as a shopper sends it (``bench/fashion_benchmark.py``): 80% size, JPEG quality 85, decoded as the
    server decodes an upload."""
    small = img.resize((round(img.width * 0.8), round(img.height * 0.8)), Image.BILINEAR)
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=85)
    return load_image(buf.getvalue())


def test_fingerprint_survives_reencoding_and_separates_photos() -> None:
    own, other = [], []
    for seed in range(20):
        photo = product_photo(seed)
        fp = photo_fingerprint(photo, GRID)
        assert fp.shape == (3 * GRID * GRID,) and fp.dtype == np.uint8
        own.append(fingerprint_distance(photo_fingerprint(shopper_copy(photo), GRID), fp[None])[0])
        recoloured = product_photo(seed, colour=(120, 130, 60))   # the same shot in another colour
        other.append(fingerprint_distance(fp, np.stack([photo_fingerprint(recoloured, GRID),
                                                        photo_fingerprint(product_photo(seed + 100), GRID)])).min())
    assert max(own) < THRESHOLD < min(other)
    assert fingerprint_distance(fp, np.zeros((2, fp.size), np.uint8)).tolist() == [np.inf, np.inf]  # no photo


def _catalog() -> tuple[pd.DataFrame, list[Image.Image]]:
    photos = [product_photo(i) for i in range(N)]
    items = pd.DataFrame([{"item_id": f"p{i:02d}", "title": f"product {i} {['shoe', 'bag'][i % 2]}",
                           "description": "", "category": ["shoes", "bags"][i % 2], "price": 10.0 + i,
                           "image_path": f"images/p{i:02d}.png"} for i in range(N)])
    return items, photos


def _engine(with_fingerprints: bool = True) -> SearchEngine:
    items, photos = _catalog()
    text_enc = FakeTextEncoder()
    img_enc = FakeImageEncoder(text_enc)
    fps = np.stack([photo_fingerprint(p, GRID) for p in photos]) if with_fingerprints else None
    return SearchEngine.build(items, text_enc.encode(document_text(items)), img_enc.encode_images(photos), None,
                              text_enc, img_enc, PARAMS, photo_fingerprints=fps)


@pytest.fixture(scope="module")
def engines() -> tuple[SearchEngine, SearchEngine]:
    return _engine(True), _engine(False)


def test_a_photo_query_puts_its_own_product_first_and_keeps_the_rest_in_order(engines) -> None:
    eng, plain = engines
    _, photos = _catalog()
    moved = 0
    for i in range(N):
        query = shopper_copy(photos[i])
        got, before = eng.search_image(query, top_k=N), plain.search_image(query, top_k=N)
        own = f"p{i:02d}"
        assert got.item_ids[0] == own and 0 <= got.results[0].explain["same_photo"] < THRESHOLD
        assert [x for x in got.item_ids if x != own] == [x for x in before.item_ids if x != own]
        assert all("same_photo" not in r.explain for r in got.results[1:])
        assert all("same_photo" not in r.explain for r in before.results)   # no fingerprints: the step is off
        moved += before.item_ids[0] != own
    assert moved > 0   # the fake image space does not find every own photo first on its own


def test_filters_hold_and_composed_queries_are_not_promoted(engines) -> None:
    eng, _ = engines
    _, photos = _catalog()
    query = shopper_copy(photos[3])                     # p03 is a bag
    got = eng.search_image(query, top_k=5, filters={"category": "shoes"})
    assert "p03" not in got.item_ids and all("same_photo" not in r.explain for r in got.results)
    composed = eng.search_multimodal("but in red", query, image_weight=1.0, top_k=N)
    assert all("same_photo" not in r.explain for r in composed.results)
    eng_text = eng.search_text("product shoe", top_k=5)
    assert all("same_photo" not in r.explain for r in eng_text.results)


def test_save_load_keeps_fingerprints_and_old_engines_still_search(engines, tmp_path) -> None:
    eng, plain = engines
    _, photos = _catalog()
    query = shopper_copy(photos[7])
    text_enc = eng.text_encoder
    eng.save(tmp_path / "new")
    again = SearchEngine.load(tmp_path / "new", text_encoder=text_enc, image_encoder=FakeImageEncoder(text_enc))
    assert np.array_equal(again.photo_fingerprints, eng.photo_fingerprints)
    assert again.search_image(query, top_k=5).item_ids == eng.search_image(query, top_k=5).item_ids
    # an engine saved before the fingerprints (no file): loads, searches, no promotion
    (tmp_path / "new" / FINGERPRINTS_FILE).unlink()
    old = SearchEngine.load(tmp_path / "new", text_encoder=text_enc, image_encoder=FakeImageEncoder(text_enc))
    assert old.photo_fingerprints is None
    assert old.search_image(query, top_k=5).item_ids == plain.search_image(query, top_k=5).item_ids
    # an engine without fingerprints saved over one with them leaves no stale file behind
    plain.save(tmp_path / "plain")
    assert not (tmp_path / "plain" / FINGERPRINTS_FILE).exists()


def test_live_added_photos_are_fingerprinted() -> None:
    eng = _engine(True)
    photo = product_photo(999)
    eng.add_items([{"item_id": "fresh", "title": "fresh shoe", "category": "shoes", "price": 5.0},
                   {"item_id": "nophoto", "title": "plain shoe", "category": "shoes", "price": 6.0}], [photo, None])
    assert len(eng.photo_fingerprints) == N + 2 and not eng.photo_fingerprints[-1].any()
    got = eng.search_image(shopper_copy(photo), top_k=5)
    assert got.item_ids[0] == "fresh" and "same_photo" in got.results[0].explain


def test_with_kept_rows_appends_only_the_kept_rows_the_cut_dropped() -> None:
    from modules.search.features import with_kept_rows

    rows = np.array([2, 5, 7, 9, 11])            # ascending, as rrf.fuse_lists returns them
    order = np.array([4, 0, 3, 1, 2])            # positions, best first
    assert with_kept_rows(order, rows, np.array([7, 5, 99]), 2).tolist() == [4, 0, 1, 2]   # 99: not a candidate
    assert with_kept_rows(order, rows, np.array([11]), 2).tolist() == [4, 0]               # already kept
    assert with_kept_rows(order, rows, None, 2).tolist() == [4, 0]
    assert with_kept_rows(order, rows, np.array([7]), None).tolist() == order.tolist()     # no cut


def test_the_nearest_photos_survive_the_rerank_depth_cut() -> None:
    """With a re-rank depth of 1 the hybrid's best candidate alone would get the same-photo check; the photo list's
    nearest rows (``retrieval.photo.nearest_kept``) are kept too, so the own product is still found."""
    import copy

    items, photos = _catalog()
    text_enc = FakeTextEncoder()
    img_enc = FakeImageEncoder(text_enc)
    fps = np.stack([photo_fingerprint(p, GRID) for p in photos])
    found = {}
    for kept in (0, N):
        params = copy.deepcopy(PARAMS)
        params["retrieval"]["rerank_depth"] = 1
        params["retrieval"]["photo"]["nearest_kept"] = kept
        eng = SearchEngine.build(items, text_enc.encode(document_text(items)), img_enc.encode_images(photos), None,
                                 text_enc, img_enc, params, photo_fingerprints=fps)
        found[kept] = sum(eng.search_image(shopper_copy(photos[i]), top_k=1).item_ids[0] == f"p{i:02d}"
                          for i in range(N))
    assert found[N] == N and found[0] < N
