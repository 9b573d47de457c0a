"""A saved DenseIndex loads memory-mapped (nothing copied into the process heap), serves its vectors from the FAISS
storage itself (no second copy, no ``.npy`` beside it), answers exactly like the in-memory index, and still accepts
live adds (the first add takes an owned copy instead of aborting in FAISS)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modules.search.dense import DenseIndex, l2_normalize


@pytest.fixture()
def vectors() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32)


@pytest.mark.parametrize("exact", [False, True])
def test_saved_index_loads_mapped_and_answers_the_same(tmp_path: Path, vectors: np.ndarray, exact: bool) -> None:
    built = DenseIndex.build(vectors, exact=exact)
    built.save(tmp_path / "idx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx.faiss"]   # the vectors live in the index only
    loaded = DenseIndex.load(tmp_path / "idx")
    assert loaded.mapped
    np.testing.assert_array_equal(loaded.vectors, l2_normalize(vectors))
    assert not loaded.vectors.flags.writeable                            # a view of read-only mapped pages
    queries = np.random.default_rng(1).normal(size=(20, 16)).astype(np.float32)
    allowed = np.zeros(len(vectors), bool)
    allowed[::3] = True
    for q in queries:
        for mask in (None, allowed):
            s_a, r_a = built.search(q, 10, mask)
            s_b, r_b = loaded.search(q, 10, mask)
            np.testing.assert_array_equal(r_a, r_b)
            np.testing.assert_allclose(s_a, s_b, rtol=1e-6)


def test_live_add_after_a_mapped_load(tmp_path: Path, vectors: np.ndarray) -> None:
    DenseIndex.build(vectors).save(tmp_path / "idx")
    loaded = DenseIndex.load(tmp_path / "idx")
    before = np.array(loaded.vectors)
    new = np.random.default_rng(2).normal(size=(2, 16)).astype(np.float32)
    rows = loaded.add(new)
    assert not loaded.mapped and rows.tolist() == [300, 301] and loaded.ntotal == 302
    np.testing.assert_array_equal(loaded.vectors[:300], before)
    np.testing.assert_allclose(loaded.vectors[300:], l2_normalize(new))
    _, top = loaded.search(new[0], 1)
    assert top.tolist() == [300]


def test_vectors_outlive_their_index(tmp_path: Path, vectors: np.ndarray) -> None:
    DenseIndex.build(vectors).save(tmp_path / "idx")
    view = DenseIndex.load(tmp_path / "idx").vectors   # the DenseIndex itself is gone after this line
    import gc

    gc.collect()
    np.testing.assert_array_equal(view, l2_normalize(vectors))


def test_dot_all_matches_numpy_on_a_mapped_index(tmp_path: Path, vectors: np.ndarray) -> None:
    DenseIndex.build(vectors).save(tmp_path / "idx")
    loaded = DenseIndex.load(tmp_path / "idx")
    q = np.random.default_rng(3).normal(size=16).astype(np.float32)
    np.testing.assert_allclose(loaded.dot_all(q), np.array(loaded.vectors) @ l2_normalize(q).ravel(), atol=1e-6)
    assert DenseIndex.build(np.zeros((0, 16), np.float32)).dot_all(q).shape == (0,)
