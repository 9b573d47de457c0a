"""Offline evaluation of the recommenders on a temporal split (train: ts < cutoff_ts <= test).

Protocol (per user who has both training history and held-out interactions):
* every model is fitted on training-window interactions only (held-out rows never reach a builder);
* items the user interacted with in the training window are removed from the ranking *and* from the targets
  (re-finding them is not a recommendation);
* warm: targets = held-out items that existed before the cutoff; ranking over the whole catalog;
  Recall@k, NDCG@k (binary gains) and MRR@k;
* cold-start: targets = held-out items that are new SKUs (no training interactions); Recall@k over the whole
  catalog (can the model surface new items at all) and Recall@k among new SKUs only (does it pick the right one).
* new-arrival slots (``new_arrival_slots`` > 0): each hybrid is scored a second time, as ``<model>+new_arrivals``,
  with that many of its top-k places kept for new arrivals as served (``modules.recommend.new_arrivals``): what the
  slots buy in whole-catalog new-SKU recall and what they cost in warm NDCG.

Run at small scale (writes the ``recommend`` section of docs/benchmark_results.md):
    python -m modules.evaluation.recommend --data-dir /tmp/pm_small --out docs/benchmark_results.md
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modules.config import param_seed
from modules.evaluation.metrics import mrr, ndcg_at_k, recall_at_k
from modules.recommend.content import ContentRecommender
from modules.recommend.features import (
    item_interaction_counts,
    temporal_split,
    validate_interactions,
    validate_items,
    weighted_popularity,
)
from modules.recommend.hybrid import CollabVectors, HybridRecommender, build_collab
from modules.recommend.new_arrivals import with_new_arrivals
from modules.settings import load_section

log = logging.getLogger(__name__)
SECTION = "recommend"
MODEL_LABELS = {
    "popular": "Popularity (baseline)",
    "content": "Content (text + colour + attributes)",
    "als": "ALS (implicit)",
    "two_tower": "Two-tower (TFRS)",
    "hybrid_two_tower": "Hybrid (two-tower + content)",
    "hybrid_als": "Hybrid (ALS + content)",
}
SLOTTED = "+new_arrivals"


def _label(name: str, slots: int) -> str:
    base = name.removesuffix(SLOTTED)
    label = MODEL_LABELS.get(base, base)
    return f"{label}, {slots} new-arrival slots" if name.endswith(SLOTTED) else label


def _rank(scores: np.ndarray, exclude: np.ndarray, k: int, candidates: np.ndarray | None = None) -> np.ndarray:
    """Indices of the top-k items by score, excluding ``exclude`` (and restricted to ``candidates`` if given)."""
    s = scores.astype(np.float64).copy()
    s[exclude] = -np.inf
    if candidates is not None:
        mask = np.full(len(s), -np.inf)
        mask[candidates] = 0.0
        s = s + mask
    k = min(k, int(np.isfinite(s).sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-s, k - 1)[:k]
    return top[np.argsort(-s[top], kind="stable")]


def _new_item_index(items: pd.DataFrame, counts: np.ndarray, cutoff_ts: int, new_item_ids: set[str] | None
                    ) -> np.ndarray:
    """Row indices of the new items: ``new_item_ids``, or items with no training interactions and
    ``created_at >= cutoff_ts`` (no training interactions at all when ``created_at`` is absent)."""
    if new_item_ids is None:
        created = pd.to_numeric(items.get("created_at", pd.Series(np.full(len(items), cutoff_ts))), errors="coerce")
        new_mask = (counts == 0) & (created.fillna(cutoff_ts).to_numpy() >= cutoff_ts)
    else:
        new_mask = np.isin(np.asarray(items["item_id"].tolist(), dtype=object), list(new_item_ids))
    return np.flatnonzero(new_mask)


def _fit_collabs(models: tuple[str, ...], items: pd.DataFrame, train: pd.DataFrame, text_emb: np.ndarray,
                 image_emb: np.ndarray | None, content: Any, params: dict[str, Any], seed: int
                 ) -> tuple[dict[str, CollabVectors], dict[str, Any]]:
    """The collaborative models ``models`` need (ALS, two-tower), each with its training metrics and fit time."""
    collabs: dict[str, CollabVectors] = {}
    train_metrics: dict[str, Any] = {}
    for kind in ("als", "two_tower"):
        if kind in models or f"hybrid_{kind}" in models:
            start = time.perf_counter()
            collabs[kind], m = build_collab(kind, items, train, text_emb, image_emb, content.vectors, params, seed)
            train_metrics[kind] = {**{a: b for a, b in m.items() if a != "history"},
                                   "fit_seconds": time.perf_counter() - start}
    return collabs, train_metrics


def _score_user(acc: dict[str, list[float]], scores: np.ndarray, seen: np.ndarray, targets: tuple[set[int], set[int]],
                item_ids: list[str], new_idx: np.ndarray, k: int, slots: int = 0) -> None:
    """Append one user's warm-target and cold-target metrics of one model to ``acc`` (``slots`` > 0: with that many
    places of the top k kept for new arrivals)."""
    warm_t, cold_t = targets
    top = _rank(scores, seen, k)
    if slots:
        top = with_new_arrivals(top, np.where(np.isin(np.arange(len(scores)), seen), -np.inf, scores), new_idx, seen,
                                slots)
    ranked = [item_ids[i] for i in top]
    if warm_t:
        rel = {item_ids[i]: 1 for i in warm_t}
        acc.setdefault(f"recall@{k}", []).append(recall_at_k(ranked, rel, k))
        acc.setdefault(f"ndcg@{k}", []).append(ndcg_at_k(ranked, rel, k))
        acc.setdefault(f"mrr@{k}", []).append(mrr(ranked, rel, k))
    if cold_t:
        rel = {item_ids[i]: 1 for i in cold_t}
        acc.setdefault(f"cold_recall@{k}", []).append(recall_at_k(ranked, rel, k))
        ranked_new = [item_ids[i] for i in _rank(scores, seen, k, candidates=new_idx)]
        acc.setdefault(f"cold_recall@{k}_among_new", []).append(recall_at_k(ranked_new, rel, k))


def _sample_users(users: list[str], max_users: int | None, seed: int) -> list[str]:
    if max_users is not None and len(users) > max_users:
        pick = np.random.default_rng(seed).choice(len(users), size=max_users, replace=False)
        return [users[i] for i in sorted(pick)]
    return users


def _evaluate_users(models: tuple[str, ...], scorer: Any, users: list[str], test_items: pd.Series, histories: Any,
                    new_idx: np.ndarray, item_ids: list[str], k: int, slots: int = 0
                    ) -> tuple[dict[str, dict[str, list[float]]], int, int]:
    """Per model, the per-user metric lists over ``users``; plus how many users had warm / cold targets."""
    slotted = [m + SLOTTED for m in models if slots and m.startswith("hybrid_")]
    per_model: dict[str, dict[str, list[float]]] = {m: {} for m in (*models, *slotted)}
    new_set = set(new_idx.tolist())
    n_warm_users = n_cold_users = 0
    for user in users:
        seen = histories.interacted(user)
        targets = test_items[user] - set(seen.tolist())
        warm_t = {i for i in targets if i not in new_set}
        cold_t = {i for i in targets if i in new_set}
        if not warm_t and not cold_t:
            continue
        n_warm_users += bool(warm_t)
        n_cold_users += bool(cold_t)
        for name in models:
            scores = scorer(name, user)
            if scores is None:  # model has no vector for this user: an empty ranking scores 0
                scores = np.full(len(item_ids), -np.inf)
            _score_user(per_model[name], scores, seen, (warm_t, cold_t), item_ids, new_idx, k)
            if name + SLOTTED in per_model:
                _score_user(per_model[name + SLOTTED], scores, seen, (warm_t, cold_t), item_ids, new_idx, k, slots)
    return per_model, n_warm_users, n_cold_users


def _scorer(popularity: np.ndarray, content: ContentRecommender, collabs: dict[str, Any],
            hybrids: dict[str, HybridRecommender]) -> Any:
    """``scorer(model name, user) -> scores over the catalog`` (None: the hybrid has nothing for that user)."""
    def scorer(name: str, user: str) -> np.ndarray | None:
        if name == "popular":
            return popularity
        if name == "content":
            return content.score_all(user)
        if name in collabs:
            return collabs[name].score_all(user)
        scored = hybrids[name].score_user(user)
        return None if scored is None else scored[0]

    return scorer


def _split_with_content(items: pd.DataFrame, interactions: pd.DataFrame, cutoff_ts: int, text_emb: np.ndarray,
                        image_emb: np.ndarray | None, color_feats: np.ndarray | None, params: dict[str, Any],
                        photo_colours: list[str] | None, seed: int
                        ) -> tuple[pd.DataFrame, pd.DataFrame, ContentRecommender]:
    """(training, held-out) interactions on catalog items, split at ``cutoff_ts``, and the content recommender built
    on the training window (its histories checked for a held-out interaction: a leak raises)."""
    train, test = temporal_split(validate_interactions(interactions), int(cutoff_ts))
    content = ContentRecommender.build(items, train, text_emb, image_emb, color_feats, params, photo_colours, seed)
    train = validate_interactions(train, content.item_index)
    test = validate_interactions(test, content.item_index)
    if content.histories.max_ts is not None and content.histories.max_ts >= cutoff_ts:
        raise AssertionError("leak: a training history contains a held-out interaction")
    return train, test, content


def evaluate_recommenders(
    items: pd.DataFrame,
    interactions: pd.DataFrame,
    cutoff_ts: int,
    text_emb: np.ndarray,
    image_emb: np.ndarray | None,
    color_feats: np.ndarray | None,
    params: dict[str, Any],
    seed: int | None = None,
    new_item_ids: set[str] | None = None,
    models: tuple[str, ...] = tuple(MODEL_LABELS),
    return_recommenders: bool = False,
    max_users: int | None = None,
    photo_colours: list[str] | None = None,
    new_arrival_slots: int | None = None,
) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any]]:
    """Fit every model in ``models`` on the training window and score it on held-out interactions.

    ``new_item_ids`` defaults to items with no training interactions and ``created_at >= cutoff_ts`` (or no
    training interactions at all when ``created_at`` is absent). Returns a dict of metrics (and, with
    ``return_recommenders``, the fitted objects keyed ``content``, ``collab_<kind>``, ``hybrid_<kind>``).
    ``max_users`` evaluates a seeded random sample of the held-out users (full scale: bounds the wall time).
    ``photo_colours``: the colour namer's name per item (a taste column, as the pipeline builds it).
    ``new_arrival_slots``: also score each hybrid with that many new-arrival places (None: params.yaml's value).
    """
    seed = param_seed(params) if seed is None else seed
    rec = params.get("recommend", params)
    k = load_section("evaluation", params.get("evaluation")).k
    items = validate_items(items)
    item_ids = items["item_id"].tolist()
    train, test, content = _split_with_content(items, interactions, cutoff_ts, text_emb, image_emb, color_feats, params,
                                               photo_colours, seed)
    index, histories = content.item_index, content.histories
    counts = item_interaction_counts(train, index, len(items))
    popularity = weighted_popularity(train, index, len(items), rec["event_weights"])
    new_idx = _new_item_index(items, counts, cutoff_ts, new_item_ids)

    t0 = time.perf_counter()
    collabs, train_metrics = _fit_collabs(models, items, train, text_emb, image_emb, content, params, seed)
    hybrids = {
        f"hybrid_{kind}": HybridRecommender(items, content, collabs[kind], counts, popularity, params)
        for kind in collabs
        if f"hybrid_{kind}" in models
    }

    scorer = _scorer(popularity, content, collabs, hybrids)
    eligible = sorted(set(test["user_id"]) & set(histories.user_ids))
    users = _sample_users(eligible, max_users, seed)
    test_items = test.assign(idx=test["item_id"].map(index)).groupby("user_id")["idx"].agg(lambda s: set(s.tolist()))
    slots = int(rec["hybrid"]["new_arrival_slots"] if new_arrival_slots is None else new_arrival_slots)
    per_model, n_warm_users, n_cold_users = _evaluate_users(models, scorer, users, test_items, histories, new_idx,
                                                            item_ids, k, slots)
    results: dict[str, Any] = {
        "k": k, "cutoff_ts": int(cutoff_ts), "n_items": len(items), "n_new_items": len(new_idx),
        "n_train_interactions": len(train), "n_heldout_interactions": len(test), "max_train_ts": histories.max_ts,
        "n_users_warm": n_warm_users, "n_users_cold_items": n_cold_users, "n_users_eligible": len(eligible),
        "n_users_sampled": len(users), "fit_seconds": time.perf_counter() - t0, "training": train_metrics,
        "taste_weights": content.taste_weights, "new_arrival_slots": slots,
        "models": {
            name: {"label": _label(name, slots), **{m: float(np.mean(v)) for m, v in acc.items()}}
            for name, acc in per_model.items()
        },
    }
    if return_recommenders:
        fitted = {"content": content, **{f"collab_{k_}": v for k_, v in collabs.items()}, **hybrids}
        return results, fitted
    return results


def render_recommend_section(
    results: dict[str, Any], command: str, machine: str, date: str, title: str = "Recommendations (temporal split)"
) -> str:
    k = results["k"]
    sampled = ""
    if results.get("n_users_sampled", 0) < results.get("n_users_eligible", 0):
        sampled = (f" Users: a seeded random sample of {results['n_users_sampled']} of the "
                   f"{results['n_users_eligible']} users with training history and held-out interactions.")
    lines = [
        f"## {title}",
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine}",
        f"- Date: {date}",
        f"- Data: {results['n_items']} items ({results['n_new_items']} new SKUs), "
        f"{results['n_train_interactions']} training interactions (ts < {results['cutoff_ts']}), "
        f"{results['n_heldout_interactions']} held-out interactions; {results['n_users_warm']} users with warm targets, "
        f"{results['n_users_cold_items']} users with new-SKU targets.{sampled}",
        "- Protocol: models fitted on the training window only; items a user already interacted with in training are "
        "removed from both ranking and targets; binary relevance.",
        "",
        f"| Model | Recall@{k} | NDCG@{k} | MRR@{k} | New-SKU Recall@{k} (full catalog) | New-SKU Recall@{k} (among new SKUs) |",
        "|---|---|---|---|---|---|",
    ]

    def f(v: Any) -> str:
        return "n/a" if v is None else f"{float(v):.4f}"

    for _name, r in results["models"].items():
        lines.append(
            f"| {r['label']} | {f(r.get(f'recall@{k}'))} | {f(r.get(f'ndcg@{k}'))} | {f(r.get(f'mrr@{k}'))} | "
            f"{f(r.get(f'cold_recall@{k}'))} | {f(r.get(f'cold_recall@{k}_among_new'))} |"
        )
    tt = results.get("training", {}).get("two_tower")
    if tt:
        lines += ["", f"Two-tower early stopping: best epoch {tt.get('best_epoch')} of {tt.get('epochs_run')}, "
                  f"recall@{k} {f(tt.get(f'eval_recall@{k}'))} on the last slice of the training window."]
    taste = results.get("taste_weights")
    if taste:
        lines.append("Attribute taste weights (leave-last-out logistic fit on the training window): "
                     + ", ".join(f"{name} {w:+.3f}" for name, w in taste.items()) + ".")
    lines.append(f"Total fit + evaluation wall time: {results['fit_seconds']:.0f} s.")
    return "\n".join(lines)


def write_recommend_section(
    results: dict[str, Any],
    out_md: str | Path,
    command: str = "",
    machine: str | None = None,
    date: str | None = None,
    section: str = SECTION,
    title: str = "Recommendations (temporal split)",
) -> Path:
    """Rewrite only the ``<!-- BEGIN <section> --> ... <!-- END <section> -->`` section of ``out_md``."""
    from modules.evaluation.report import machine_info, replace_section

    out = Path(out_md)
    body = render_recommend_section(
        results, command or "(not recorded)", machine or machine_info(), date or dt.date.today().isoformat(), title
    )
    doc = out.read_text() if out.is_file() else ""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(replace_section(doc, section, body))
    return out


def _content_inputs(data_dir: Path, items: pd.DataFrame, params: dict[str, Any], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """SBERT text embeddings and model-free colour/texture features of the item photos."""
    from modules.data.data_io import item_text
    from modules.data.images import load_image
    from modules.encoders.color import color_features
    from modules.encoders.text import TextEncoder

    text_p = load_section("encoders.text", params.get("encoders", {}).get("text"))
    encoder = TextEncoder(text_p.model, text_p.max_seq_length)
    text = encoder.encode(item_text(items), batch_size=text_p.batch_size)
    colors = []
    for rel in items["image_path"].fillna("").astype(str):
        colors.append(color_features(load_image(data_dir / rel), params, seed=seed) if rel else None)
    dim = next(len(c) for c in colors if c is not None)
    color = np.stack([c if c is not None else np.zeros(dim, np.float32) for c in colors]).astype(np.float32)
    return text, color


def main(argv: list[str] | None = None) -> None:
    from modules.config import load_params
    from modules.data.data_io import (
        load_embedding_rows,
        load_interactions,
        load_items,
        load_manifest,
        load_photo_colours,
        new_item_ids,
    )

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--out", default="docs/benchmark_results.md")
    ap.add_argument("--json", default="", help="also write the raw results here")
    ap.add_argument("--params", default=None)
    ap.add_argument("--embeddings", default="",
                    help="an EmbeddingGen artifact dir (text.npy, image.npy, color.npy, item_ids.json) to reuse "
                         "instead of encoding the catalog again; its image rows join the content vectors")
    ap.add_argument("--max-users", type=int, default=None, help="evaluate a seeded random sample of users")
    ap.add_argument("--new-arrival-slots", type=int, default=None,
                    help="also score each hybrid with this many new-arrival places (default: params.yaml's)")
    ap.add_argument("--models", default=",".join(MODEL_LABELS),
                    help="comma-separated models to fit and score (default: all of " + ", ".join(MODEL_LABELS) + ")")
    ap.add_argument("--section", default=SECTION, help="the docs section to rewrite")
    ap.add_argument("--title", default="Recommendations (temporal split)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    unknown = sorted(set(models) - set(MODEL_LABELS))
    if unknown or not models:
        raise SystemExit(f"--models: unknown {unknown or 'empty list'}; choose from {', '.join(MODEL_LABELS)}")
    params = load_params(args.params)
    seed = param_seed(params)
    data_dir = Path(args.data_dir)
    items, interactions, manifest = load_items(data_dir), load_interactions(data_dir), load_manifest(data_dir)
    image = None
    if args.embeddings:
        try:  # reuse the pipeline's vectors; a catalog/artifact mismatch is a usage error, not a traceback
            text, image, color = load_embedding_rows(args.embeddings, items["item_id"].astype(str).tolist())
            photo_colours = load_photo_colours(args.embeddings, items["item_id"].astype(str).tolist())
        except (ValueError, FileNotFoundError) as exc:
            raise SystemExit(str(exc)) from exc
    else:
        text, color = _content_inputs(data_dir, items, params, seed)
        photo_colours = None
    results = evaluate_recommenders(
        items, interactions, int(manifest["cutoff_ts"]), text, image, color, params, seed,
        new_item_ids=new_item_ids(data_dir, items), max_users=args.max_users, photo_colours=photo_colours,
        new_arrival_slots=args.new_arrival_slots, models=models,
    )
    print(json.dumps(results, indent=2, default=float))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float))
    command = "python -m modules.evaluation.recommend " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    write_recommend_section(results, args.out, command=command, section=args.section, title=args.title)


if __name__ == "__main__":
    main()
