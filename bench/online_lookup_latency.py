"""Added latency of the Feast online lookup on GET /recommend, lookup off vs on, interleaved.

Builds a Feast repository for the catalog at --data (FeastPublisher's user table, apply + materialize, SQLite) in
--work, serves --serving-dir in-process (FastAPI TestClient) and times /recommend for the catalog's users in rounds
that alternate the lookup off / on (``serving.feature_store.lookup``), so background load hits both alike. Prints the
median and p95 of the wall time per request and of the answer's own ``latency_ms``, per mode, and how many lookups
ran past ``serving.feature_store.timeout_ms`` (answered content-only; their time is kept in the figures).

  python -m bench.online_lookup_latency --serving-dir /tmp/s16/b2k/serving_dir --data /tmp/s16/b2k/data \
      --work /tmp/e20_lookup --rounds 5 --per-round 100
"""
from __future__ import annotations

import argparse
import copy
import json
import shutil
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def _feature_repo(work: Path, data_dir: Path, params: dict) -> Path:
    from components.feast_publisher.executor import user_features_repo

    shutil.rmtree(work / "feature_repo", ignore_errors=True)
    return user_features_repo(REPO / "feature_repo", work, str(data_dir), params)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serving-dir", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-round", type=int, default=100)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    from fastapi.testclient import TestClient

    from modules.config import load_params
    from modules.data.data_io import training_interactions
    from serving.app import create_app

    params = copy.deepcopy(load_params())
    repo = _feature_repo(Path(args.work), Path(args.data), params)
    params["serving"]["feature_store"]["repo_path"] = str(repo)
    users = sorted(training_interactions(args.data)["user_id"].astype(str).unique())
    rng = np.random.default_rng(args.seed)
    times: dict[str, list[float]] = {"off": [], "auto": []}
    server: dict[str, list[float]] = {"off": [], "auto": []}
    timed_out = {"off": 0, "auto": 0}  # lookups past serving.feature_store.timeout_ms: answered content-only
    app = create_app(args.serving_dir, params, watch_interval_s=0)
    with TestClient(app) as client:
        features = app.state.features
        for u in users[:20]:                                 # warm both paths (store opened, caches filled)
            client.get(f"/recommend/{u}?top_k=10")
        for _ in range(args.rounds):
            for mode in ("off", "auto"):
                features.lookup = mode
                for u in rng.choice(users, args.per_round):
                    t0 = time.perf_counter()
                    body = client.get(f"/recommend/{u}?top_k=10").json()
                    times[mode].append((time.perf_counter() - t0) * 1000)
                    server[mode].append(float(body["latency_ms"]))
                    want = "ok" if mode == "auto" else "disabled"
                    if mode == "auto" and body["feature_store"] == "unavailable":
                        timed_out[mode] += 1                 # counted, and its time kept: what the caller waited
                        continue
                    assert body["feature_store"] == want, body["feature_store"]
    out = {mode: {"n": len(times[mode]), "wall_median_ms": round(float(np.median(times[mode])), 2),
                  "wall_p95_ms": round(float(np.percentile(times[mode], 95)), 2),
                  "server_median_ms": round(float(np.median(server[mode])), 2),
                  "server_p95_ms": round(float(np.percentile(server[mode], 95)), 2),
                  "lookup_timed_out": timed_out[mode]} for mode in times}
    out["added_median_ms"] = round(out["auto"]["server_median_ms"] - out["off"]["server_median_ms"], 2)
    out["users"] = len(users)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
