"""Transform's ``price_bucket`` boundaries (tft.bucketize, recovered exactly from the graph) next to the recommenders'
own price bands (``modules.recommend.features.price_band_boundaries``, np.quantile), on one catalog (issue 20).

    python -m bench.price_bands --scale tiny        (or --data DATA_DIR)

Analyses :mod:`modules.transform` over the catalog in-process, then recovers each boundary as the least float32
price the graph puts in the next bucket (bisection over float32 bit patterns, all boundaries in one batch per step;
the graph's bucket of a price is the number of boundaries <= it, as ``ItemFeatures`` bands it), checks the recovered
boundaries reproduce the graph's bucket of every item, and prints both boundary sets and how many items change band.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import pandas as pd


def graph_boundaries(output, layer, n_bands: int, upper: float) -> np.ndarray:
    """The graph's ``n_bands - 1`` price_bucket boundaries (float32, ascending), searched in [0, ``upper``]."""
    from modules.recommend.item_transform import transform_rows

    def bucket(prices: np.ndarray) -> np.ndarray:
        rows = pd.DataFrame({"item_id": "p", "category": "", "brand": "", "price": prices}, index=range(len(prices)))
        return transform_rows(output, rows, layer=layer)["price_bucket"]

    lo = np.zeros(n_bands - 1, np.int64)  # float32 bit patterns: ordered like the (non-negative) values
    hi = np.full(n_bands - 1, int(np.float32(upper).view(np.int32)), np.int64)
    while (hi - lo > 1).any():
        mid = (lo + hi) // 2
        reached = bucket(mid.astype(np.int32).view(np.float32)) >= np.arange(1, n_bands)
        hi, lo = np.where(reached, mid, hi), np.where(reached, lo, mid)
    return hi.astype(np.int32).view(np.float32)


def main(argv: list[str] | None = None) -> None:
    from bench._common import add_data_source, data_dir_from
    from modules.config import load_params, param_seed
    from modules.data.data_io import load_items
    from modules.recommend.features import ItemFeatures
    from modules.recommend.item_transform import item_transform

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_source(ap)
    a = ap.parse_args(argv)
    params = load_params()
    n_bands = int(params["recommend"]["n_price_bands"])
    with tempfile.TemporaryDirectory(prefix="pm-bands-") as tmp:
        data_dir = data_dir_from(a, tmp, params, param_seed(params))
        items = load_items(data_dir)
    t0 = time.perf_counter()
    table = item_transform(items, n_bands)
    analysed = time.perf_counter() - t0
    prices = pd.to_numeric(items["price"], errors="coerce").fillna(0.0).to_numpy(np.float32)
    t0 = time.perf_counter()
    tft_b = graph_boundaries(table.output, table.output.transform_features_layer(), n_bands, float(prices.max()) * 4 + 1)
    probed = time.perf_counter() - t0
    band_tft = np.searchsorted(tft_b, prices, side="right")
    if not np.array_equal(band_tft, table.features["price_bucket"]):
        raise SystemExit("the recovered boundaries do not reproduce the graph's buckets")
    own = ItemFeatures.from_items(items, n_bands).price_boundaries
    band_own = np.searchsorted(own, prices, side="right")
    print(json.dumps({"data": a.data or f"generated {a.scale}", "n_items": len(items), "analysis_s": round(analysed, 1),
                      "probe_s": round(probed, 2), "transform_boundaries": tft_b.tolist(),
                      "recommend_boundaries": own.tolist(), "items_in_another_band": int((band_tft != band_own).sum()),
                      "band_counts": np.bincount(band_tft, minlength=n_bands).tolist()}, indent=2))


if __name__ == "__main__":
    main()
