"""ALS, content and hybrid recommenders plus the temporal evaluation, on the tiny generated catalog."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from recommend_fixtures import tiny_split

from modules.config import load_params
from modules.evaluation.recommend import evaluate_recommenders, write_recommend_section
from modules.recommend.als import ALSRecommender
from modules.recommend.content import ContentRecommender
from modules.recommend.hybrid import FEATURE_STORE_UNAVAILABLE, HybridRecommender, build_recommender


@pytest.fixture(scope="module")
def tiny(tiny_catalog: Path) -> SimpleNamespace:
    params = load_params()
    params["recommend"]["hybrid"]["collaborative"] = "als"
    return tiny_split(tiny_catalog, params)


@pytest.fixture(scope="module")
def hybrid(tiny: SimpleNamespace) -> HybridRecommender:
    return build_recommender(tiny.items, tiny.train, tiny.text, None, None, tiny.params, seed=42)


def _buyers(train: pd.DataFrame) -> list[str]:
    return sorted(train.loc[train["event"] == "purchase", "user_id"].unique())


@pytest.mark.parametrize("kind", ["als", "content"])
def test_k_distinct_items_and_purchases_excluded(tiny: SimpleNamespace, kind: str) -> None:
    if kind == "als":
        model = ALSRecommender.fit(tiny.train, tiny.items["item_id"].tolist(), tiny.params, seed=42)
    else:
        model = ContentRecommender.build(tiny.items, tiny.train, tiny.text, None, None, tiny.params)
    bought = tiny.train.loc[tiny.train["event"] == "purchase"].groupby("user_id")["item_id"].agg(set)
    shown_bought = 0
    for user in _buyers(tiny.train):
        recs = model.recommend(user, k=10)
        ids = [i for i, _ in recs]
        assert len(ids) == 10 and len(set(ids)) == 10
        assert not set(ids) & bought[user]
        scores = [s for _, s in recs]
        assert scores == sorted(scores, reverse=True)
        shown_bought += bool({i for i, _ in model.recommend(user, k=10, exclude_purchased=False)} & bought[user])
    assert shown_bought > 0  # the switch really changes what is filtered
    assert model.recommend("unknown-user", k=10) == []


def test_als_gives_new_items_content_projected_factors(tiny: SimpleNamespace, tmp_path: Path) -> None:
    content = ContentRecommender.build(tiny.items, tiny.train, tiny.text, None, None, tiny.params)
    als = ALSRecommender.fit(tiny.train, content.item_ids, tiny.params, seed=42, content=content.vectors)
    new_rows = [content.item_index[i] for i in tiny.new_ids]
    assert als.projected[new_rows].all()
    assert (np.linalg.norm(als.item_factors[new_rows], axis=1) > 0).all()
    als.save(tmp_path)
    again = ALSRecommender.load(tmp_path)
    user = _buyers(tiny.train)[0]
    assert again.recommend(user, 10) == als.recommend(user, 10)


def test_hybrid_surfaces_new_items_to_matching_users(hybrid: HybridRecommender, tiny: SimpleNamespace) -> None:
    items = tiny.items.set_index("item_id")
    fav = tiny.train.assign(category=tiny.train["item_id"].map(items["category"])).groupby("user_id")["category"].agg(
        lambda s: s.value_counts().index[0])
    users_with_new, matching, total_new = 0, 0, 0
    for user in fav.index:
        resp = hybrid.recommend(user, top_k=20)
        assert resp.fallback is None and len({r.item_id for r in resp.items}) == 20
        new = [r for r in resp.items if r.item_id in tiny.new_ids]
        assert all(r.path == "content" for r in new)  # zero interactions: collaborative weight 0
        users_with_new += bool(new)
        total_new += len(new)
        matching += sum(items.loc[r.item_id, "category"] == fav[user] for r in new)
    assert users_with_new / len(fav) > 0.5
    assert matching / max(total_new, 1) > 0.5  # new items go to users whose favourite category they belong to
    paths = {r.path for u in fav.index[:20] for r in hybrid.recommend(u, top_k=20).items}
    assert "hybrid" in paths


def test_cold_user_fallbacks(hybrid: HybridRecommender, tiny: SimpleNamespace) -> None:
    resp = hybrid.recommend("never-seen-user", top_k=10)
    assert resp.fallback == "cold_user" and len(resp.items) == 10
    assert all(r.path == "popular" for r in resp.items)
    assert len({tiny.items.set_index("item_id").loc[r.item_id, "category"] for r in resp.items}) > 1  # per category
    ctx = tiny.items["item_id"].iloc[:2].tolist()
    ctx_cats = set(tiny.items["category"].iloc[:2])
    resp = hybrid.recommend("never-seen-user", top_k=5, context=ctx + ["not-an-item"])
    assert resp.fallback == "cold_user" and all(r.path == "content" for r in resp.items)
    assert not {r.item_id for r in resp.items} & set(ctx)
    assert {tiny.items.set_index("item_id").loc[r.item_id, "category"] for r in resp.items} <= ctx_cats


def test_feature_store_unavailable_is_content_only(hybrid: HybridRecommender, tiny: SimpleNamespace) -> None:
    user = _buyers(tiny.train)[0]
    resp = hybrid.recommend(user, top_k=10, user_features=FEATURE_STORE_UNAVAILABLE)
    assert resp.fallback == "content_only" and len(resp.items) == 10
    assert all(r.path == "content" for r in resp.items)


def test_online_recent_items_feed_the_content_window_newest_first(hybrid: HybridRecommender,
                                                                   tiny: SimpleNamespace) -> None:
    """The online ``recent_items`` list is as long as the longest reader's window; the content recommender reads
    only its own newest ``history_len`` of it, so a longer list than that changes nothing."""
    user = _buyers(tiny.train)[0]
    ids = tiny.items["item_id"].astype(str).tolist()
    n = hybrid.content.history_len
    newest = ids[:n]
    longer = newest + ids[n:n + 7]
    got = hybrid.recommend(user, top_k=10, user_features={"recent_item_ids": longer}).items
    want = hybrid.recommend(user, top_k=10, user_features={"recent_item_ids": newest}).items
    assert [r.item_id for r in got] == [r.item_id for r in want]
    other = hybrid.recommend(user, top_k=10, user_features={"recent_item_ids": ids[n:2 * n]}).items
    assert [r.item_id for r in other] != [r.item_id for r in want]   # the window is read, not ignored


def test_catalog_without_interactions(tiny: SimpleNamespace) -> None:
    rec = build_recommender(tiny.items, tiny.train.iloc[:0], tiny.text, None, None, tiny.params)
    resp = rec.recommend("anyone", top_k=8)
    assert resp.fallback == "no_interactions" and len({r.item_id for r in resp.items}) == 8
    resp = rec.recommend("anyone", top_k=8, context=[tiny.items["item_id"].iloc[0]])
    assert resp.fallback == "no_interactions" and all(r.path == "content" for r in resp.items)


def test_bad_requests_raise_value_error(hybrid: HybridRecommender) -> None:
    for kwargs in ({"top_k": 0}, {"top_k": 10**6}, {"top_k": "5"}, {"context": [1, 2]}, {"context": ["x"] * 1000},
                   {"user_features": "nope"}):
        with pytest.raises(ValueError):
            hybrid.recommend("u_00001", **kwargs)


def test_save_load_roundtrip(hybrid: HybridRecommender, tmp_path: Path) -> None:
    hybrid.save(tmp_path / "recommend")
    again = HybridRecommender.load(tmp_path / "recommend")
    for user in ("u_00001", "u_00050", "never-seen-user"):
        assert again.recommend(user, top_k=10) == hybrid.recommend(user, top_k=10)
    with pytest.raises(FileNotFoundError):
        HybridRecommender.load(tmp_path / "missing")


def test_hybrid_with_exported_two_tower(tiny: SimpleNamespace, tmp_path: Path) -> None:
    from modules.recommend.features import tower_content
    from modules.recommend.two_tower import train_two_tower
    from modules.recommend.two_tower_export import export_two_tower

    params = json.loads(json.dumps(tiny.params))
    params["recommend"]["hybrid"]["collaborative"] = "two_tower"
    params["recommend"]["two_tower"]["epochs"] = 1
    model = train_two_tower(tiny.train, tiny.items, tower_content(tiny.text), params, seed=42)
    export_two_tower(model, tmp_path / "tt" / "1")
    rec = build_recommender(tiny.items, tiny.train, tiny.text, None, None, params, seed=42, two_tower_dir=tmp_path / "tt" / "1")
    assert rec.collab.kind == "two_tower"
    resp = rec.recommend("u_00001", top_k=10)
    assert resp.fallback is None and {r.path for r in resp.items} <= {"hybrid", "content", "two_tower"}


def test_evaluation_never_trains_on_heldout_data(tiny: SimpleNamespace) -> None:
    models = ("popular", "content", "als", "hybrid_als")
    res, fitted = evaluate_recommenders(tiny.items, tiny.inter, tiny.cutoff, tiny.text, None, None, tiny.params,
                                        seed=42, new_item_ids=tiny.new_ids, models=models, return_recommenders=True)
    assert res["max_train_ts"] < tiny.cutoff
    assert res["n_train_interactions"] + res["n_heldout_interactions"] == len(tiny.inter)
    # Scramble every held-out interaction: fitted models must be bit-identical, metrics must change.
    rng = np.random.default_rng(0)
    held = tiny.inter["ts"] >= tiny.cutoff
    scrambled = tiny.inter.copy()
    scrambled.loc[held, "item_id"] = rng.choice(tiny.items["item_id"].to_numpy(), int(held.sum()))
    res2, fitted2 = evaluate_recommenders(tiny.items, scrambled, tiny.cutoff, tiny.text, None, None, tiny.params,
                                          seed=42, new_item_ids=tiny.new_ids, models=models, return_recommenders=True)
    np.testing.assert_array_equal(fitted["collab_als"].item_vectors, fitted2["collab_als"].item_vectors)
    np.testing.assert_array_equal(fitted["collab_als"].user_vectors, fitted2["collab_als"].user_vectors)
    assert fitted["content"].histories.sequences.keys() == fitted2["content"].histories.sequences.keys()
    assert res["models"]["hybrid_als"]["recall@10"] != res2["models"]["hybrid_als"]["recall@10"]
    # Sanity of the numbers themselves: personalised models beat popularity on warm targets.
    for name in models:
        for metric, value in res["models"][name].items():
            if metric != "label":
                assert 0.0 <= value <= 1.0
    assert res["models"]["hybrid_als"]["ndcg@10"] > res["models"]["popular"]["ndcg@10"]
    assert res["models"]["content"]["cold_recall@10"] > res["models"]["popular"]["cold_recall@10"]


def test_write_recommend_section_only_touches_its_section(tmp_path: Path) -> None:
    md = tmp_path / "bench.md"
    md.write_text("# Bench\n\n<!-- BEGIN search -->\nsearch table\n<!-- END search -->\n\nfooter\n")
    res = {"k": 10, "cutoff_ts": 5, "n_items": 3, "n_new_items": 1, "n_train_interactions": 4, "n_heldout_interactions": 2,
           "n_users_warm": 1, "n_users_cold_items": 1, "fit_seconds": 1.0, "training": {},
           "models": {"content": {"label": "Content", "recall@10": 0.5, "ndcg@10": 0.25, "mrr@10": 0.2}}}
    write_recommend_section(res, md, command="python -m x", machine="test box", date="2026-01-01")
    write_recommend_section(res, md, command="python -m x", machine="test box", date="2026-01-01")
    text = md.read_text()
    assert "<!-- BEGIN search -->\nsearch table\n<!-- END search -->" in text and "footer" in text
    assert text.count("<!-- BEGIN recommend -->") == 1
    assert "| Content | 0.5000 | 0.2500 | 0.2000 | n/a | n/a |" in text and "python -m x" in text


def test_evaluation_user_sample_is_seeded_and_reported(tiny: SimpleNamespace) -> None:
    models = ("popular", "content")
    kwargs = dict(seed=42, new_item_ids=tiny.new_ids, models=models)
    full = evaluate_recommenders(tiny.items, tiny.inter, tiny.cutoff, tiny.text, None, None, tiny.params, **kwargs)
    a = evaluate_recommenders(tiny.items, tiny.inter, tiny.cutoff, tiny.text, None, None, tiny.params, max_users=10, **kwargs)
    b = evaluate_recommenders(tiny.items, tiny.inter, tiny.cutoff, tiny.text, None, None, tiny.params, max_users=10, **kwargs)
    assert full["n_users_sampled"] == full["n_users_eligible"] > 10
    assert a["n_users_sampled"] == 10 and a["n_users_eligible"] == full["n_users_eligible"]
    assert a["models"] == b["models"]
    assert a["n_users_warm"] + a["n_users_cold_items"] <= 20


def test_evaluation_cli_rejects_an_embedding_artifact_of_another_catalog(tiny: SimpleNamespace, tmp_path: Path) -> None:
    from modules.evaluation.recommend import main

    ids = tiny.items["item_id"].astype(str).tolist()[:-1]  # the artifact lacks the catalog's last item
    (tmp_path / "item_ids.json").write_text(json.dumps(ids))
    for name in ("text.npy", "image.npy", "color.npy"):
        np.save(tmp_path / name, np.ones((len(ids), 2), dtype=np.float32))
    out = tmp_path / "results.md"
    with pytest.raises(SystemExit, match="lack 1 item"):
        main(["--data-dir", str(tiny.data_dir), "--embeddings", str(tmp_path), "--out", str(out)])
    assert not out.exists()


def test_evaluation_cli_rejects_an_unknown_model_before_any_work(tiny: SimpleNamespace, tmp_path: Path) -> None:
    from modules.evaluation.recommend import main

    out = tmp_path / "results.md"
    with pytest.raises(SystemExit, match="unknown \\['bogus'\\]"):
        main(["--data-dir", str(tiny.data_dir), "--models", "content,bogus", "--out", str(out)])
    assert not out.exists()


def test_cold_start_oracle_bounds_order_on_the_tiny_catalog(tiny: SimpleNamespace, tmp_path: Path) -> None:
    """bench.cold_start_bound: knowing the hidden tastes beats chance, and tastes x popularity beats either alone
    (the generator draws each event from popularity, then the user by taste fit)."""
    from bench.cold_start_bound import main as bound_main

    out = tmp_path / "bound.json"
    assert bound_main(["--data", str(tiny.data_dir), "--max-users", "200", "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["n_users"] > 0 and got["n_new"] > 0
    assert got["taste oracle"] > got["random"]
    assert got["taste x popularity oracle"] >= max(got["taste oracle"], got["popularity oracle"])
    assert bound_main(["--data", str(tmp_path)]) == 2  # no hidden truth: a clear refusal
