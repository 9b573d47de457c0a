"""EVAL NDCG@10 of a pushed bundle per query kind while one retrieval setting varies (in process, the server's loader).

    python -m bench.retrieval_sweep --serving-dir /tmp/demo5/serving_dir --data /tmp/demo5/data \\
        --setting rerank_depth --values "null;300;150;100"
    python -m bench.retrieval_sweep --serving-dir /tmp/serving_full2 --data /tmp/pm_full \\
        --values '{"candidates": 200}; {"candidates": 100, "hnsw.ef_search": 128}'

Loads the LATEST bundle with ``serving.bundle_loading.load_components``, answers every EVAL text, photo and
photo + text query (``search_text`` / ``search_image`` / ``search_multimodal``, re-ranker on) once per value of
``retrieval.<setting>`` (JSON values; the bundle's ranker stays the one it was trained with), and prints mean NDCG@10
per kind and how many top-10 lists differ from the first value's. Without ``--setting`` each value is a JSON object
of settings changed together; ``hnsw.ef_search`` sets the efSearch of the three HNSW indexes.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

KINDS = ("text", "image", "composed")
EF_SEARCH = "hnsw.ef_search"
INDEXES = ("text_index", "image_index", "fused_index")


def answer(engine, query: dict, photo) -> list[str]:
    if query["kind"] == "text":
        resp = engine.search_text(query["text"], top_k=10)
    elif query["kind"] == "image":
        resp = engine.search_image(photo, top_k=10)
    else:
        resp = engine.search_multimodal(query["text"], photo, top_k=10)
    return [str(r.item_id) for r in resp.results]


def main(argv: list[str] | None = None) -> int:
    from bench._common import latest_bundle_or_exit
    from modules.config import load_params
    from modules.data.data_io import load_queries
    from modules.data.images import load_image
    from modules.evaluation.metrics import ndcg_at_k
    from serving.bundle_loading import load_components

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serving-dir", required=True)
    ap.add_argument("--data", required=True, help="the DATA_DIR the bundle was built from (queries.jsonl, photos)")
    ap.add_argument("--setting", default=None, help="a top-level key of the retrieval section, e.g. rerank_depth")
    ap.add_argument("--values", required=True, help="semicolon-separated JSON values, e.g. 'null;300;150' (without "
                                                    "--setting: JSON objects {setting: value, ...})")
    a = ap.parse_args(argv)
    _, version_dir = latest_bundle_or_exit(a.serving_dir)
    engine, _ = load_components(version_dir, load_params())
    state = engine.state
    known = {f.name for f in dataclasses.fields(state.retrieval)} | {EF_SEARCH}
    variants = [json.loads(raw) if a.setting is None else {a.setting: json.loads(raw)} for raw in a.values.split(";")]
    for v in variants:
        if not isinstance(v, dict) or not set(v) <= known:
            ap.error(f"each variant must set known settings ({sorted(known)}), got {v!r}")
    base = state.retrieval
    queries = [q for q in load_queries(a.data, split="eval") if q["kind"] in KINDS]
    photos = [load_image(Path(a.data) / q["image_path"]) if q.get("image_path") else None for q in queries]
    first = None
    base_ef = {name: getattr(state, name).ef_search for name in INDEXES}
    for variant in variants:
        settings = {k: v for k, v in variant.items() if k != EF_SEARCH}
        state.retrieval = dataclasses.replace(base, **settings)
        for name in INDEXES:
            getattr(state, name).ef_search = int(variant.get(EF_SEARCH, base_ef[name]))
        ranked = [answer(engine, q, p) for q, p in zip(queries, photos, strict=True)]
        first = first or ranked
        ndcg = {kind: round(float(np.mean([ndcg_at_k(r, q["relevance"], 10) for r, q in zip(ranked, queries,
                                                                                          strict=True)
                                           if q["kind"] == kind] or [np.nan])), 5) for kind in KINDS}
        changed = sum(x != y for x, y in zip(first, ranked, strict=True))
        print(json.dumps({**variant, "ndcg@10": ndcg, "top10_lists_changed": changed,
                          "queries": len(queries)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
