"""Colour learned from a real catalog's own labels: how often the attribute classifier of ``modules.attributes``
names a held-out photo's colour right, against the palette-normalised label.

    .venv/bin/python -m bench.colour_learned --embeddings bench/out/fashion_full_all/pipeline_root/EmbeddingGen/embeddings/<id>

Reads an EmbeddingGen artifact of the fashion sample (its cached frozen backbone features, colour features and image
vectors), normalises ``baseColour`` with ``normalize_color_name`` (labels outside the basic vocabulary, e.g. "Multi",
are left out), fits the same logistic regression the pipeline uses (``attributes`` in params.yaml) on a seeded half
and prints the accuracy on the other half, overall and per colour. This is what a catalog with colour labels gets;
the model-free namer (``bench.colour_naming``) is what a catalog without them gets.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def artifact_features(emb: Path, cfg: dict) -> tuple[list[str], np.ndarray, np.ndarray]:
    """An EmbeddingGen artifact's item ids, the attribute classifier's features of each item
    (``modules.attributes.attribute_features`` with ``cfg``, params.yaml's ``attributes``) and which items have a
    photo."""
    from modules.attributes import attribute_features
    from modules.data.data_io import EMB_COLOR_FILE, EMB_IDS_FILE, EMB_IMAGE_FILE

    ids = json.loads((emb / EMB_IDS_FILE).read_text())
    image, colour = np.load(emb / EMB_IMAGE_FILE), np.load(emb / EMB_COLOR_FILE)
    return ids, attribute_features(image, colour, float(cfg["color_weight"])), image.any(axis=1)


def main(argv: list[str] | None = None) -> int:
    from modules.attributes import attribute_classifier
    from modules.config import load_params, shared_dir
    from modules.data.data_io import EMB_IDS_FILE
    from modules.encoders.color_naming import normalize_color_name

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--embeddings", required=True, help="EmbeddingGen artifact folder of an ingested fashion sample")
    p.add_argument("--catalog", default=str(shared_dir() / "datasets" / "fashion-sample" / "catalog.csv"))
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    emb = Path(args.embeddings)
    if not (emb / EMB_IDS_FILE).is_file():
        print(f"error: {emb} is not an EmbeddingGen artifact ({EMB_IDS_FILE} missing)", file=sys.stderr)
        return 2
    with open(args.catalog, newline="", encoding="utf-8") as f:
        label = {r["id"]: normalize_color_name(r.get("baseColour", "")) for r in csv.DictReader(f)}
    cfg = load_params()["attributes"]
    ids, features, has_image = artifact_features(emb, cfg)
    rows = np.array([i for i, iid in enumerate(ids) if label.get(iid) and has_image[i]])
    y = np.array([label[ids[i]] for i in rows])
    x = features[rows]
    order = np.random.default_rng(args.seed).permutation(len(rows))
    train, test = order[: len(order) // 2], order[len(order) // 2:]
    model = attribute_classifier(cfg, args.seed)
    model.fit(x[train], y[train])
    pred = model.predict(x[test])
    print(f"learned colour (held-out half, {len(test)} photos): {np.mean(pred == y[test]):.1%} right "
          f"(trained on {len(train)}; {len(ids) - len(rows)} photos without a basic-colour label left out)")
    print("| colour | photos | right |\n|---|---|---|")
    for name in sorted(set(y[test]), key=lambda c: -np.sum(y[test] == c)):
        m = y[test] == name
        print(f"| {name} | {int(m.sum())} | {np.mean(pred[m] == name):.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
