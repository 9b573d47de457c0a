"""Dense retrieval: FAISS HNSW (approximate) and IndexFlatIP (exact ground truth) over L2-normalised vectors.

FAISS ids are the engine's row numbers (HNSW assigns ids sequentially on ``add``, so row ``i`` is vector ``i``;
the caller keeps the parallel ``row -> item_id`` array). HNSW cannot delete, so removed rows are tombstoned by
the caller and passed in as ``allowed=False``. Filtered or tombstoned searches pass the allowed rows to FAISS as
an ``IDSelectorBitmap`` inside per-call ``SearchParametersHNSW`` (so HNSW only returns allowed rows, and the
configured ``ef_search`` applies to every call), falling back to an exact search over the allowed subset when the
approximate pass does not yield enough hits. Nothing is mutated on the shared index by a search, so concurrent
searches from many threads are safe. Saved indexes are loaded memory-mapped read-only where FAISS allows, so
several worker processes share one copy in the page cache (the first live ``add`` takes an owned copy).
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from modules.config import param_seed
from modules.settings import HnswSettings, load_section


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation (zero rows stay zero), float32, C-contiguous."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


class DenseIndex:
    """HNSW inner-product index with the raw vectors kept alongside for exact scoring and fallback."""

    def __init__(self, dim: int, hnsw: HnswSettings, exact: bool = False) -> None:
        self.dim, self.m, self.ef_construction, self.ef_search = dim, hnsw.M, hnsw.ef_construction, hnsw.ef_search
        self.exact, self.mapped = exact, False   # mapped: loaded memory-mapped from a file (see ``add``)
        self.exact_below = hnsw.filter_exact_below   # a filter allowing at most this many rows is searched exactly
        if exact:
            self.index: faiss.Index = faiss.IndexFlatIP(dim)
        else:
            self.index = faiss.IndexHNSWFlat(dim, self.m, faiss.METRIC_INNER_PRODUCT)
            self.index.hnsw.efConstruction = self.ef_construction
            self.index.hnsw.efSearch = self.ef_search

    @classmethod
    def build(cls, vectors: np.ndarray, params: Mapping[str, Any] | None = None, exact: bool = False) -> DenseIndex:
        """Index ``vectors`` (normalised here) with the ``retrieval.hnsw`` parameters (``params``: a ``retrieval``
        section; the ``hnsw`` keys it lacks come from params.yaml)."""
        idx = cls(vectors.shape[1], load_section("retrieval.hnsw", (params or {}).get("hnsw")), exact=exact)
        idx.add(vectors)
        return idx

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def vectors(self) -> np.ndarray:
        """The normalised vectors (row ``i`` = FAISS id ``i``): a read-only view of the index's own flat storage,
        so they exist once in memory (and, for a loaded index, in the page cache that every worker shares). It is
        re-derived on each access because ``add`` may move the storage: don't keep it across an ``add`` (live
        adds run under the bundle's write lock, searches under its read lock)."""
        return storage_view(self.index)

    def add(self, vectors: np.ndarray) -> np.ndarray:
        """Append vectors; returns their row ids."""
        v = l2_normalize(np.atleast_2d(vectors))
        if v.shape[1] != self.dim:
            raise ValueError(f"vector dim {v.shape[1]} != index dim {self.dim}")
        start = self.ntotal
        if self.mapped:
            # A memory-mapped index cannot grow (FAISS aborts the process): the first add takes an owned copy.
            self.index, self.mapped = faiss.deserialize_index(faiss.serialize_index(self.index)), False
        self.index.add(v)
        return np.arange(start, start + len(v))

    def score(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Exact cosine of ``query`` with the given rows."""
        return self.vectors[np.asarray(rows, dtype=np.int64)] @ l2_normalize(query).ravel()

    def dot_all(self, query: np.ndarray) -> np.ndarray:
        """Inner product of the (normalised) query with every stored vector: ``(ntotal,)`` float32, by FAISS's SIMD
        kernel over the storage. A loaded index's vectors sit at an unaligned offset of the mapped file, where
        numpy's ``vectors @ q`` leaves BLAS for a loop 4x slower (100K x 256: 20 ms instead of 4.5)."""
        q = l2_normalize(query).ravel()
        out = np.empty(self.ntotal, dtype=np.float32)
        if self.ntotal:
            faiss.fvec_inner_products_ny(faiss.swig_ptr(out), faiss.swig_ptr(q), _flat_storage(self.index).get_xb(),
                                         self.dim, self.ntotal)
        return out

    def exact_search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k over the allowed rows (boolean mask), by brute-force dot product."""
        rows = np.arange(self.ntotal) if allowed is None else np.flatnonzero(allowed[: self.ntotal])
        if len(rows) == 0 or k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        s = self.score(query, rows)
        k = min(k, len(rows))
        top = np.argpartition(-s, k - 1)[:k]
        top = top[np.argsort(-s[top], kind="stable")]
        return s[top].astype(np.float32), rows[top].astype(np.int64)

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, rows) in descending score order, restricted to ``allowed`` rows when given.

        Never returns fewer than ``min(k, allowed.sum())`` hits: HNSW searches only the allowed rows (ID selector)
        with ``efSearch = max(ef_search, k)``, and an exact search over the allowed subset takes over when the
        graph walk finds too few. A filter that allows at most ``exact_below`` rows is searched exactly (cheap,
        and a sparse selector cuts the graph into pieces HNSW walks badly).
        """
        n = self.ntotal
        if n == 0 or k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        mask = None if allowed is None else np.asarray(allowed[:n], dtype=bool)
        n_allowed = n if mask is None else int(mask.sum())
        want = min(k, n_allowed)
        if want == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        if self.exact or (n_allowed < n and n_allowed <= self.exact_below):
            return self.exact_search(query, want, allowed)
        params = faiss.SearchParametersHNSW(efSearch=max(int(self.ef_search), want))
        if n_allowed < n:
            bits = np.packbits(mask, bitorder="little")   # must outlive the search call (FAISS keeps a pointer)
            selector = faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))
            params.sel = selector
        scores, ids = self.index.search(l2_normalize(query).reshape(1, -1), want, params=params)
        scores, ids = scores[0], ids[0]
        keep = ids >= 0
        scores, ids = scores[keep], ids[keep]
        if len(ids) < want:
            return self.exact_search(query, want, allowed)
        return scores.astype(np.float32), ids.astype(np.int64)

    # -- persistence ----------------------------------------------------------------------------------------------
    def save(self, path_prefix: str | Path) -> None:
        """Writes ``<prefix>.faiss`` (faiss.write_index); the normalised vectors are its flat storage."""
        faiss.write_index(self.index, str(Path(path_prefix).with_suffix(".faiss")))

    @classmethod
    def load(cls, path_prefix: str | Path, ef_search: int | None = None, exact_below: int = 0) -> DenseIndex:
        p = Path(path_prefix)
        index, mapped = _read_index(p.with_suffix(".faiss"))
        exact = not isinstance(index, faiss.IndexHNSWFlat)
        obj = cls.__new__(cls)
        obj.mapped = mapped
        obj.dim, obj.exact, obj.index, obj.exact_below = index.d, exact, index, int(exact_below)
        obj.m = index.hnsw.nb_neighbors(1) if not exact else 0
        obj.ef_construction = index.hnsw.efConstruction if not exact else 0
        obj.ef_search = int(ef_search if ef_search is not None else (index.hnsw.efSearch if not exact else 0))
        return obj   # a ``<prefix>.npy`` beside it (bundles before 2026-12-05: a copy of the storage) is not read


class _StorageBuffer:
    """An ``__array_interface__`` over FAISS-owned float32 memory that keeps the index alive as long as any array
    made from it (numpy stores this object as the array's ``base``)."""

    def __init__(self, index: faiss.Index, pointer: int, n: int, d: int) -> None:
        self._index = index
        self.__array_interface__ = {"shape": (n, d), "typestr": "<f4", "data": (pointer, True), "version": 3}


def _flat_storage(index: faiss.Index) -> faiss.IndexFlat:
    """The flat index holding a flat or HNSW-flat index's raw vectors."""
    flat = faiss.downcast_index(index.storage) if isinstance(index, faiss.IndexHNSW) else index
    if not isinstance(flat, faiss.IndexFlat):
        raise TypeError(f"{type(flat).__name__}: only flat storage keeps the raw vectors")
    return flat


def storage_view(index: faiss.Index) -> np.ndarray:
    """A read-only ``(ntotal, d)`` float32 view of a flat or HNSW-flat index's stored vectors (no copy). For a
    memory-mapped index it is not 4-byte aligned: gathering rows from it is fine, a whole-matrix product is not
    (:meth:`DenseIndex.dot_all`)."""
    flat = _flat_storage(index)
    n, d = int(index.ntotal), int(index.d)
    if n == 0:
        return np.zeros((0, d), dtype=np.float32)
    return np.asarray(_StorageBuffer(index, int(flat.get_xb()), n, d))


def _read_index(path: Path) -> tuple[faiss.Index, bool]:
    """``(index, memory-mapped?)``: the vectors and the HNSW graph mapped in place from the file, read-only
    (``IO_FLAG_MMAP_IFC``: nothing is copied, the pages are read on first touch and shared by every process that
    maps the file), when this FAISS build can; else an ordinary read into memory."""
    try:
        return faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY), True
    except (RuntimeError, AttributeError):
        return faiss.read_index(str(path)), False


def recall_at_k(approx_rows: np.ndarray, exact_rows: np.ndarray) -> float:
    """Mean fraction of the exact top-k found by the approximate top-k (rows: (n_queries, k))."""
    hits = [len(set(a.tolist()) & set(e.tolist())) / max(1, len(e)) for a, e in zip(approx_rows, exact_rows, strict=True)]
    return float(np.mean(hits))


def benchmark_hnsw(n: int = 100_000, dim: int = 384, n_queries: int = 200, k: int = 10,
                   params: dict | None = None, ef_values: tuple[int, ...] = (128, 256), clustered: bool = False,
                   seed: int | None = None) -> list[dict]:
    """HNSW recall@k vs exact IndexFlatIP and single-thread per-query latency on random unit vectors.

    ``clustered=True`` draws vectors around 1,000 Gaussian centres (closer to real embeddings, which have a low
    intrinsic dimension) instead of isotropic Gaussian noise (the hardest case for HNSW). Index building uses all
    threads; searching is timed with ``faiss.omp_set_num_threads(1)``, one query per call.
    """
    import time

    rng = np.random.default_rng(param_seed(params) if seed is None else seed)
    if clustered:
        centres = rng.standard_normal((1000, dim)).astype(np.float32)
        x = centres[rng.integers(0, 1000, n)] + 0.5 * rng.standard_normal((n, dim)).astype(np.float32)
        q = centres[rng.integers(0, 1000, n_queries)] + 0.5 * rng.standard_normal((n_queries, dim)).astype(np.float32)
    else:
        x = rng.standard_normal((n, dim)).astype(np.float32)
        q = rng.standard_normal((n_queries, dim)).astype(np.float32)
    t0 = time.perf_counter()
    hnsw = DenseIndex.build(x, params or {})
    build_s = time.perf_counter() - t0
    exact = faiss.IndexFlatIP(dim)
    exact.add(l2_normalize(x))
    qn = l2_normalize(q)
    _, truth = exact.search(qn, k)
    del x
    faiss.omp_set_num_threads(1)
    rows = []
    for ef in ef_values:
        hnsw.ef_search = ef
        found, times = [], []
        for i in range(n_queries):
            t = time.perf_counter()
            _, r = hnsw.search(qn[i], k)
            times.append(time.perf_counter() - t)
            found.append(r)
        rows.append({"n": n, "dim": dim, "clustered": clustered, "ef_search": ef, "k": k,
                     "recall_at_k": recall_at_k(np.stack(found), truth),
                     "median_us": float(np.median(times) * 1e6), "p95_us": float(np.percentile(times, 95) * 1e6),
                     "build_s": build_s})
    return rows
