"""Issue 16: the ONNX query encoder matches TF, concurrency gives the sequential answers, the query cache is
bounded, and filtered dense search still returns k allowed items (with the configured efSearch untouched)."""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from modules.search.dense import DenseIndex
from serving.rwlock import RWLock

TITLES = [
    "red floral summer dress", "blue slim fit jeans for men", "black leather ankle boots", "wool scarf grey",
    "striped cotton t-shirt navy", "white running sneakers", "brown suede loafers", "yellow rain jacket",
    "pink silk blouse with bow", "green canvas backpack", "gold hoop earrings", "denim mini skirt",
    "oversized knit sweater cream", "black tailored trousers", "polka dot midi dress", "red wool beanie",
    "kids dinosaur pyjamas", "leather crossbody bag tan", "navy puffer coat women", "linen shirt beige",
    "cheap watch under 50", "sports bra black", "floral print kimono", "orange swim shorts",
    "plaid flannel shirt", "velvet evening gown burgundy", "chunky platform sandals", "grey hoodie zip",
    "camel trench coat", "white lace top", "silver chain necklace", "olive cargo pants",
    "new arrivals", "sunglasses", "a", "waterproof hiking boots with vibram sole for long trails in the rain",
]


@pytest.fixture(scope="module")
def tf_encoder():
    from modules.encoders.text import get_text_encoder

    return get_text_encoder()


@pytest.mark.parametrize("precision,min_cos", [("fp32", 0.999), ("int8", 0.98), ("int8_mixed", 0.99)])
def test_onnx_encoder_matches_tf(tf_encoder, precision, min_cos):
    from modules.encoders.text_runtime import OnnxTextEncoder, cached_export

    onnx = OnnxTextEncoder(cached_export(tf_encoder, precision), cache_size=0)
    ref = tf_encoder.encode(TITLES)
    batch = onnx.encode(TITLES)
    single = np.stack([onnx.encode_query(t) for t in TITLES])
    assert batch.shape == single.shape == ref.shape and batch.dtype == np.float32
    assert float((batch * ref).sum(1).min()) >= min_cos
    assert float((single * ref).sum(1).min()) >= min_cos      # one query at its real token length, unpadded


def test_query_cache_is_bounded_lru(tf_encoder):
    from modules.encoders.text_runtime import OnnxTextEncoder, cached_export

    enc = OnnxTextEncoder(cached_export(tf_encoder, "fp32"), cache_size=3, warm=False)
    first = enc.encode_query("q0")
    for i in range(1, 5):
        enc.encode_query(f"q{i}")
    assert enc.cache_len() == 3 and enc.misses == 5 and enc.hits == 0
    enc.encode_query("q4")                                     # most recent: a hit
    assert enc.hits == 1
    again = enc.encode_query("q0")                             # evicted: recomputed, same vector
    assert enc.misses == 6 and enc.cache_len() == 3 and np.allclose(again, first, atol=1e-6)
    assert not again.flags.writeable                           # callers cannot corrupt a cached vector
    assert OnnxTextEncoder(enc.model_dir, cache_size=0, warm=False).encode_query("x") is not None


def _index(n: int = 3000, dim: int = 32, ef: int = 64, exact_below: int = 0) -> tuple[DenseIndex, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    hnsw = {"M": 16, "ef_construction": 80, "ef_search": ef, "filter_exact_below": exact_below}
    return DenseIndex.build(x, {"hnsw": hnsw}), rng.standard_normal((20, dim))


@pytest.mark.parametrize("every,exact_below,min_overlap", [(29, 500, 1.0), (29, 0, 0.6), (2, 0, 0.85)])
def test_filtered_search_returns_k_allowed_rows_and_leaves_ef_alone(every, exact_below, min_overlap):
    idx, queries = _index(exact_below=exact_below)
    allowed = np.zeros(idx.ntotal, bool)
    allowed[::every] = True                                    # 3 % of the rows: the old 4x over-fetch fell short
    overlap = []
    for q in queries:
        scores, rows = idx.search(q, 10, allowed)
        assert len(rows) == 10 and allowed[rows].all() and np.all(np.diff(scores) <= 1e-6)
        overlap.append(len(set(rows) & set(idx.exact_search(q, 10, allowed)[1])) / 10)
    assert np.mean(overlap) >= min_overlap                    # the small filter (exact path) is exact
    few = np.zeros(idx.ntotal, bool)
    few[[3, 500, 2999]] = True
    assert sorted(idx.search(queries[0], 10, few)[1].tolist()) == [3, 500, 2999]
    idx.search(queries[0], 100)                                # k > ef_search: the old code raised efSearch here
    assert idx.index.hnsw.efSearch == 64                      # searches never mutate the shared index


def test_saved_index_loads_read_only_mapped_and_still_adds(tmp_path):
    idx, queries = _index(n=500)
    idx.save(tmp_path / "ix")
    loaded = DenseIndex.load(tmp_path / "ix", ef_search=64)
    assert np.array_equal(loaded.search(queries[0], 5)[1], idx.search(queries[0], 5)[1])
    before = (tmp_path / "ix.faiss").read_bytes()
    rows = loaded.add(np.ones((2, 32), np.float32))
    assert rows.tolist() == [500, 501] and loaded.ntotal == 502
    assert (tmp_path / "ix.faiss").read_bytes() == before     # the bundle file is never written through the map


def test_concurrent_searches_equal_sequential():
    from serving_fixtures import real_bundle_cache

    from serving.bundle_loading import load_components

    sdir = real_bundle_cache() / "serving_dir"
    vdir = sdir / (sdir / "LATEST").read_text().strip()
    from modules.config import load_params

    engine, _ = load_components(vdir, load_params())
    assert type(engine.text_encoder).__name__ == "OnnxTextEncoder"    # the bundle's runtime, not TF
    queries = [f"{c} {w}" for c in ("red", "blue", "black", "white", "green") for w in ("dress", "shoes", "bag", "shirt")]
    filters = [None, {"category": engine.items["category"].iloc[0]}]

    def run(i: int) -> list[str]:
        return engine.search_text(queries[i % len(queries)], top_k=10, filters=filters[i % 2]).item_ids

    sequential = [run(i) for i in range(len(queries) * 2)]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(run, range(len(queries) * 2)))
    assert parallel == sequential
    assert all(len(r) == 10 for r in sequential[::2])


def test_rwlock_writer_excludes_readers():
    lock, log = RWLock(), []
    with lock.read(), lock.read():                             # readers share
        pass

    def reader() -> None:
        with lock.read():
            log.append("r")

    with lock.write():
        t = threading.Thread(target=reader)
        t.start()
        time.sleep(0.2)
        assert log == []                                       # blocked while the writer holds it
    t.join(5)
    assert log == ["r"]


def test_bundle_pusher_ships_the_runtime_and_the_loader_picks_it(tf_encoder, tmp_path):
    from components.bundle_pusher.executor import stage_text_runtime
    from modules.encoders.text_runtime import OnnxTextEncoder
    from serving.bundle_loading import runtime_text_encoder

    layout: dict[str, str] = {}
    stage_text_runtime(tf_encoder, {"encoders": {"text": {"runtime": {"kind": "tf"}}}}, tmp_path, layout)
    assert layout == {} and runtime_text_encoder(tmp_path, {}) is None           # TF fallback: nothing shipped
    stage_text_runtime(tf_encoder, {}, tmp_path, layout)
    assert layout == {"text_runtime": "model/text_runtime"}
    assert (tmp_path / "model" / "text_runtime" / "model.onnx").is_file()
    assert isinstance(runtime_text_encoder(tmp_path, {}), OnnxTextEncoder)
    tf_params = {"encoders": {"text": {"runtime": {"kind": "tf"}}}}
    assert runtime_text_encoder(tmp_path, tf_params) is None                     # params can turn it off


def test_rrf_arrays_equal_the_per_row_python_sum_bit_for_bit():
    from modules.search.rrf import rrf, rrf_arrays

    rng = np.random.default_rng(3)
    lists = {name: rng.choice(500, size=200, replace=False) for name in ("bm25", "text", "image", "fusion")}
    weights = {"bm25": 1.7, "text": 0.3, "image": 0.0}
    ref: dict[int, float] = {}
    for name, rows in lists.items():
        for rank, row in enumerate(rows, start=1):
            ref[int(row)] = ref.get(int(row), 0.0) + float(weights.get(name, 1.0)) / (60 + rank)
    rows, scores = rrf_arrays(lists, k=60, weights=weights)
    assert rows.tolist() == sorted(ref) and scores.tolist() == [ref[r] for r in sorted(ref)]   # exact, not approx
    assert rrf(lists, k=60, weights=weights) == ref
    assert rrf_arrays({"a": [4, 4]}, k=0)[1].tolist() == [1.0 + 0.5]    # a row listed twice counts twice
    assert len(rrf_arrays({}, k=60)[0]) == 0


def _ranker():
    import lightgbm as lgb

    from modules.search.features import RANK_FEATURES
    from modules.search.rerank import LambdaMARTRanker

    rng = np.random.default_rng(0)
    X = rng.random((400, len(RANK_FEATURES)))
    y = (X[:, 0] * 3 + X[:, 5] > 2).astype(int)
    ds = lgb.Dataset(X, y, group=[40] * 10, feature_name=list(RANK_FEATURES))
    booster = lgb.train({"objective": "lambdarank", "verbose": -1, "num_leaves": 7, "seed": 0}, ds, 20)
    return LambdaMARTRanker(booster, RANK_FEATURES)


def test_reranker_on_columns_scores_like_the_dataframe_path():
    import pandas as pd

    from modules.search.features import RANK_FEATURES
    from modules.search.rerank import MissingFeatureError, rerank_candidates

    ranker = _ranker()
    rng = np.random.default_rng(1)
    m = 300
    cols = {f: (rng.random(m) if i % 3 else rng.random(m).astype(np.float32)) for i, f in enumerate(RANK_FEATURES)}
    cols["has_text"] = np.ones(m, bool)
    feats = {**cols, "item_id": np.array([f"i{i}" for i in range(m)], object), "row": np.arange(m),
             "score": cols["pre_rerank"]}
    frame = pd.DataFrame({c: feats[c] for c in ("item_id", *RANK_FEATURES)})
    assert np.array_equal(ranker.rerank_columns({}, feats), ranker.rerank({}, frame))
    out, scores = rerank_candidates(ranker, feats, {"query": "q"}, "hybrid")
    assert np.array_equal(np.sort(scores), np.sort(ranker.rerank({}, frame)))
    assert np.all(np.diff(out["reranker"]) <= 0)
    with pytest.raises(MissingFeatureError, match="bm25"):
        ranker.rerank_columns({}, {k: v for k, v in feats.items() if k != "bm25"})
    with pytest.raises(ValueError, match="numeric"):
        ranker.rerank_columns({}, {**feats, "price": np.array(["x"] * m, object)})
    assert ranker.rerank_columns({}, {f: np.zeros(0) for f in RANK_FEATURES}).shape == (0,)


def test_intent_matches_equal_the_per_row_rule_and_follow_a_catalog_change():
    from serving_fixtures import real_bundle_cache

    from modules.config import load_params
    from modules.search.features import item_matches
    from modules.search.filters import color_match
    from serving.bundle_loading import load_components

    sdir = real_bundle_cache() / "serving_dir"
    engine, _ = load_components(sdir / (sdir / "LATEST").read_text().strip(), load_params())
    s = engine.state
    rows = np.arange(s.n_rows)[::-1]
    matches = item_matches(s)
    for color in {c for cs in s.title_colors for c in cs} | set(s.item_colors) - {""} | {"nosuchcolour"}:
        assert np.array_equal(matches.color_match(s, color)[rows], color_match(s, rows, color))
    for pattern in {p for ps in s.patterns for p in ps} | {"nosuchpattern"}:
        per_row = np.array([pattern in s.patterns[r] for r in rows], np.float32)
        assert np.array_equal(matches.pattern_match(s, pattern)[rows], per_row)
    assert item_matches(s) is matches
    s.refresh()                                     # what add_items does after the catalog changed
    assert item_matches(s) is not matches


def test_serve_with_workers_gives_uvicorn_the_health_check_timeout(monkeypatch, tmp_path) -> None:
    """Several workers: uvicorn's supervisor gets ``serving.worker_healthcheck_s`` (its 5 s default replaced
    workers that were still loading a bundle on busy cores) and the keep-alive from params.yaml."""
    import uvicorn

    from modules.settings import load_settings
    from serving.app import serve

    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)   # serve() sets it for the workers; undone after the test
    monkeypatch.setenv("PIXELMATCH_SERVING_DIR", "")   # serve() sets it; the monkeypatch undoes that
    serve(tmp_path, port=8123, workers=2)
    cfg = load_settings().serving
    assert seen["app"] == "serving.app:app_from_env" and seen["workers"] == 2
    assert seen["timeout_worker_healthcheck"] == cfg.worker_healthcheck_s > 5
    assert seen["timeout_keep_alive"] == cfg.keep_alive_s
    assert os.environ["OMP_NUM_THREADS"] == str(cfg.math_threads)


def test_top_from_scores_equals_sorting_every_row():
    """The partial sort (only rows at or above the k-th score) returns exactly the rows a full sort does, ties
    (broken by row) and NaN scores included."""
    from modules.search.retrieve import top_from_scores

    def full_sort(scores, allowed, k, positive_only):
        s = np.where(allowed, scores, -np.inf)
        cand = np.flatnonzero(s > 0) if positive_only else np.flatnonzero(allowed)
        return cand[np.lexsort((cand, -s[cand]))][:k]

    rng = np.random.default_rng(0)
    for case in range(400):
        n, k = int(rng.integers(1, 2000)), int(rng.integers(0, 250))
        scores = (rng.integers(-3, 4, n).astype(np.float32) if case % 3 == 0     # heavy ties
                  else rng.standard_normal(n))
        if case % 3 == 2:
            scores[rng.random(n) < 0.1] = np.nan
        allowed = rng.random(n) < rng.random()
        for positive_only in (True, False):
            got = top_from_scores(scores, allowed, k, positive_only)
            assert np.array_equal(got, full_sort(scores, allowed, k, positive_only)), (case, positive_only)


def test_math_threads_cap_blas_in_request_threads():
    """serving.math_threads: numpy's BLAS runs one thread in every thread of the process (a request's thread too)."""
    import faiss
    from threadpoolctl import threadpool_info

    from serving.app import limit_math_threads

    seen: list = []
    omp_before = faiss.omp_get_max_threads()
    assert limit_math_threads(0) is None
    limiter = limit_math_threads(1)
    try:
        t = threading.Thread(target=lambda: seen.extend(
            i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas" and "numpy" in i["filepath"]))
        t.start()
        t.join()
    finally:
        limiter.restore_original_limits()
        faiss.omp_set_num_threads(omp_before)
    assert seen and set(seen) == {1}


def test_malloc_arenas_cap_is_taken_by_glibc():
    """serving.malloc_arenas: glibc accepts the arena cap (0 leaves glibc alone)."""
    import platform

    from modules.settings import load_settings
    from serving.app import limit_malloc_arenas

    assert limit_malloc_arenas(0) is False
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert limit_malloc_arenas(load_settings().serving.malloc_arenas) is True


def test_request_threads_cap_the_sync_route_pool():
    """serving.request_threads caps anyio's thread limiter for sync routes in this event loop (0 leaves 40)."""
    import anyio
    import anyio.to_thread

    from serving.app import limit_request_threads

    async def tokens(n: int) -> float:
        limit_request_threads(n)
        return anyio.to_thread.current_default_thread_limiter().total_tokens

    assert anyio.run(tokens, 0) == 40
    assert anyio.run(tokens, 6) == 6
