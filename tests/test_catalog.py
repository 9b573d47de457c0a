"""Synthetic catalog generator: determinism, schema, hidden-truth consistency, Zipf popularity, cold start, errors."""
from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from modules.config import load_params
from modules.data import data_io
from modules.data.catalog import generate_catalog, vocab
from modules.data.catalog.interactions import sample_interactions, sample_users
from modules.data.catalog.items import sample_items

SEED = 42
DAY = 86_400


@pytest.fixture(scope="module")
def params() -> dict:
    return load_params()


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory, params: dict) -> Path:
    out = tmp_path_factory.mktemp("catalog") / "data"
    generate_catalog("tiny", out, seed=SEED, params=params, progress=False)
    return out


@pytest.fixture(scope="module")
def truth(catalog: Path) -> pd.DataFrame:
    df = pd.read_csv(catalog / "truth_items.csv", dtype={"item_id": str})
    return df.set_index("item_id", drop=False)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- determinism ------------------------------------------------------------------------------------------------------
def test_same_seed_is_byte_identical_whatever_the_worker_count(catalog: Path, params: dict,
                                                               tmp_path: Path) -> None:
    p = copy.deepcopy(params)
    p["generate"]["workers"] = 1
    generate_catalog("tiny", tmp_path / "again", seed=SEED, params=p, progress=False)
    a, b = _files(catalog), _files(tmp_path / "again")
    assert sorted(a) == sorted(b)
    different = [name for name in a if a[name] != b[name]]
    assert different == []


def test_different_seed_differs(catalog: Path, params: dict, tmp_path: Path) -> None:
    m = generate_catalog("tiny", tmp_path / "other", seed=SEED + 1, params=params, progress=False)
    assert m["seed"] == SEED + 1
    for name in ("items.csv", "interactions.csv", "queries.jsonl", "images/sku_000001.png"):
        assert (catalog / name).read_bytes() != (tmp_path / "other" / name).read_bytes(), name


def test_regenerating_into_a_generated_dir_overwrites_but_foreign_dirs_are_refused(params: dict,
                                                                                  tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        generate_catalog("tiny", foreign, params=params, progress=False)
    assert (foreign / "notes.txt").read_text() == "keep me"


# --- schema -----------------------------------------------------------------------------------------------------------
def test_schema_of_every_file(catalog: Path, params: dict) -> None:
    scale = params["generate"]["scales"]["tiny"]
    items = data_io.load_items(catalog)
    assert list(items.columns) == data_io.REQUIRED_ITEM_COLUMNS + ["material", "style"]
    assert len(items) == scale["n_items"] and items["item_id"].is_unique
    assert items["item_id"].str.fullmatch(r"sku_\d{6}").all()
    assert set(items["category"]) == set(vocab.CATEGORY_NAMES)
    assert set(items["gender"]) <= set(data_io.GENDERS)
    assert (items["price"] > 0).all() and items["created_at"].dtype == np.int64
    assert not ({"color", "pattern"} & set(items.columns)), "hidden truth must not be in items.csv"
    assert (items["title"] != "").all() and (items["description"] != "").all()

    inter = data_io.load_interactions(catalog)
    assert list(inter.columns) == data_io.INTERACTION_COLUMNS and len(inter) == scale["n_interactions"]
    assert inter["user_id"].str.fullmatch(r"u_\d{5}").all()
    assert set(inter["item_id"]) <= set(items["item_id"])
    assert inter["ts"].is_monotonic_increasing
    mix = inter["event"].value_counts(normalize=True)
    assert mix["view"] > mix["click"] > mix["add_to_cart"] > 0 and mix["purchase"] > 0

    manifest = data_io.load_manifest(catalog)
    assert manifest["source"] == "generated" and manifest["seed"] == SEED and manifest["scale"] == "tiny"
    assert manifest["counts"]["items"] == scale["n_items"]
    assert manifest["counts"]["interactions"] == scale["n_interactions"]
    for name, digest in manifest["checksums"].items():
        assert hashlib.sha256((catalog / name).read_bytes()).hexdigest() == digest, name
    assert {"items.csv", "interactions.csv", "queries.jsonl"} <= set(manifest["checksums"])

    truth_users = data_io.load_truth_users(catalog)
    assert len(truth_users) == scale["n_users"]
    assert {"fav_categories", "fav_colors", "fav_styles", "price_center"} <= set(truth_users.columns)
    truth = data_io.load_truth_items(catalog)
    assert list(truth["item_id"]) == list(items["item_id"])
    assert set(truth["color"]) <= set(vocab.COLORS) and len(set(truth["color"])) >= 12
    assert set(truth["pattern"]) <= set(vocab.PATTERNS)

    queries = data_io.load_queries(catalog)
    for q in queries:
        assert set(q) >= {"qid", "kind", "text", "image_path", "relevance", "split", "cold", "source"}
        assert q["kind"] in data_io.QUERY_KINDS and q["split"] in ("train", "eval") and q["source"] == "judged"
        assert q["relevance"] and all(g in (1, 2, 3) for g in q["relevance"].values())
        assert set(q["relevance"]) <= set(items["item_id"])
        if q["image_path"]:
            assert (catalog / q["image_path"]).is_file()
    assert len({q["qid"] for q in queries}) == len(queries)


def test_images_are_decodable_and_large_enough(catalog: Path) -> None:
    items = data_io.load_items(catalog)
    for rel in list(items["image_path"]) + sorted(str(p.relative_to(catalog))
                                                  for p in (catalog / "images" / "queries").glob("*.png")):
        with Image.open(catalog / rel) as img:
            img.load()
            assert img.mode == "RGB" and min(img.size) >= 128, rel


def test_product_images_show_the_hidden_colour(catalog: Path, truth: pd.DataFrame) -> None:
    """For solid items the most common non-background palette colour is the item's colour (or a neighbour)."""
    names = list(vocab.COLORS)
    palette = np.asarray([vocab.COLORS[n] for n in names], dtype=np.float32)
    solid = truth[truth["pattern"] == "solid"]
    hits = 0
    for item_id, colour in zip(solid["item_id"], solid["color"], strict=True):
        px = np.asarray(Image.open(catalog / f"images/{item_id}.png"), dtype=np.float32).reshape(-1, 3)
        corner = px[0]
        fg = px[np.abs(px - corner).sum(axis=1) > 60]
        nearest = np.argmin(((fg[:, None, :] - palette[None]) ** 2).sum(-1), axis=1)
        counts = np.bincount(nearest, minlength=len(names))
        top = [names[i] for i in np.argsort(-counts)[:2]]
        hits += colour in top or any(n in vocab.COLOR_NEIGHBOURS[colour] for n in top[:1])
    assert hits / len(solid) >= 0.85


# --- text: colour hidden unless the title names it ---------------------------------------------------------------------
def _mentions(text: str, terms: set[str]) -> set[str]:
    low = text.lower()
    return {t for t in terms if re.search(rf"(?<![\w-]){re.escape(t)}(?![\w-])", low)}


def test_colour_in_title_rate_and_no_colour_leak(catalog: Path, truth: pd.DataFrame, params: dict) -> None:
    items = data_io.load_items(catalog).set_index("item_id")
    rate = params["generate"]["color_in_title_rate"]
    flagged = truth["color_in_title"].astype(bool)
    assert abs(flagged.mean() - rate) < 0.08
    terms = vocab.all_color_terms()
    for item_id, row in truth.iterrows():
        title, desc = items.at[item_id, "title"], items.at[item_id, "description"]
        if row["color_in_title"]:
            assert _mentions(title, set(vocab.COLOR_SYNONYMS[row["color"]])), title
        else:
            assert not _mentions(f"{title} {desc}", terms), (title, desc)
    observed = np.mean([bool(_mentions(t, terms)) for t in items["title"]])
    assert abs(observed - rate) < 0.08
    assert not any(_mentions(t, terms) for t, f in zip(data_io.item_text(items.reset_index()), flagged, strict=True) if not f)


def test_titles_use_varied_synonyms(catalog: Path) -> None:
    items = data_io.load_items(catalog)
    sneaker_titles = " ".join(items.loc[items["category"] == "sneakers", "title"]).lower()
    assert sum(s in sneaker_titles for s in vocab.CATEGORIES["sneakers"].synonyms) >= 3
    assert items["title"].nunique() >= 0.9 * len(items)


def test_attributes_are_correlated(catalog: Path, truth: pd.DataFrame) -> None:
    assert set(truth.loc[truth["category"] == "dresses", "gender"]) == {"women"}
    assert set(truth.loc[truth["category"] == "lamps", "gender"]) == {"unisex"}
    assert set(truth.loc[truth["category"] == "jeans", "material"]) <= {"denim", "corduroy"}
    by_tier = truth.groupby("brand_tier")["price"].median()
    assert by_tier["budget"] < by_tier["mid"] < by_tier["premium"]


# --- interactions -----------------------------------------------------------------------------------------------------
def test_new_skus_have_no_training_interactions(catalog: Path, params: dict) -> None:
    items = data_io.load_items(catalog)
    manifest = data_io.load_manifest(catalog)
    cutoff = manifest["cutoff_ts"]
    new = data_io.new_item_ids(catalog)
    assert new == set(items.loc[items["created_at"] >= cutoff, "item_id"])
    assert abs(len(new) / len(items) - params["generate"]["new_sku_fraction"]) < 0.02
    inter = data_io.load_interactions(catalog)
    train, test = data_io.split_interactions(inter, cutoff)
    assert not set(train["item_id"]) & new
    assert new <= set(test["item_id"]), "every new SKU gets held-out interactions"
    created = items.set_index("item_id")["created_at"]
    assert (inter["ts"].to_numpy() >= created[inter["item_id"]].to_numpy()).all()
    assert inter["ts"].min() >= manifest["start_ts"] and inter["ts"].max() < manifest["end_ts"]
    assert 0.1 < len(test) / len(inter) < 0.5


def _zipf_slope(counts: np.ndarray, top: int) -> float:
    freq = np.sort(counts)[::-1][:top].astype(np.float64)
    ranks = np.arange(1, freq.size + 1)
    return float(np.polyfit(np.log(ranks), np.log(freq), 1)[0])


def test_item_popularity_is_zipfian(params: dict) -> None:
    """At a scale where the tail is measurable (2,000 items, 200K events) the log-log slope is ~ -exponent."""
    gen = dict(params["generate"])
    cats = vocab.CATEGORY_NAMES
    start, end = 1_704_067_200, 1_704_067_200 + 180 * DAY
    cutoff = end - 28 * DAY
    for exponent in (0.8, float(gen["zipf_exponent"])):
        gen["zipf_exponent"] = exponent
        items = sample_items(2000, cats, gen, np.random.default_rng(1), start, cutoff, end)
        users = sample_users(3000, cats, np.random.default_rng(2))
        inter, ranks = sample_interactions(items, users, cats, 200_000, gen, np.random.default_rng(3), start,
                                           cutoff, end)
        counts = inter["item_id"].value_counts().reindex(items["item_id"], fill_value=0).to_numpy()
        assert abs(_zipf_slope(counts, 200) + exponent) < 0.1, exponent
        # the most popular item by construction is the most frequent
        assert items["item_id"].iloc[int(np.argmin(ranks))] == inter["item_id"].value_counts().index[0]


def test_interactions_follow_user_tastes(catalog: Path) -> None:
    """Collaborative signal: a user's events concentrate on their hidden favourite categories."""
    inter = data_io.load_interactions(catalog)
    users = data_io.load_truth_users(catalog).set_index("user_id")
    cat = data_io.load_items(catalog).set_index("item_id")["category"]
    inter = inter.assign(category=cat[inter["item_id"]].to_numpy())
    fav = users["fav_categories"].str.split("|")
    in_fav = [c in fav[u] for u, c in zip(inter["user_id"], inter["category"], strict=True)]
    share_of_categories = fav.str.len().mean() / len(vocab.CATEGORY_NAMES)
    assert np.mean(in_fav) > 2 * share_of_categories


# --- queries ----------------------------------------------------------------------------------------------------------
def _text_grade(row: pd.Series, facets: dict, cold: bool) -> int:
    """Independent re-implementation of the documented text-query grading rules."""
    if row["category"] != facets["category"]:
        return 0
    if "gender" in facets and row["gender"] not in (facets["gender"], "unisex"):
        return 0
    if "price" in facets and row["price"] > facets["price"]:
        return 0
    if cold and not row["is_new"]:
        return 0
    extras = [f for f in ("pattern", "style", "material") if f in facets]
    n_match = sum(row[f] == facets[f] for f in extras)
    if "color" in facets:
        if row["color"] == facets["color"]:
            return 3 if n_match == len(extras) else 2
        near = row["color"] in vocab.COLOR_NEIGHBOURS[facets["color"]]
        return 1 if near and n_match == len(extras) else 0
    if n_match == len(extras):
        return 3
    return 2 if len(extras) >= 2 and n_match == len(extras) - 1 else 0


def test_text_query_judgments_match_hidden_truth(catalog: Path, truth: pd.DataFrame, params: dict) -> None:
    queries = [q for q in data_io.load_queries(catalog) if q["kind"] == "text"]
    gen = params["generate"]
    assert len(queries) == gen["scales"]["tiny"]["n_text_queries"] >= 1000
    assert len({q["text"] for q in queries}) == len(queries)
    cold = [q for q in queries if q["cold"]]
    assert len(cold) >= 0.05 * len(queries)
    for q in queries:
        facets = q["facets"]
        expected = {i: g for i, g in ((i, _text_grade(r, facets, q["cold"])) for i, r in truth.iterrows()) if g}
        assert all(expected.get(i) == g for i, g in q["relevance"].items()), q["qid"]
        n3 = sum(g == 3 for g in expected.values())
        assert n3 >= 1
        if len(expected) <= gen["max_relevant"]:
            assert q["relevance"] == expected, q["qid"]
        if q["cold"]:
            assert all(truth.at[i, "is_new"] for i in q["relevance"])
            assert q["text"].split()[0] in {p.split()[0] for p in vocab.COLD_PREFIXES}
        cat_words = " ".join(vocab.CATEGORIES[facets["category"]].synonyms)
        assert any(w in cat_words for w in q["text"].split()), q["text"]
        if "price" in facets:
            assert str(facets["price"]) in q["text"]


def test_image_and_composed_query_judgments(catalog: Path, truth: pd.DataFrame, params: dict) -> None:
    queries = data_io.load_queries(catalog)
    scale = params["generate"]["scales"]["tiny"]
    image = [q for q in queries if q["kind"] == "image"]
    composed = [q for q in queries if q["kind"] == "composed"]
    assert len(image) == scale["n_image_queries"] and len(composed) == scale["n_composed_queries"]
    for q in image:
        assert q["image_path"].startswith("images/queries/") and q["text"] == ""
        src = truth.loc[q["source_item"]]
        assert [i for i, g in q["relevance"].items() if g == 3] == [q["source_item"]]
        for i, g in q["relevance"].items():
            row = truth.loc[i]
            assert row["category"] == src["category"] and row["color"] == src["color"]
            if g == 2:
                assert row["pattern"] == src["pattern"]
    for q in composed:
        src = truth.loc[q["source_item"]]
        assert q["image_path"] == f"images/{q['source_item']}.png"
        assert q["target_color"] != src["color"]
        assert any(t in q["text"] for t in vocab.COLOR_SYNONYMS[q["target_color"]])
        assert max(q["relevance"].values()) >= 2
        for i, g in q["relevance"].items():
            row = truth.loc[i]
            assert row["category"] == src["category"] and row["color"] == q["target_color"]
            if g >= 2:
                assert row["pattern"] == src["pattern"]
            if g == 3:
                assert row["style"] == src["style"]


def test_query_split_is_by_intent_and_near_the_fraction(catalog: Path, params: dict) -> None:
    queries = data_io.load_queries(catalog)
    frac = np.mean([q["split"] == "eval" for q in queries])
    assert abs(frac - params["generate"]["query_eval_fraction"]) < 0.08
    split_of: dict[str, str] = {}
    for q in queries:
        key = q.get("source_item") or json.dumps([q["facets"], q["cold"]], sort_keys=True)
        assert split_of.setdefault(key, q["split"]) == q["split"], key
    assert len(data_io.load_queries(catalog, split="eval")) + len(data_io.load_queries(catalog, split="train")) \
        == len(queries)


# --- bad parameters ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("edit", "scale", "message"), [
    (lambda g: None, "huge", "unknown scale 'huge'"),
    (lambda g: g["scales"]["tiny"].update(n_items=0), "tiny", "n_items must be a positive integer"),
    (lambda g: g["scales"]["tiny"].update(n_interactions=-5), "tiny", "n_interactions must be a positive"),
    (lambda g: g["scales"]["tiny"].update(n_users=2.5), "tiny", "n_users must be a positive integer"),
    (lambda g: g.update(categories=["sneakers", "spaceships"]), "tiny", "unknown categories \\['spaceships'\\]"),
    (lambda g: g.update(color_in_title_rate=1.5), "tiny", "color_in_title_rate must be in"),
    (lambda g: g.update(zipf_exponent="steep"), "tiny", "zipf_exponent must be a number"),
    (lambda g: g.update(workers=0), "tiny", "workers must be a positive integer"),
    (lambda g: g.update(image_size=8), "tiny", "image_size"),
])
def test_bad_params_raise_clear_errors(params: dict, tmp_path: Path, edit, scale: str, message: str) -> None:
    p = copy.deepcopy(params)
    edit(p["generate"])
    with pytest.raises(ValueError, match=message):
        generate_catalog(scale, tmp_path / "out", params=p, progress=False)
    assert not (tmp_path / "out").exists(), "validation happens before anything is written"


def test_bad_seed_and_missing_section(params: dict, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="seed"):
        generate_catalog("tiny", tmp_path / "o", seed=-1, params=params, progress=False)
    with pytest.raises(ValueError, match="'generate' mapping"):
        generate_catalog("tiny", tmp_path / "o", params={"seed": 1}, progress=False)


def test_custom_category_subset(params: dict, tmp_path: Path) -> None:
    p = copy.deepcopy(params)
    p["generate"]["categories"] = ["sneakers", "watches"]
    p["generate"]["scales"]["tiny"] = {"n_items": 60, "n_users": 30, "n_interactions": 300, "n_text_queries": 40,
                                      "n_image_queries": 5, "n_composed_queries": 5}
    m = generate_catalog("tiny", tmp_path / "sub", params=p, progress=False)
    items = data_io.load_items(tmp_path / "sub")
    assert set(items["category"]) == {"sneakers", "watches"} and m["categories"] == ["sneakers", "watches"]
    assert m["counts"]["queries_by_kind"]["text"] == 40
