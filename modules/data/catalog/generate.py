"""`generate_catalog`: writes a complete synthetic DATA_DIR (see docs/architecture.md).

Output is a pure function of (scale, seed, params): every random stream is seeded from ``seed`` plus a fixed
stream id (and the item/query index for images), so files are byte-identical whatever the worker count.
"""
from __future__ import annotations

import json
import logging
import multiprocessing as mp
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from modules.checksums import sha256_file
from modules.config import param_seed
from modules.data.catalog import vocab
from modules.data.catalog.images import render_item
from modules.data.catalog.interactions import sample_interactions, sample_users, users_frame
from modules.data.catalog.items import PUBLIC_COLUMNS, TRUTH_COLUMNS, sample_items
from modules.data.catalog.queries import build_queries
from modules.settings import load_section, merge_section

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
DAY = 86_400
COUNT_KEYS = ("n_items", "n_users", "n_interactions", "n_text_queries", "n_image_queries", "n_composed_queries")
OUTPUT_FILES = ("items.csv", "interactions.csv", "queries.jsonl", "truth_items.csv", "truth_users.csv",
                "new_items.txt", "manifest.json")
# params that do not change the output (kept out of the manifest so it is worker-count independent)
_NOT_OUTPUT_AFFECTING = frozenset({"scale", "scales", "workers", "render_chunk"})
# random stream ids (combined with the seed, and the item/query index for images)
_S_ITEMS, _S_USERS, _S_INTERACTIONS, _S_IMAGE, _S_STREET = 101, 201, 202, 401, 402


def _rate(gen: dict, key: str, lo: float = 0.0, hi: float = 1.0) -> float:
    value = gen.get(key)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"generate.{key} must be a number, got {value!r}") from None
    if not lo <= value <= hi:
        raise ValueError(f"generate.{key} must be in [{lo}, {hi}], got {value}")
    return value


def resolve_config(scale: str, params: dict | None) -> tuple[dict, dict, list[str]]:
    """Validate params and return (generate section, counts for the scale, categories). Raises ValueError."""
    if params is None:
        from modules.config import load_params

        params = load_params()
    gen = params.get("generate") if isinstance(params, dict) else None
    if not isinstance(gen, dict):
        raise ValueError("params must contain a 'generate' mapping (see params.yaml)")
    gen = merge_section("generate", gen)   # params.yaml's generate section fills what the caller left out
    scales = gen.get("scales") or {}
    if scale not in scales:
        raise ValueError(f"unknown scale {scale!r}; expected one of {sorted(scales)}")
    counts: dict[str, int] = {}
    for key in COUNT_KEYS:
        value = scales[scale].get(key)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"generate.scales.{scale}.{key} must be a positive integer, got {value!r}")
        counts[key] = int(value)
    categories = list(gen.get("categories") or vocab.CATEGORY_NAMES)
    unknown = [c for c in categories if c not in vocab.CATEGORIES]
    if unknown:
        raise ValueError(f"generate.categories has unknown categories {unknown}; known: {vocab.CATEGORY_NAMES}")
    if len(set(categories)) != len(categories):
        raise ValueError(f"generate.categories has duplicates: {categories}")
    for key in ("color_in_title_rate", "new_sku_fraction", "query_eval_fraction", "pattern_in_text_rate",
                "cold_query_fraction"):
        _rate(gen, key)
    _rate(gen, "zipf_exponent", lo=0.01, hi=5.0)
    _rate(gen, "new_sku_fraction", hi=0.9)
    size = gen["image_size"]
    if not isinstance(size, int) or not 32 <= size <= 1024:
        raise ValueError(f"generate.image_size must be an integer in [32, 1024], got {size!r}")
    workers = gen.get("workers")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"generate.workers must be a positive integer, got {workers!r}")
    hist, hold = gen["history_days"], gen["holdout_days"]
    if not (isinstance(hist, int) and isinstance(hold, int) and 0 < hold < hist):
        raise ValueError(f"need integers 0 < holdout_days < history_days, got {hold!r}, {hist!r}")
    if str(gen["image_format"]).lower() != "png":
        raise ValueError(f"generate.image_format: only 'png' is supported, got {gen['image_format']!r}")
    load_section("generate", gen)          # every other key: known, present and of its type
    return gen, counts, categories


def _prepare_out_dir(out: Path) -> None:
    """Create ``out``; refuse to write into a non-empty directory that is not a previous generated catalog."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"output path exists and is not a directory: {out}")
    # Dotfiles (.gitkeep, .dvcignore) don't count: the repo's data/ ships with a .gitkeep.
    if out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir()):
        manifest = out / "manifest.json"
        try:
            previous = json.loads(manifest.read_text())
        except (OSError, ValueError):
            previous = {}
        if previous.get("source") != "generated":
            raise ValueError(f"refusing to overwrite non-empty directory {out} (it holds no generated catalog)")
        for name in OUTPUT_FILES:
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / "images", ignore_errors=True)
    (out / "images" / "queries").mkdir(parents=True, exist_ok=True)


# --- image rendering (worker side) ------------------------------------------------------------------------------------
def _render_chunk(args: tuple[str, int, int, int, int, list[tuple[int, str, str, str, str]]]) -> int:
    out_dir, seed, stream, size, compress, jobs = args
    for index, category, color, pattern, rel_path in jobs:
        rng = np.random.default_rng([seed, stream, index])
        img = render_item(category, color, pattern, rng, size, street=stream == _S_STREET)
        img.save(Path(out_dir) / rel_path, "PNG", compress_level=compress)
    return len(jobs)


def _render_all(out: Path, seed: int, stream: int, jobs: list[tuple[int, str, str, str, str]], gen: dict,
                desc: str, progress: bool, pool: Any) -> None:
    size = int(gen["image_size"])
    compress = int(gen["png_compress_level"])
    chunk = max(1, int(gen["render_chunk"]))
    tasks = [(str(out), seed, stream, size, compress, jobs[i:i + chunk]) for i in range(0, len(jobs), chunk)]
    results: Iterable[int] = pool.imap_unordered(_render_chunk, tasks) if pool else map(_render_chunk, tasks)
    with tqdm(total=len(jobs), desc=desc, unit="img", disable=not progress) as bar:
        for done in results:
            bar.update(done)


# --- writing ----------------------------------------------------------------------------------------------------------
def _write_csv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, index=False, lineterminator="\n")  # floats are pre-rounded; repr is deterministic


def _render_photos(out: Path, seed: int, items: pd.DataFrame, street_jobs: list, gen: dict,
                   progress: bool) -> tuple[int, int]:
    """Render every product photo and every street photo (over ``generate.workers`` forked processes); returns
    (product photos, street photos)."""
    item_jobs = [(i, c, col, pat, path) for i, (c, col, pat, path) in
                 enumerate(items[["category", "color", "pattern", "image_path"]].itertuples(index=False))]
    street = [(j.item_index, items.at[j.item_index, "category"], items.at[j.item_index, "color"],
               items.at[j.item_index, "pattern"], j.image_path) for j in street_jobs]
    # street photos are seeded by query index, not item index (an item may be photographed twice)
    street = [(q, *job[1:]) for q, job in enumerate(street)]
    workers = int(gen["workers"])
    # fork: workers inherit the loaded modules and never re-run the caller's __main__ (spawn would, and break
    # unguarded scripts). Workers only run numpy/PIL, so forking a process that has loaded TensorFlow is safe.
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    pool = ctx.Pool(workers) if workers > 1 else None
    try:
        _render_all(out, seed, _S_IMAGE, item_jobs, gen, "product images", progress, pool)
        _render_all(out, seed, _S_STREET, street, gen, "street photos", progress, pool)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return len(item_jobs), len(street)


def _write_tables(out: Path, items: pd.DataFrame, users: Any, inter: pd.DataFrame, queries: list[dict],
                  categories: Any) -> list[str]:
    """items.csv, truth_items.csv, truth_users.csv, interactions.csv, queries.jsonl and new_items.txt; returns the
    new item ids."""
    _write_csv(items[PUBLIC_COLUMNS], out / "items.csv")
    _write_csv(items[TRUTH_COLUMNS], out / "truth_items.csv")
    _write_csv(users_frame(users, categories), out / "truth_users.csv")
    _write_csv(inter, out / "interactions.csv")
    with (out / "queries.jsonl").open("w", encoding="utf-8", newline="\n") as f:
        for q in queries:
            f.write(json.dumps(q, ensure_ascii=False) + "\n")
    new_ids = items.loc[items["is_new"], "item_id"].tolist()
    (out / "new_items.txt").write_text("".join(f"{i}\n" for i in new_ids))
    return new_ids


def _manifest(out: Path, seed: int, scale: str, gen: dict, counts: dict, categories: Any, items: pd.DataFrame,
              inter: pd.DataFrame, queries: list[dict], new_ids: list[str], n_images: int, n_street: int,
              window: tuple[int, int, int]) -> dict:
    """The manifest (counts, time window, generator parameters, output checksums)."""
    start_ts, cutoff_ts, end_ts = window
    by_kind = pd.Series([q["kind"] for q in queries]).value_counts().to_dict() if queries else {}
    manifest = {
        "source": "generated",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "scale": scale,
        "counts": {
            "items": len(items),
            "users": counts["n_users"],
            "interactions": len(inter),
            "interactions_train": int((inter["ts"] < cutoff_ts).sum()),
            "new_items": len(new_ids),
            "queries": len(queries),
            "queries_by_kind": {k: int(by_kind.get(k, 0)) for k in ("text", "image", "composed")},
            "queries_cold": sum(bool(q["cold"]) for q in queries),
            "queries_eval": sum(q["split"] == "eval" for q in queries),
            "images": n_images,
            "street_photos": n_street,
        },
        "start_ts": start_ts,
        "cutoff_ts": cutoff_ts,
        "end_ts": end_ts,
        "new_item_ids_file": "new_items.txt",
        "image_size": int(gen["image_size"]),
        "categories": categories,
        "colors": vocab.COLOR_NAMES,
        "params": {k: v for k, v in gen.items() if k not in _NOT_OUTPUT_AFFECTING} | {"counts": counts},
        "checksums": {name: sha256_file(out / name) for name in OUTPUT_FILES if name != "manifest.json"},
    }
    return manifest


def generate_catalog(scale: str, out_dir: str | Path, seed: int | None = None, params: dict | None = None,
                     progress: bool = True) -> dict:
    """Generate a synthetic catalog at ``scale`` (a key of params generate.scales) into ``out_dir``.

    Writes items.csv, interactions.csv, queries.jsonl, images/<item_id>.png, images/queries/*.png,
    truth_items.csv, truth_users.csv, new_items.txt and manifest.json; returns the manifest.
    Raises ValueError on bad parameters or an output directory that must not be overwritten.
    """
    seed = param_seed(params) if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    gen, counts, categories = resolve_config(scale, params)
    out = Path(out_dir)
    _prepare_out_dir(out)

    start_ts = int(gen["start_ts"])
    end_ts = start_ts + int(gen["history_days"]) * DAY
    cutoff_ts = end_ts - int(gen["holdout_days"]) * DAY

    log.info("sampling %d items, %d users, %d interactions", counts["n_items"], counts["n_users"],
             counts["n_interactions"])
    items = sample_items(counts["n_items"], categories, gen, np.random.default_rng([seed, _S_ITEMS]),
                         start_ts, cutoff_ts, end_ts)
    users = sample_users(counts["n_users"], categories, np.random.default_rng([seed, _S_USERS]))
    inter, ranks = sample_interactions(items, users, categories, counts["n_interactions"], gen,
                                       np.random.default_rng([seed, _S_INTERACTIONS]), start_ts, cutoff_ts, end_ts)
    items["pop_rank"] = ranks
    queries, street_jobs = build_queries(items, counts, gen, seed, progress)

    n_images, n_street = _render_photos(out, seed, items, street_jobs, gen, progress)
    new_ids = _write_tables(out, items, users, inter, queries, categories)
    manifest = _manifest(out, seed, scale, gen, counts, categories, items, inter, queries, new_ids, n_images, n_street,
                         (start_ts, cutoff_ts, end_ts))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return manifest
