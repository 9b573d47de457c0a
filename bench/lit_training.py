"""LiT text-head training time at a given catalog size, from an EmbeddingGen artifact's cached features.

    .venv/bin/python -m bench.lit_training --embeddings <pipeline_root>/EmbeddingGen/embeddings/<id> --items 100000

The artifact's (text, backbone feature) pairs are resampled with replacement to ``--items`` rows, each copy with
small Gaussian noise so no two rows are identical, then ``LitEncoder.train`` runs exactly as in EmbeddingGen (PCA,
early stopping on the held-out slice). Prints the wall time, the epochs run and the best held-out loss. The figure
measures the training cost at that size; the epochs to convergence on a real 100K catalog may differ.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    from modules.config import load_params
    from modules.data.data_io import EMB_TEXT_FILE
    from modules.encoders.image_space import BACKBONE_FEATS_FILE
    from modules.encoders.lit import LitEncoder

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--embeddings", required=True, help="an EmbeddingGen artifact folder (kind: backbone)")
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--noise", type=float, default=0.02)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    emb = Path(args.embeddings)
    if not (emb / BACKBONE_FEATS_FILE).is_file():
        print(f"error: {emb} holds no {BACKBONE_FEATS_FILE} (run the pipeline with encoders.image.kind: backbone)",
              file=sys.stderr)
        return 2
    feats, text = np.load(emb / BACKBONE_FEATS_FILE), np.load(emb / EMB_TEXT_FILE)
    rows = np.flatnonzero(feats.any(axis=1))
    rng = np.random.default_rng(args.seed)
    pick = rng.choice(rows, size=args.items, replace=True)
    text_n = text[pick] + args.noise * rng.normal(size=(args.items, text.shape[1])).astype(np.float32)
    feats_n = np.abs(feats[pick] + args.noise * rng.normal(size=(args.items, feats.shape[1])).astype(np.float32))
    t0 = time.perf_counter()
    enc = LitEncoder.train(text_n, feats_n, {"name": "efficientnet_lite3"}, load_params(), seed=args.seed)
    wall = time.perf_counter() - t0
    hist = enc.history
    print(json.dumps({"items": args.items, "source_rows": int(len(rows)), "wall_s": round(wall, 1),
                      "epochs": len(hist), "best_val_loss": round(min(h["val_loss"] for h in hist), 4),
                      "s_per_epoch": round(float(np.median([h["seconds"] for h in hist])), 2)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
