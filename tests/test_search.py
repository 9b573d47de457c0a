"""SearchEngine end to end: on a crafted catalog with deterministic fake encoders (fast), and on a tiny
generated catalog with the real SBERT encoder."""
from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from modules.config import load_params
from modules.encoders.color_naming import COLOR_TABLE, dominant_color_name
from modules.search import RANK_FEATURES, SearchEngine, UnknownItemError, calibrate_low_confidence
from modules.search.lexical import tokenize
from modules.search.zero_shot import zero_shot_attributes

DIM = 64
COLORS = ["red", "navy", "white", "black", "green", "yellow", "pink", "grey"]
CATS = {"sneakers": "sneaker", "dresses": "dress", "boots": "boot"}


class FakeTextEncoder:
    """Bag of hashed random word vectors: deterministic, no model."""

    name, dim = "fake-hash", DIM

    def encode(self, texts, batch_size=64, progress=False):
        out = np.zeros((len(texts), DIM), np.float32)
        for i, t in enumerate(texts):
            for tok in tokenize(t):
                out[i] += np.random.default_rng(zlib.crc32(tok.encode())).standard_normal(DIM)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def encode_query(self, text):
        return self.encode([text])[0]


class FakeImageEncoder:
    """Embeds a photo as the text vector of its dominant colour name: an image space aligned to the text space."""

    name, dim = "fake-colour-tower", DIM

    def __init__(self, text_encoder):
        self.text_encoder = text_encoder

    def encode_images(self, images):
        return self.text_encoder.encode([dominant_color_name(im) for im in images])


def swatch(color: str, size: int = 24) -> Image.Image:
    return Image.new("RGB", (size, size), COLOR_TABLE[color])


def crafted_items() -> tuple[pd.DataFrame, list[Image.Image]]:
    rows, images = [], []
    for i in range(120):
        cat = list(CATS)[i % 3]
        color = COLORS[(i // 3) % len(COLORS)]
        title = f"{['Kinetix', 'Basix', 'Pacer'][i % 3]} {['classic', 'sporty', 'casual', 'vintage'][i % 4]} {CATS[cat]}"
        if i % 4 == 0:  # only some titles name their colour; the photo always shows it
            title = f"{color} {title}"
        rows.append({"item_id": f"it{i:03d}", "title": title, "description": f"A {CATS[cat]} made of cotton.",
                     "category": cat, "brand": ["Kinetix", "Basix", "Pacer"][i % 3], "price": float(20 + (i * 7) % 150),
                     "gender": ["women", "men", "unisex"][(i // 2) % 3], "image_path": f"images/{i}.png",
                     "created_at": 0})
        images.append(swatch(color))
    for j, color in enumerate(["white", "black", "red"]):  # a rare category
        rows.append({"item_id": f"lamp{j}", "title": f"{color} desk lamp", "description": "Warm light.",
                     "category": "lamps", "brand": "Lumina", "price": 60.0, "gender": "unisex", "image_path": "",
                     "created_at": 0})
        images.append(swatch(color))
    return pd.DataFrame(rows), images


def build_engine(ranker=None) -> SearchEngine:
    items, images = crafted_items()
    text_enc = FakeTextEncoder()
    img_enc = FakeImageEncoder(text_enc)
    from modules.search import document_text

    params = load_params()
    return SearchEngine.build(items, text_enc.encode(document_text(items)), img_enc.encode_images(images), None,
                              text_enc, img_enc, params, ranker=ranker,
                              popularity=np.arange(len(items), dtype=np.float32) % 5,
                              item_colors=[dominant_color_name(im) for im in images])


@pytest.fixture(scope="module")
def engine() -> SearchEngine:
    return build_engine()


def _color_of(engine: SearchEngine, item_id: str) -> str:
    return engine.item_colors[engine.id_to_row[item_id]]


@pytest.mark.parametrize("retriever", ["hybrid", "bm25", "tfidf", "text", "image", "fusion"])
def test_each_retriever_returns_k_in_descending_order(engine, retriever):
    resp = engine.search_text("casual cotton sneaker", top_k=10, retriever=retriever)
    scores = [r.score for r in resp.results]
    assert len(resp.results) == 10 and resp.retriever == retriever
    assert all(a >= b - 1e-9 for a, b in zip(scores, scores[1:], strict=False))
    assert len({r.item_id for r in resp.results}) == 10
    assert set(resp.results[0].explain) >= {"lexical", "dense", "two_tower", "reranker"}
    assert resp.latency_ms > 0


@pytest.mark.parametrize("retriever", ["hybrid", "bm25", "text", "image", "fusion"])
def test_filters_honour_k_including_a_rare_category(engine, retriever):
    resp = engine.search_text("light", top_k=10, retriever="text" if retriever == "bm25" else retriever,
                              filters={"category": "lamps"})
    assert sorted(r.item_id for r in resp.results) == ["lamp0", "lamp1", "lamp2"]
    flt = {"category": "sneakers", "price_max": 90, "gender": "men"}
    mask = (engine.cat == "sneakers") & (engine.price <= 90) & (engine.gender == "men")
    resp = engine.search_text("red boot", top_k=10, retriever=retriever if retriever != "bm25" else "text",
                              filters=flt)
    assert len(resp.results) == min(10, int(mask.sum()))
    assert all(mask[engine.id_to_row[r.item_id]] for r in resp.results)


def test_colour_intent_uses_the_photo_colour_when_the_title_is_silent(engine):
    resp = engine.search_text("navy sneakers", top_k=5)
    assert resp.intents["color"] == "navy" and resp.intents["category"] == "sneakers"
    assert all(_color_of(engine, r.item_id) == "navy" for r in resp.results)
    assert any("navy" not in engine.items.title[engine.id_to_row[r.item_id]] for r in resp.results)


def test_colour_list_ranks_a_category_by_its_photos_share_of_the_colour():
    """Titles that never name a colour (a real catalog's often do not): "red sneakers" still finds red sneakers,
    the reddest first, from each photo's share of red pixels, because the colour list retrieves them."""
    from modules.encoders.color import color_features_and_name, color_shares
    from modules.encoders.color_naming import COLOR_NAMES
    from modules.search import document_text

    rows, images = [], []
    for i in range(60):
        red_rows = (i * 7) % 24  # 0..23 of 24 rows painted red, the rest grey
        img = np.full((24, 24, 3), COLOR_TABLE["grey"], np.uint8)
        img[:red_rows] = COLOR_TABLE["red"]
        cat = ["sneakers", "boots"][i % 2]
        rows.append({"item_id": f"s{i:02d}", "title": f"{['Kinetix', 'Basix', 'Pacer'][i % 3]} classic {cat[:-1]}",
                     "description": "Made of cotton.", "category": cat, "brand": "Kinetix", "price": 50.0,
                     "gender": "unisex", "image_path": f"images/{i}.png", "created_at": 0})
        images.append(Image.fromarray(img))
    items = pd.DataFrame(rows)
    params = load_params()
    feats, names = zip(*(color_features_and_name(im, params) for im in images), strict=True)
    color = np.stack(feats)
    red = color_shares(color, params)[:, COLOR_NAMES.index("red")]
    assert red.max() > 0.9 and red.min() == 0.0 and np.allclose(color_shares(color, params).sum(axis=1), 1.0)
    text_enc = FakeTextEncoder()
    eng = SearchEngine.build(items, text_enc.encode(document_text(items)), FakeImageEncoder(text_enc).encode_images(
        images), color, text_enc, FakeImageEncoder(text_enc), params, item_colors=list(names))
    got = eng.search_text("red sneakers", top_k=5)
    assert got.intents["color"] == "red" and got.intents["category"] == "sneakers"
    rows_got = [eng.id_to_row[r.item_id] for r in got.results]
    sneakers = np.flatnonzero(items["category"] == "sneakers")
    assert all(items["category"][r] == "sneakers" and names[r] == "red" for r in rows_got)
    assert red[rows_got[0]] == red[sneakers].max() and red[rows_got].mean() > red[sneakers].mean()
    from modules.search.retrieve import color_list  # the list itself: the category's rows, reddest first
    listed = color_list(eng.state, eng.state.parser.parse("red sneakers"), eng.state.alive.copy(), 10)
    assert set(listed) <= set(sneakers) and (np.diff(red[listed]) <= 0).all()


def test_rerank_depth_keeps_the_best_hybrid_candidates_with_the_same_features(engine, monkeypatch):
    """Only the best ``retrieval.rerank_depth`` hybrid candidates (at least top_k) get features and the re-ranker:
    they are the first rows of the whole pool, feature for feature (exact dense scores to the last float32 bit: BLAS
    sums a smaller batch in another order)."""
    import dataclasses

    from modules.search.engine import candidates, rerank_depth

    s = engine.state
    full = candidates(s, "casual cotton sneaker", None, 0.0, None, False, None, None)[0]
    cut = candidates(s, "casual cotton sneaker", None, 0.0, None, False, None, 7)[0]
    assert len(full["row"]) > 7 and len(cut["row"]) == 7
    for name in ("item_id", "row", "score"):
        np.testing.assert_array_equal(cut[name], full[name][:7], err_msg=name)
    for name in RANK_FEATURES:
        np.testing.assert_allclose(cut[name], full[name][:7], rtol=1e-6, atol=1e-7, err_msg=name)
    monkeypatch.setattr(s, "retrieval", dataclasses.replace(s.retrieval, rerank_depth=5))
    assert rerank_depth(s, 3) == 5 and rerank_depth(s, 8) == 8
    assert len(engine.search_text("casual cotton sneaker", top_k=8).results) == 8
    monkeypatch.setattr(s, "retrieval", dataclasses.replace(s.retrieval, rerank_depth=None))
    assert rerank_depth(s, 8) is None


def test_hard_intents_filter(engine):
    resp = engine.search_text("green dress under 100", top_k=10, hard_intents=True)
    rows = [engine.id_to_row[r.item_id] for r in resp.results]
    assert rows and all(engine.cat[r] == "dresses" and engine.price[r] <= 100 for r in rows)
    assert all(engine.item_colors[r] == "green" or "green" in engine.title_colors[r] for r in rows)


def test_composed_query_moves_toward_the_modifier_colour(engine):
    photo = swatch("red")
    base = engine.search_image(photo, top_k=10)
    composed = engine.search_multimodal("in navy", photo, image_weight=0.5, top_k=10)
    frac = lambda resp, c: np.mean([_color_of(engine, r.item_id) == c for r in resp.results])  # noqa: E731
    assert frac(base, "red") > 0.5
    assert frac(composed, "navy") > frac(base, "navy") and frac(composed, "navy") >= 0.5
    assert composed.intents["color"] == "navy"
    assert len(engine.search_multimodal("  ", photo, top_k=4).results) == 4  # empty text: a photo query


def test_photo_query_blends_tower_and_colour_features():
    from modules.encoders.color import color_features
    from modules.search import document_text

    items, images = crafted_items()
    text_enc = FakeTextEncoder()
    img_enc = FakeImageEncoder(text_enc)
    params = load_params()
    colours = np.stack([color_features(im, params) for im in images])
    eng = SearchEngine.build(items, text_enc.encode(document_text(items)), img_enc.encode_images(images), colours,
                             text_enc, img_enc, params, item_colors=[dominant_color_name(im) for im in images])
    # a shopper's photo: a navy item in the middle of a cluttered scene (with some highlights), under-exposed
    rng = np.random.default_rng(0)
    scene = rng.uniform(40, 245, (96, 96, 3))
    scene[24:72, 24:72] = COLOR_TABLE["navy"]
    photo = Image.fromarray(np.clip(scene * 0.8, 0, 255).astype(np.uint8))
    res = eng.search_image(photo, top_k=10)
    assert res.intents["color"] == "navy"
    assert all(_color_of(eng, i) == "navy" for i in res.item_ids), [_color_of(eng, i) for i in res.item_ids]
    # the colour part of the photo score is a ranker feature
    row = eng._candidates(None, photo, 1.0, None, False, None)[0]
    assert "color_sim" in RANK_FEATURES and row["color_sim"][0] > row["color_sim"][-1]
    # an item's own photo brings back its colour first (the crafted swatches of one colour are identical)
    own = eng.search_image(images[5], top_k=3)
    assert _color_of(eng, own.item_ids[0]) == dominant_color_name(images[5])


def test_similar_excludes_itself_and_rejects_unknown_ids(engine):
    resp = engine.similar("it000", top_k=5)
    assert len(resp.results) == 5 and "it000" not in resp.item_ids
    with pytest.raises(KeyError, match="unknown item_id"):
        engine.similar("nope")
    assert issubclass(UnknownItemError, KeyError)


def test_candidate_features_and_reranker_hook():
    class PriceRanker:
        def rerank(self, ctx, df):
            assert list(df.columns) == ["item_id", *RANK_FEATURES] and ctx["query"]
            return df["price"].to_numpy()

    eng = build_engine(ranker=PriceRanker())
    feats = eng.candidate_features("red sneakers under 80")
    assert list(feats.columns) == ["item_id", *RANK_FEATURES, "score"]
    assert feats["score"].is_monotonic_decreasing and feats["item_id"].is_unique
    assert feats["color_match"].isin([0, 1]).all() and feats["price_in_range"].max() == 1
    resp = eng.search_text("red sneakers under 80", top_k=5)
    prices = [eng.price[eng.id_to_row[r.item_id]] for r in resp.results]
    assert prices == sorted(prices, reverse=True) and resp.results[0].explain["reranker"] is not None
    assert eng.search_text("red sneakers", top_k=5, rerank=False).results[0].explain["reranker"] is None
    assert eng.search_text("red sneakers", top_k=5, retriever="bm25").results[0].explain["reranker"] is None
    assert (feats["pre_rerank"] == feats["score"]).all() and (feats["has_text"] == 1).all()
    assert (feats["has_image"] == 0).all() and feats["brand_match"].eq(0).all()


def test_reranker_gate_per_query_kind():
    class ImageOnlyRanker:  # a trained ranker that beat the hybrid order on image queries only
        def applies_to(self, kind):
            return kind == "image"

        def rerank(self, ctx, df):
            return -df["pre_rerank"].to_numpy()

    eng = build_engine(ranker=ImageOnlyRanker())
    assert eng.search_text("red sneakers", top_k=5).results[0].explain["reranker"] is None
    photo = Image.new("RGB", (64, 64), (200, 30, 30))
    assert eng.search_image(photo, top_k=5).results[0].explain["reranker"] is not None
    assert eng.search_multimodal("in navy", photo, top_k=5).results[0].explain["reranker"] is None


def test_add_update_delete_items():
    eng = build_engine()
    rec = {"item_id": "new1", "title": "Zorblax hover sneaker", "description": "Levitates.", "category": "sneakers",
           "brand": "Kinetix", "price": 99.0, "gender": "unisex"}
    assert eng.add_items([rec], [swatch("yellow")]) == ["new1"]
    for retriever in ("hybrid", "bm25", "text"):
        assert eng.search_text("zorblax", top_k=5, retriever=retriever).results[0].item_id == "new1"
    assert eng.search_text("zorblax", top_k=5).results[0].explain["lexical"] > 0
    eng.add_items([{**rec, "title": "Quuxly hover sneaker", "price": 10.0}], [None])  # update replaces
    assert "new1" not in eng.search_text("zorblax", top_k=5, retriever="bm25").item_ids
    assert eng.search_text("quuxly", top_k=5).results[0].item_id == "new1"
    assert eng.price[eng.id_to_row["new1"]] == 10.0 and len(eng) == 124
    eng.delete_item("new1")
    assert "new1" not in eng.search_text("quuxly", top_k=10).item_ids
    assert "new1" not in eng.similar("it001", top_k=200).item_ids
    with pytest.raises(KeyError):
        eng.delete_item("new1")
    with pytest.raises(ValueError, match="price"):
        eng.add_items([{**rec, "price": -5}])
    with pytest.raises(ValueError, match="item_id and title"):
        eng.add_items([{"item_id": "x"}])


def test_save_load_round_trip(tmp_path):
    eng = build_engine()
    eng.add_items([{"item_id": "new2", "title": "Blorp lamp", "category": "lamps", "price": 5.0}], [None])
    eng.delete_item("it005")
    calibrate_low_confidence(eng, ["red sneaker", "vintage boot"], ["qwxz plmk", "zzvv"])
    eng.save(tmp_path / "search")
    text_enc = eng.text_encoder
    again = SearchEngine.load(tmp_path / "search", text_encoder=text_enc, image_encoder=FakeImageEncoder(text_enc))
    assert again.low_conf_threshold == eng.low_conf_threshold
    for q, r in [("red sneakers", "hybrid"), ("blorp", "bm25"), ("vintage boot", "text"), ("dress", "tfidf"),
                 ("navy", "image"), ("sporty sneaker", "fusion")]:
        a, b = eng.search_text(q, top_k=8, retriever=r), again.search_text(q, top_k=8, retriever=r)
        assert a.item_ids == b.item_ids and np.allclose([x.score for x in a.results], [x.score for x in b.results])
    assert eng.similar("it001").item_ids == again.similar("it001").item_ids
    assert "it005" not in again


def test_low_confidence_calibration(engine):
    thr = calibrate_low_confidence(engine, ["red sneaker", "vintage boot", "casual dress", "cotton dress"],
                                   ["qwxz plmk", "zzvv yyrt", "blimfrast"])
    assert engine.search_text("qwxz plmk", top_k=3).low_confidence is True
    assert engine.search_text("casual dress", top_k=3).low_confidence is False
    assert -1.0 <= thr <= 1.0


def test_gibberish_queries_are_seeded():
    from modules.search import gibberish_queries

    a, b = gibberish_queries(20, seed=3), gibberish_queries(20, seed=3)
    assert a == b and a != gibberish_queries(20, seed=4)
    assert all(1 <= len(q.split()) <= 3 and all(4 <= len(w) <= 9 and w.isalpha() for w in q.split()) for q in a)


def test_calibration_from_train_queries(engine):
    from modules.search import calibrate_from_train_queries

    saved = engine.low_conf_threshold
    try:
        queries = [{"text": t} for t in ("red sneaker", "vintage boot", "casual dress", "cotton dress", "leather boot",
                                         "blue sneaker", "black dress")] + [{"text": ""}, {"image_path": "x.png"}]
        thr = calibrate_from_train_queries(engine, queries, {"retrieval": {}}, seed=42)
        assert thr is not None and engine.low_conf_threshold == thr
        assert engine.search_text("casual dress", top_k=3).low_confidence is False
        assert engine.search_text("xqzvtk wplmrr", top_k=3).low_confidence is True
        # a threshold fixed in params wins; no text queries leaves the flag off
        engine.low_conf_threshold = 0.123
        assert calibrate_from_train_queries(engine, queries, {"retrieval": {"low_confidence_threshold": 0.123}}) == 0.123
        engine.low_conf_threshold = None
        assert calibrate_from_train_queries(engine, [{"image_path": "x.png"}], {"retrieval": {}}) is None
        assert engine.low_conf_threshold is None
    finally:
        engine.low_conf_threshold = saved


def test_low_confidence_report_on_held_out_queries(engine):
    from modules.evaluation.benchmark import describe_low_confidence, low_confidence_report

    saved = engine.low_conf_threshold
    try:
        engine.low_conf_threshold = None
        assert low_confidence_report(engine, [{"text": "red sneaker"}]) is None
        calibrate_low_confidence(engine, ["red sneaker", "vintage boot", "casual dress", "cotton dress"],
                                 ["qwxz plmk", "zzvv yyrt", "blimfrast"])
        rep = low_confidence_report(engine, [{"kind": "text", "text": t} for t in ("leather boot", "black dress")]
                                    + [{"kind": "image", "image_path": "x.png"}], n=50, seed=1)
        assert rep["n"] == 2 and rep["gibberish_flagged"] > rep["eval_flagged"]
        assert "fresh gibberish" in describe_low_confidence(rep) and "not calibrated" in describe_low_confidence(None)
    finally:
        engine.low_conf_threshold = saved


def test_bad_inputs_raise_clear_errors(engine):
    for q in ["", "   ", "\n\t"]:
        with pytest.raises(ValueError, match="query is empty"):
            engine.search_text(q)
    with pytest.raises(ValueError, match="unknown filter"):
        engine.search_text("dress", filters={"colour": "red"})
    with pytest.raises(ValueError, match="greater than"):
        engine.search_text("dress", filters={"price_min": 50, "price_max": 10})
    with pytest.raises(ValueError, match=">= 0"):
        engine.search_text("dress", filters={"price_min": -1})
    with pytest.raises(ValueError, match="retriever"):
        engine.search_text("dress", retriever="magic")
    with pytest.raises(ValueError, match="top_k"):
        engine.search_text("dress", top_k=0)
    with pytest.raises(ValueError, match="PIL"):
        engine.search_image(b"not an image")
    with pytest.raises(ValueError, match="image_weight"):
        engine.search_multimodal("navy", swatch("red"), image_weight=2.0)


def test_unicode_emoji_and_very_long_queries(engine):
    assert len(engine.search_text("👟 red sneakers 🔥", top_k=5).results) == 5
    assert len(engine.search_text("🔥🔥🔥", top_k=5, retriever="text").results) == 5
    long_q = "red sneakers " + "x" * 10_000
    resp = engine.search_text(long_q, top_k=5)  # truncated to retrieval.max_query_chars
    assert len(resp.results) == 5 and resp.intents["color"] == "red"


def test_zero_shot_attributes(engine):
    attrs = zero_shot_attributes(engine, swatch("green"))
    assert attrs["dominant_color"] == "green" and attrs["color"]["label"] == "green"
    assert set(attrs) == {"color", "pattern", "style", "dominant_color"}
    assert abs(sum(attrs["style"]["scores"].values()) - 1.0) < 1e-5


# ---------------------------------------------------------------------------------------------------------------------
# A tiny generated catalog with the real SBERT text encoder and the model-free colour image encoder.
@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    from modules.data.catalog.generate import generate_catalog
    from modules.data.data_io import item_text, load_items
    from modules.data.images import load_image
    from modules.encoders.color import ColorEncoder
    from modules.encoders.text import text_encoder_from_params

    params = load_params()
    data = tmp_path_factory.mktemp("tiny")
    generate_catalog("tiny", data, seed=42, params=params, progress=False)
    items = load_items(data)
    images = [load_image(data / p) for p in items["image_path"]]
    text_enc = text_encoder_from_params(params)
    img_enc = ColorEncoder(params)
    engine = SearchEngine.build(items, text_enc.encode(item_text(items)), img_enc.encode_images(images),
                                None, text_enc, img_enc, params,
                                item_colors=[dominant_color_name(im) for im in images])
    return engine, data


@pytest.mark.slow  # generation + SBERT encoding: ~1 min idle, ~3 min on the shared 2-core box
def test_generated_catalog_colour_and_composed_queries(generated):
    engine, data = generated
    for retriever in ("hybrid", "bm25", "tfidf", "text", "fusion"):
        resp = engine.search_text("black leather boots", top_k=10, retriever=retriever)
        assert len(resp.results) == 10
    # The colour intent matches the photo's dominant colour: navy items whose title never says "navy" get
    # color_match = 1 and are boosted into the top 10 (BM25 cannot see them).
    feats = engine.candidate_features("navy sneakers")
    photo_only = [i for i in feats.item_id if engine.item_colors[engine.id_to_row[i]] == "navy"
                  and "navy" not in engine.title_colors[engine.id_to_row[i]]]
    assert photo_only and (feats.set_index("item_id").loc[photo_only, "color_match"] == 1).all()
    hybrid = engine.search_text("navy sneakers", top_k=10).item_ids
    unboosted = engine.search_text("navy sneakers", top_k=10, retriever="text").item_ids
    assert len(set(photo_only) & set(hybrid)) > len(set(photo_only) & set(unboosted))
    assert all(engine.cat[engine.id_to_row[i]] == "sneakers" for i in hybrid[:5])

    from modules.data.images import load_image

    row = int(np.flatnonzero(np.array(engine.item_colors) == "red")[0])
    photo = load_image(data / engine.items.image_path[row])
    frac = lambda ids: np.mean([engine.item_colors[engine.id_to_row[i]] == "navy" for i in ids])  # noqa: E731
    base = engine.search_image(photo, top_k=10).item_ids
    composed = engine.search_multimodal("like this but in navy", photo, top_k=10).item_ids
    assert frac(composed) > frac(base) and frac(composed) >= 0.5
    with pytest.raises(ValueError, match="text-aligned"):
        engine.search_text("red", retriever="image")


@pytest.mark.slow
def test_generated_catalog_live_add_and_filters(generated):
    engine, _ = generated
    rare = engine.items.category.value_counts().idxmin()
    n_rare = int((engine.cat == rare).sum())
    resp = engine.search_text("gift", top_k=n_rare + 5, filters={"category": rare})
    assert len(resp.results) == n_rare
    engine.add_items([{"item_id": "live-1", "title": "Frobozz trail sneakers", "description": "New.",
                       "category": "sneakers", "brand": "Kinetix", "price": 70.0, "gender": "men"}], [None])
    assert engine.search_text("frobozz", top_k=5).results[0].item_id == "live-1"
    engine.delete_item("live-1")
    assert "live-1" not in engine.search_text("frobozz", top_k=5).item_ids


def test_filled_attributes_are_searchable_and_explained(tmp_path):
    """A colour learned from the photo (modules.attributes) is indexed as text and shown in explain.filled."""
    from modules.attributes import apply_fills
    from modules.search import document_text

    items, images = crafted_items()
    items["shade"] = ""
    items, filled = apply_fills(items, {"shade": {"it007": ["vermilion", 0.83]}})
    text_enc = FakeTextEncoder()
    img_enc = FakeImageEncoder(text_enc)
    eng = SearchEngine.build(items, text_enc.encode(document_text(items)), img_enc.encode_images(images), None,
                             text_enc, img_enc, load_params(), filled=filled)
    hit = eng.search_text("vermilion", top_k=3, retriever="hybrid").results[0]
    assert hit.item_id == "it007" and hit.explain["filled"] == {"shade": {"value": "vermilion", "confidence": 0.83}}
    assert "filled" not in eng.search_text("sneaker", top_k=3).results[0].explain or \
        eng.search_text("sneaker", top_k=3).results[0].item_id == "it007"
    eng.save(tmp_path / "search")
    again = SearchEngine.load(tmp_path / "search", text_encoder=text_enc, image_encoder=img_enc)
    assert again.search_text("vermilion", top_k=1).results[0].explain["filled"]["shade"]["value"] == "vermilion"


def test_freshness_phrases_search_recent_products_first() -> None:
    from modules.search.filters import allowed_rows
    from modules.search.query import QueryParser

    day = 86_400
    items = pd.DataFrame({
        "item_id": [f"i{i}" for i in range(6)],
        "title": ["black coat", "black coat", "black coat", "red coat", "black coat", "New Balance sneakers"],
        "description": [""] * 6, "category": ["coats"] * 5 + ["sneakers"], "brand": ["a"] * 5 + ["New Balance"],
        "price": [10.0] * 6, "gender": ["unisex"] * 6,
        "created_at": [100 * day, 40 * day, 95 * day, 99 * day, 10 * day, 99 * day],
    })
    parser = QueryParser.from_catalog(items, [])
    for q in ("latest black coat", "new arrivals: black coat", "just in black coat", "New black coat"):
        assert parser.parse(q).fresh, q
    for q in ("black coat", "New Balance sneakers", "renewed black coat"):
        assert not parser.parse(q).fresh, q
    from modules.search import document_text

    text_enc = FakeTextEncoder()
    engine = SearchEngine.build(items, text_enc.encode(document_text(items)), np.zeros((6, DIM), np.float32), None,
                                text_enc, FakeImageEncoder(text_enc), load_params(), item_colors=[""] * 6)
    assert allowed_rows(engine.state, None, fresh=True).tolist() == [True, False, True, True, False, True]
    got = [r.item_id for r in engine.search_text("latest black coat", top_k=6).results]
    assert got and set(got) <= {"i0", "i2", "i3", "i5"}
    only_old = allowed_rows(engine.state, {"price_max": 10.0}, fresh=True)
    assert only_old.sum() == 4
    engine.state.alive[[0, 2, 3, 5]] = False          # nothing recent left: freshness is ignored, not an empty answer
    assert allowed_rows(engine.state, None, fresh=True).tolist() == [False, True, False, False, True, False]
