"""How far the photo colour namer is from a person: agreement with the catalog's colour label, for the namer, for a
person who named the same photos blind, and (optionally) for the classifier learned from the catalog's labels.

    .venv/bin/python -m bench.colour_agreement
    .venv/bin/python -m bench.colour_agreement --embeddings <fashion run>/EmbeddingGen/embeddings/<id>

The photos: the first 200 of a seeded permutation (``--seed`` 2026) of the fashion sample's rows whose
``baseColour`` maps onto the 16 basic terms (:func:`blind_selection`; a test checks the file against it, so the
photos were not picked by hand). ``bench/data/fashion_colour_human.csv`` holds one engineer's names for them, given
while seeing only the photo and its ``articleType`` (not the title, which often names the colour, nor the label),
in the same 16 basic terms the namer uses, on 2026-12-05.

Printed: agreement of each namer with the palette-normalised label (what ``bench.colour_naming`` measures), the
namer's agreement with the person, each with a seeded bootstrap 95% interval; and the label -> person disagreements,
which show the label conventions a person does not share (Khaki -> olive, Tan -> beige, ...). The person's
agreement with the label is the practical ceiling of the colour-naming measure on this sample.
"""
from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

HUMAN_FILE = Path(__file__).with_name("data") / "fashion_colour_human.csv"


def blind_selection(rows: list[dict], n: int = 200, seed: int = 2026) -> list[str]:
    """Ids of the first ``n`` rows, in a seeded permutation, whose ``baseColour`` is a basic colour."""
    from modules.encoders.color_naming import normalize_color_name

    order = np.random.default_rng(seed).permutation(len(rows))
    return [rows[i]["id"] for i in order if normalize_color_name(rows[i].get("baseColour", ""))][:n]


def read_human(path: Path = HUMAN_FILE) -> dict[str, str]:
    """id -> the person's basic colour term."""
    with path.open(newline="", encoding="utf-8") as f:
        return {r["id"]: r["human_colour"] for r in csv.DictReader(f)}


def agreement(a: list[str], b: list[str], seed: int = 0, draws: int = 2000) -> tuple[float, float, float]:
    """Share of positions where ``a`` and ``b`` agree, with a seeded bootstrap 95% interval (low, high)."""
    same = np.asarray([x == y for x, y in zip(a, b, strict=True)], dtype=np.float64)
    if len(same) == 0:
        return 0.0, 0.0, 0.0
    boot = same[np.random.default_rng(seed).integers(0, len(same), size=(draws, len(same)))].mean(axis=1)
    return float(same.mean()), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def learned_names(embeddings: Path, held_ids: list[str], labels: dict[str, str]) -> list[str]:
    """The attribute classifier (``modules.attributes``' features and model, ``attributes`` in params.yaml) trained
    on every labelled photo of an EmbeddingGen artifact except ``held_ids``, applied to them."""
    from bench.colour_learned import artifact_features
    from modules.attributes import attribute_classifier
    from modules.config import load_params

    cfg = load_params()["attributes"]
    ids, x, has_image = artifact_features(embeddings, cfg)
    row = {iid: i for i, iid in enumerate(ids)}
    held = set(held_ids)
    train = [i for i, iid in enumerate(ids) if labels.get(iid) and iid not in held and has_image[i]]
    model = attribute_classifier(cfg, 0)
    model.fit(x[train], [labels[ids[i]] for i in train])
    return list(model.predict(x[[row[i] for i in held_ids]]))


def main(argv: list[str] | None = None) -> int:
    from modules.config import load_params, shared_dir
    from modules.data.images import load_image
    from modules.encoders.color_naming import named_colors, normalize_color_name

    fashion = shared_dir() / "datasets" / "fashion-sample"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--catalog", default=str(fashion / "catalog.csv"))
    ap.add_argument("--images", default=str(fashion / "images"))
    ap.add_argument("--human", default=str(HUMAN_FILE), help="CSV of id,article_type,human_colour")
    ap.add_argument("--embeddings", default=None, help="EmbeddingGen artifact of the sample: also the learned "
                    "classifier, trained on the other labelled photos")
    args = ap.parse_args(argv)
    if not Path(args.catalog).is_file():
        print(f"{args.catalog}: no such catalog", file=sys.stderr)
        return 2
    with open(args.catalog, newline="", encoding="utf-8") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    human = read_human(Path(args.human))
    ids = [i for i in human if i in rows]
    labels = {i: normalize_color_name(r.get("baseColour", "")) for i, r in rows.items()}
    params = load_params().get("encoders", {}).get("color")
    label = [labels[i] for i in ids]
    person = [human[i] for i in ids]
    namer = [named_colors(load_image(Path(args.images) / f"{i}.jpg"), 2, params)[0][0] for i in ids]
    table = [("person (blind, article type shown)", person, label), ("photo colour namer", namer, label)]
    if args.embeddings:
        table.append(("classifier learned from the other labels", learned_names(Path(args.embeddings), ids,
                                                                                  labels), label))
    table.append(("photo colour namer vs the person", namer, person))
    print(f"{len(ids)} photos of the fashion sample ({args.human})")
    print("| who | agrees | 95% interval |\n|---|---|---|")
    for name, a, b in table:
        share, low, high = agreement(a, b)
        print(f"| {name} | {share:.1%} ({round(share * len(ids))} of {len(ids)}) | {low:.1%} - {high:.1%} |")
    differ = Counter(f"{rows[i]['baseColour']} -> {human[i]}" for i in ids if human[i] != labels[i])
    print("\nlabel -> person, where they differ: " + ", ".join(f"{k} ({c})" for k, c in differ.most_common()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
