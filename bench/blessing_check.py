"""Measure the self-supervised blessing (issue 20) with the real text encoder and with a broken one.

    python bench/blessing_check.py --catalog tiny|fashion [--rows 300] [--text-encoder real|random] [--out m.json]

Builds the engine the benchmark way (``modules.evaluation.search_eval.build_benchmark_engines``) on a catalog whose queries
are self-supervised known-item queries (``modules.data.selfsup``; for the tiny synthetic catalog the judged queries are
replaced by them), trains LambdaMART on the train queries, evaluates the EVAL queries and prints the blessing
decision of ``modules.evaluation.blessing``. ``--text-encoder random`` swaps the MiniLM encoder for one that returns a seeded
random unit vector per text (the broken encoder the blessing must refuse).
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class RandomTextEncoder:
    """A broken text encoder: a random unit vector per text (seeded by the text, so it is at least consistent)."""

    name, dim = "random", 384

    def encode(self, texts, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = np.stack([np.random.default_rng(zlib.crc32(str(t).encode())).standard_normal(self.dim) for t in texts])
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def make_catalog(kind: str, rows: int, root: Path, params: dict) -> Path:
    from modules.data.data_io import load_items
    from modules.data.selfsup import make_selfsupervised_queries

    data = root / "data"
    if kind == "tiny":
        from modules.data.catalog.generate import generate_catalog

        generate_catalog("tiny", data, seed=42, params=params, progress=False)
        queries = make_selfsupervised_queries(load_items(data), data, seed=42, params=params)
        with (data / "queries.jsonl").open("w") as f:
            f.writelines(json.dumps(q) + "\n" for q in queries)
        return data
    from modules.config import shared_dir
    from modules.data.ingest import ingest_catalog

    fashion = shared_dir() / "datasets" / "fashion-sample"
    with (fashion / "catalog.csv").open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        picked = [r for _, r in zip(range(rows), reader, strict=False)]
        header = list(reader.fieldnames or [])
    (root / "photos").mkdir()
    for r in picked:
        shutil.copyfile(fashion / "images" / f"{r['id']}.jpg", root / "photos" / f"{r['id']}.jpg")
        r["image_path"] = f"photos/{r['id']}.jpg"
    with (root / "catalog.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header + ["image_path"])
        w.writeheader()
        w.writerows(picked)
    mapping = {"item_id": "id", "category": "articleType", "color": "baseColour"}
    ingest_catalog(root / "catalog.csv", None, data, mapping=mapping, seed=42, params=params, progress=False)
    return data


def measure(data: Path, params: dict, random_text: bool) -> dict:
    import modules.encoders.text as text_mod
    from modules.data.data_io import load_queries
    from modules.evaluation.search_eval import build_benchmark_engines, evaluate_engine
    from modules.search.rerank_train import build_training_frame, train_ranker

    if random_text:
        text_mod.text_encoder_from_params = lambda p: RandomTextEncoder()
    queries = load_queries(data)
    train = [q for q in queries if q["split"] == "train"]
    evq = [q for q in queries if q["split"] == "eval"]
    engine = build_benchmark_engines(data, params, train, seed=42, with_late=False).engine
    X, y, groups, qids = build_training_frame(engine, train, data_dir=str(data))
    engine.ranker = train_ranker(X, y, groups, params=params, seed=42, qids=qids)
    methods = ("bm25", "text", "hybrid", "hybrid+ltr", "photo", "photo+ltr")
    return evaluate_engine(engine, evq, k=int(params["evaluation"]["k"]), methods=methods, data_dir=str(data))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--catalog", choices=("tiny", "fashion"), default="tiny")
    ap.add_argument("--rows", type=int, default=300)
    ap.add_argument("--text-encoder", choices=("real", "random"), default="real")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    from modules.config import load_params
    from modules.evaluation.blessing import bless_selfsupervised

    params = load_params()
    with tempfile.TemporaryDirectory() as tmp:
        data = make_catalog(args.catalog, args.rows, Path(tmp), params)
        results = measure(data, params, args.text_encoder == "random")
    k = int(params["evaluation"]["k"])
    for key, r in results.items():
        print(f"{key:12s} MRR {r['mrr']:.4f}  Recall@{k} {r[f'recall@{k}']:.4f}  n={r['n_queries']}")
    ok, reasons = bless_selfsupervised(results, None, params)
    print("BLESSED" if ok else "NOT BLESSED", *reasons, sep="\n  ")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
