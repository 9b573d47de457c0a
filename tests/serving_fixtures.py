"""Shared fixtures for the serving tests: a tiny, checksummed bundle in SERVING_DIR layout.

`build_serving_dir(root)` writes `root/<version>/` (search/, recommend/, images/, manifest.json) and
`root/LATEST`, through `modules.bundle.push_atomic` exactly like the pipeline's Pusher.

The catalogue is 36 generated products (colour x category x material) with rendered PNG photos.
`TinyEngine` / `TinyRecommender` implement the SearchEngine / HybridRecommender interface with
small, real retrieval (TF-IDF cosine for text, colour histograms for images) so the API tests run in
seconds without loading transformer weights. They answer with the real response classes
(`modules.search.SearchResponse` / `Result`, `modules.recommend.hybrid.RecommendResponse` / `Rec`) and raise
`modules.search.UnknownItemError` for an unknown item, so a change to those classes shows up here.
"""
from __future__ import annotations

import io
import pickle
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw
from sklearn.feature_extraction.text import TfidfVectorizer

from modules.bundle import push_atomic, write_manifest
from modules.recommend.hybrid import Rec, RecommendResponse
from modules.search import Result, SearchResponse, UnknownItemError

COLORS = {"red": (200, 30, 40), "blue": (30, 60, 200), "green": (40, 160, 60), "black": (20, 20, 20),
          "white": (235, 235, 235), "yellow": (230, 200, 30)}
CATEGORIES = ["dress", "sneaker", "backpack"]
MATERIALS = ["cotton", "leather"]
GENDERS = ["women", "men", "unisex"]


def render_png(color: tuple[int, int, int], shape: str, size: int = 64) -> bytes:
    img = Image.new("RGB", (size, size), (245, 245, 245))
    d = ImageDraw.Draw(img)
    if shape == "dress":
        d.polygon([(size * .35, size * .1), (size * .65, size * .1), (size * .85, size * .9), (size * .15, size * .9)], fill=color)
    elif shape == "sneaker":
        d.rectangle([size * .1, size * .5, size * .9, size * .8], fill=color)
    else:
        d.ellipse([size * .2, size * .2, size * .8, size * .85], fill=color)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def tiny_items() -> pd.DataFrame:
    rows = []
    n = 0
    for color in COLORS:
        for cat in CATEGORIES:
            for mat in MATERIALS:
                rows.append({
                    "item_id": f"i{n:04d}", "title": f"{color} {mat} {cat}",
                    "description": f"A {mat} {cat} in {color}.", "category": cat, "brand": f"brand{n % 4}",
                    "price": float(10 + 7 * n), "gender": GENDERS[n % 3], "image_path": f"images/i{n:04d}.png",
                    "created_at": 1_700_000_000 + n, "material": mat, "style": "casual",
                })
                n += 1
    return pd.DataFrame(rows)


def color_hist(img: Image.Image) -> np.ndarray:
    arr = np.asarray(img.convert("RGB").resize((32, 32)), dtype=np.int64) // 64   # 4 levels per channel
    codes = arr[..., 0] * 16 + arr[..., 1] * 4 + arr[..., 2]
    h = np.bincount(codes.ravel(), minlength=64).astype(np.float32)
    return h / max(float(np.linalg.norm(h)), 1e-12)


class TinyEngine:
    """TF-IDF text retrieval + colour-histogram image retrieval over a small item table."""

    def __init__(self, items: pd.DataFrame, image_feats: dict[str, np.ndarray]) -> None:
        self.items = items.reset_index(drop=True)
        self.image_feats = image_feats
        self.deleted: set[str] = set()
        self._fit()

    def _texts(self) -> list[str]:
        return (self.items["title"].fillna("") + " " + self.items["description"].fillna("")).tolist()

    def _fit(self) -> None:
        self.vec = TfidfVectorizer().fit(self._texts())
        self.matrix = self.vec.transform(self._texts())

    def _mask(self, filters: dict | None) -> np.ndarray:
        ok = ~self.items["item_id"].isin(self.deleted).to_numpy()
        f = filters or {}
        unknown = set(f) - {"category", "price_min", "price_max", "gender"}
        if unknown:
            raise ValueError(f"unknown filter keys {sorted(unknown)}")
        if f.get("category"):
            ok &= (self.items["category"] == f["category"]).to_numpy()
        if f.get("gender"):
            ok &= (self.items["gender"] == f["gender"]).to_numpy()
        if f.get("price_min") is not None:
            ok &= (self.items["price"].fillna(0) >= f["price_min"]).to_numpy()
        if f.get("price_max") is not None:
            ok &= (self.items["price"].fillna(0) <= f["price_max"]).to_numpy()
        return ok

    def _rank(self, scores: np.ndarray, top_k: int, filters: dict | None, key: str, t0: float,
              retriever: str) -> SearchResponse:
        scores = np.where(self._mask(filters), scores, -np.inf)
        order = np.argsort(-scores, kind="stable")[:top_k]
        res = [Result(str(self.items.at[i, "item_id"]), float(scores[i]),
                      {"lexical": float(scores[i]) if key == "lexical" else None,
                       "dense": float(scores[i]) if key == "dense" else None, "two_tower": None, "reranker": None})
               for i in order if np.isfinite(scores[i])]
        low = not res or res[0].score < 0.05
        return SearchResponse(res, low, {}, (time.perf_counter() - t0) * 1000, retriever)

    def _text_scores(self, query: str) -> np.ndarray:
        return (self.matrix @ self.vec.transform([query]).T).toarray().ravel()

    def _image_scores(self, img: Image.Image) -> np.ndarray:
        q = color_hist(img)
        return np.array([float(self.image_feats[i] @ q) if i in self.image_feats else 0.0
                         for i in self.items["item_id"]])

    def search_text(self, query: str, top_k: int = 10, retriever: str = "hybrid", filters: dict | None = None) -> SearchResponse:
        if not query.strip():
            raise ValueError("empty query")
        return self._rank(self._text_scores(query), top_k, filters, "lexical", time.perf_counter(), retriever)

    def search_image(self, img: Image.Image, top_k: int = 10, filters: dict | None = None) -> SearchResponse:
        return self._rank(self._image_scores(img), top_k, filters, "dense", time.perf_counter(), "image")

    def search_multimodal(self, text: str, img: Image.Image, image_weight: float = 0.5, top_k: int = 10,
                          filters: dict | None = None) -> SearchResponse:
        s = (1 - image_weight) * self._text_scores(text) + image_weight * self._image_scores(img)
        return self._rank(s, top_k, filters, "dense", time.perf_counter(), "multimodal")

    def similar(self, item_id: str, top_k: int = 10, filters: dict | None = None) -> SearchResponse:
        idx = self.items.index[self.items["item_id"] == item_id]
        if len(idx) == 0 or item_id in self.deleted:
            raise UnknownItemError(item_id)
        s = (self.matrix @ self.matrix[idx[0]].T).toarray().ravel()
        s[idx[0]] = -np.inf
        return self._rank(s, top_k, filters, "dense", time.perf_counter(), "similar")

    def add_items(self, records: list[dict[str, Any]], images: list[Image.Image | None] | None = None) -> None:
        new = pd.DataFrame(records)
        self.items = pd.concat([self.items[~self.items["item_id"].isin(new["item_id"])], new], ignore_index=True)
        for rec, img in zip(records, images or [None] * len(records), strict=True):
            self.deleted.discard(rec["item_id"])
            if img is not None:
                self.image_feats[rec["item_id"]] = color_hist(img)
        self._fit()

    def prepare_add(self) -> None:
        """SearchEngine.prepare_add: this engine loads nothing ahead of an add."""

    def delete_item(self, item_id: str) -> None:
        if item_id not in set(self.items["item_id"]) or item_id in self.deleted:
            raise UnknownItemError(item_id)
        self.deleted.add(item_id)

    def save(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.items.to_parquet(out_dir / "items.parquet", index=False)
        np.save(out_dir / "image_feats.npy", np.stack([self.image_feats[i] for i in self.items["item_id"]]))

    @classmethod
    def load(cls, in_dir: Path, params: dict | None = None) -> TinyEngine:
        items = pd.read_parquet(in_dir / "items.parquet")
        feats = np.load(in_dir / "image_feats.npy")
        return cls(items, dict(zip(items["item_id"], feats, strict=True)))


class TinyRecommender:
    """Per-user category affinity; unknown users get popularity with fallback="cold_user"."""

    def __init__(self, items: pd.DataFrame, histories: dict[str, list[str]]) -> None:
        self.items = items
        self.histories = histories

    def recommend(self, user_id: str, top_k: int = 20, context: list[str] | None = None,
                  user_features: dict | None = None) -> RecommendResponse:
        pop = self.items["item_id"].tolist()
        hist = self.histories.get(user_id)
        if hist is None:
            return RecommendResponse([Rec(i, 1.0 / (r + 1), "popular") for r, i in enumerate(pop[:top_k])], "cold_user")
        if user_features is not None and user_features.get("available") is False:
            hist_only = [i for i in self.items["item_id"] if i not in hist][:top_k]
            return RecommendResponse([Rec(i, 1.0 / (r + 1), "content") for r, i in enumerate(hist_only)], "content_only")
        cats = set(self.items.set_index("item_id").loc[hist, "category"])
        cand = [i for i, c in zip(self.items["item_id"], self.items["category"], strict=True) if c in cats and i not in hist]
        return RecommendResponse([Rec(i, 1.0 / (r + 1), "content") for r, i in enumerate(cand[:top_k])], None)

    def save(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        with (out_dir / "recommender.pkl").open("wb") as f:
            pickle.dump({"histories": self.histories}, f)
        self.items.to_parquet(out_dir / "items.parquet", index=False)

    @classmethod
    def load(cls, in_dir: Path) -> TinyRecommender:
        with (in_dir / "recommender.pkl").open("rb") as f:
            state = pickle.load(f)
        return cls(pd.read_parquet(in_dir / "items.parquet"), state["histories"])


def tiny_loader(version_dir: Path, params: dict) -> tuple[TinyEngine, TinyRecommender]:
    """BundleLoader for bundles written by `build_bundle`."""
    return TinyEngine.load(version_dir / "search"), TinyRecommender.load(version_dir / "recommend")


def build_bundle(serving_dir: Path, version: str, staging_root: Path, title_suffix: str = "") -> Path:
    """Stage a complete bundle, write its manifest and push it atomically (LATEST -> version)."""
    staging = staging_root / f"stage-{version}"
    if staging.exists():
        shutil.rmtree(staging)
    items = tiny_items()
    if title_suffix:
        items["title"] = items["title"] + " " + title_suffix
    (staging / "images").mkdir(parents=True)
    feats = {}
    for row in items.itertuples():
        png = render_png(COLORS[row.title.split()[0]], row.category)
        (staging / row.image_path).write_bytes(png)
        feats[row.item_id] = color_hist(Image.open(io.BytesIO(png)))
    TinyEngine(items, feats).save(staging / "search")
    histories = {"u0001": ["i0000", "i0006"], "u0002": ["i0003"]}
    TinyRecommender(items, histories).save(staging / "recommend")
    write_manifest(staging, {"version": version, "data_hash": "tiny", "metrics": {}, "blessing": "test-fixture"})
    return push_atomic(staging, serving_dir, version)


def build_serving_dir(root: Path, versions: tuple[str, ...] = ("v1",)) -> Path:
    serving_dir = root / "serving_dir"
    for v in versions:
        build_bundle(serving_dir, v, root)
    return serving_dir


def png_bytes(color: str = "red", shape: str = "dress", size: int = 64) -> bytes:
    return render_png(COLORS[color], shape, size)


# ---------------------------------------------------------------------------------------------------------------
# A REAL tiny bundle: generated catalog -> MiniLM text embeddings + frozen backbone/LiT -> SearchEngine.save ->
# HybridRecommender.save -> images -> manifest -> push_atomic. Served with the default loader (no tiny_loader).
# ---------------------------------------------------------------------------------------------------------------
def build_real_bundle(root: Path, version: str = "real1", n_items: int = 120, seed: int = 42) -> Path:
    """Build and push a real bundle from a generated catalog; returns SERVING_DIR. Takes ~30-60 s on 2 cores."""
    import copy

    from modules.config import load_params
    from modules.data.catalog.generate import generate_catalog
    from modules.data.data_io import item_text, load_interactions, load_items, load_manifest, split_interactions
    from modules.data.images import load_image
    from modules.encoders.color import color_features
    from modules.encoders.color_naming import dominant_color_name
    from modules.encoders.fingerprint import photo_fingerprint
    from modules.encoders.image_space import embed_catalog_images, save_image_encoder
    from modules.encoders.text import text_encoder_from_params
    from modules.encoders.text_runtime import cached_export, copy_runtime, runtime_params
    from modules.recommend.hybrid import build_recommender
    from modules.search import SearchEngine
    from modules.search.transformed import catalog_price_log_z

    params = copy.deepcopy(load_params())
    scales = params["generate"]["scales"]
    scales["tiny"] = {**scales["tiny"], "n_items": n_items, "n_users": 60, "n_interactions": 800,
                      "n_text_queries": 20, "n_image_queries": 4, "n_composed_queries": 4}
    params["encoders"]["backbone"]["workers"] = 1  # 120 photos: spawning workers costs more than it saves
    data = root / "data"
    generate_catalog("tiny", data, seed=seed, params=params, progress=False)
    items = load_items(data)
    images = [load_image(data / p) for p in items["image_path"]]
    text_enc = text_encoder_from_params(params)
    text_emb = text_enc.encode(item_text(items))
    colors = np.stack([color_features(im, params["encoders"]["color"]) for im in images])
    catalog_images = embed_catalog_images([data / p for p in items["image_path"]], np.ones(len(items), bool),
                                          text_emb, colors, params, seed, progress=False)  # what EmbeddingGen does
    image_emb, tower = catalog_images.vectors, catalog_images.encoder
    price_log_z, item_graph, _ = catalog_price_log_z(items, params)  # what IndexBuilder gets from Transform
    grid = int(params["encoders"]["fingerprint"]["grid"])
    engine = SearchEngine.build(items, text_emb, image_emb, colors, text_enc, tower, params,
                                item_colors=[dominant_color_name(im) for im in images], price_log_z=price_log_z,
                                item_graph=item_graph,
                                photo_fingerprints=np.stack([photo_fingerprint(im, grid) for im in images]))
    train, _ = split_interactions(load_interactions(data), int(load_manifest(data)["cutoff_ts"]))
    params["recommend"]["hybrid"]["collaborative"] = "als"      # no TF training in a serving test
    rec = build_recommender(items, train, text_emb, image_emb, colors, params, seed=seed)

    # The pushed LambdaMART re-ranker, trained on the catalog's TRAIN queries as RankerTrainer does. Its
    # per-kind validation gate is dropped: with a handful of queries it is noise, and the serving tests check
    # that the re-ranker the bundle ships is the one that orders the results.
    from modules.data.data_io import load_queries
    from modules.search.rerank_train import build_training_frame, train_ranker

    X, y, groups, qids = build_training_frame(engine, load_queries(data, split="train"), data_dir=str(data))
    ranker = train_ranker(X, y, groups, params=params, seed=seed, qids=qids)
    ranker.info.pop("rerank_kinds", None)

    staging = root / f"stage-{version}"
    engine.save(staging / "search")
    ranker.save(staging / "ranker")
    save_image_encoder(tower, staging / "search" / "image_tower", "backbone")
    rec.save(staging / "recommend")
    # the ONNX query encoder, as BundlePusher ships it
    copy_runtime(cached_export(text_enc, runtime_params(params).precision), staging / "model" / "text_runtime")
    shutil.copytree(data / "images", staging / "images", ignore=shutil.ignore_patterns("queries"))
    write_manifest(staging, {"version": version, "data_hash": "tiny-real", "metrics": {}, "blessing": "test-fixture"})
    serving_dir = root / "serving_dir"
    push_atomic(staging, serving_dir, version)
    return serving_dir


def _real_bundle_key() -> str:
    """Hash of everything that shapes the real bundle, so a cached build is reused only while it is current."""
    import hashlib

    repo = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for rel in ["params.yaml", "tests/serving_fixtures.py", "modules/bundle.py",
                *sorted(str(p.relative_to(repo)) for d in ("modules/data/catalog", "modules/encoders", "modules/recommend",
                                                            "modules/search") for p in (repo / d).glob("*.py"))]:
        p = repo / rel
        if p.is_file():
            h.update(rel.encode() + p.read_bytes())
    return h.hexdigest()[:16]


def real_bundle_cache() -> Path:
    """The cached real tiny build: ``serving_dir/`` (the pushed bundle) and ``data/`` (the catalog it was built
    from). Built once per source version under $TMPDIR/pixelmatch-test-cache (~30 s CPU). Treat it as read-only."""
    import os
    import tempfile

    cache = Path(tempfile.gettempdir()) / "pixelmatch-test-cache" / f"real-bundle-{_real_bundle_key()}"
    if not (cache / "serving_dir" / "LATEST").is_file():
        work = cache.with_name(cache.name + f".tmp-{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        build_real_bundle(work)
        shutil.rmtree(cache, ignore_errors=True)
        try:
            os.rename(work, cache)
        except OSError:        # another session finished first: use theirs
            shutil.rmtree(work, ignore_errors=True)
        for stale in cache.parent.glob("real-bundle-*"):   # builds for older sources
            if stale != cache and ".tmp-" not in stale.name:
                shutil.rmtree(stale, ignore_errors=True)
    return cache


def real_serving_dir(dest: Path) -> Path:
    """A private copy (tests write delta.jsonl) of the cached real tiny bundle (a copy takes well under a second)."""
    out = dest / "serving_dir"
    shutil.copytree(real_bundle_cache() / "serving_dir", out, symlinks=False)
    return out
