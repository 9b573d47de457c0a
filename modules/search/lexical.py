"""Lexical retrieval: BM25 (bm25s) and TF-IDF (scikit-learn) over the item text.

Both indexes score *every* document for a query (a sparse product), which is cheap at catalog scale and gives
exact lexical features for any candidate. Live-added items go to a small delta BM25 index whose scores are
re-weighted to the IDF of the combined corpus so they are comparable with the base index (see ``BM25Index``).
"""
from __future__ import annotations

import io
import json
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

_TOKEN_RE = re.compile(r"(?u)\b\w\w+\b")


def _fold_plural(tok: str) -> str:
    """Tiny English plural folding so "dresses"/"dress" and "sneakers"/"sneaker" meet (no stemmer dependency)."""
    if len(tok) > 4 and tok.endswith("ies"):
        return tok[:-3] + "y"
    if len(tok) > 4 and tok.endswith("sses"):
        return tok[:-2]
    if len(tok) > 3 and tok.endswith("s") and not tok.endswith(("ss", "us", "is")):
        return tok[:-1]
    return tok


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens (2+ chars), English stop words removed, plurals folded."""
    return [_fold_plural(t) for t in _TOKEN_RE.findall(text.lower()) if t not in ENGLISH_STOP_WORDS]


def _idf(n_docs: int, df: np.ndarray) -> np.ndarray:
    """The Lucene BM25 IDF that bm25s uses for method="lucene"."""
    return np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


class BM25Index:
    """A bm25s index over the base documents plus a delta index over live-added documents.

    Document ``i`` of the base corpus and document ``j`` of the delta corpus are addressed by the caller's row
    numbers ``base_rows[i]`` / ``delta_rows[j]``. ``scores(query, n_rows)`` returns one score per row.
    """

    def __init__(self, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.base: bm25s.BM25 | None = None
        self.n_base = 0
        self.delta: bm25s.BM25 | None = None
        self.delta_docs: list[str] = []
        self.delta_rows: list[int] = []

    # -- building -------------------------------------------------------------------------------------------------
    def _new(self) -> bm25s.BM25:
        return bm25s.BM25(k1=self.k1, b=self.b, method="lucene")

    def fit(self, docs: list[str]) -> BM25Index:
        self.base = self._new()
        self.base.index([tokenize(d) or ["__empty__"] for d in docs], show_progress=False)
        self.n_base = len(docs)
        return self

    def add(self, docs: list[str], rows: list[int]) -> None:
        """Add documents to the delta index (rebuilt over all delta docs: it stays small between pipeline runs)."""
        self.delta_docs.extend(docs)
        self.delta_rows.extend(int(r) for r in rows)
        self.delta = self._new()
        self.delta.index([tokenize(d) or ["__empty__"] for d in self.delta_docs], show_progress=False)

    # -- scoring --------------------------------------------------------------------------------------------------
    @staticmethod
    def _df(model: bm25s.BM25, token: str) -> int:
        tid = model.vocab_dict.get(token)
        if tid is None:
            return 0
        indptr = model.scores["indptr"]
        return int(indptr[tid + 1] - indptr[tid])

    def scores(self, query: str, n_rows: int) -> np.ndarray:
        """BM25 score of every row (0 for rows without a query term)."""
        if self.base is None:
            raise RuntimeError("BM25Index.fit() has not been called")
        out = np.zeros(n_rows, dtype=np.float32)
        toks = [t for t in tokenize(query)]
        if not toks:
            return out
        base_toks = [t for t in toks if t in self.base.vocab_dict]
        if base_toks:
            out[: self.n_base] = self.base.get_scores(base_toks)
        if self.delta is not None:
            # Delta scores use the delta corpus's IDF; rescale each term to the IDF of base + delta so that a new
            # document competes fairly with the base ones (a term unseen in the base is rare, hence valuable).
            n_all = self.n_base + len(self.delta_docs)
            delta_scores = np.zeros(len(self.delta_docs), dtype=np.float32)
            for t in dict.fromkeys(toks):
                if t not in self.delta.vocab_dict:
                    continue
                df_delta = self._df(self.delta, t)
                idf_delta = _idf(len(self.delta_docs), np.float64(df_delta))
                idf_all = _idf(n_all, np.float64(df_delta + self._df(self.base, t)))
                delta_scores += self.delta.get_scores([t]) * np.float32(idf_all / idf_delta)
            out[np.asarray(self.delta_rows, dtype=np.int64)] = delta_scores
        return out

    # -- persistence ----------------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        assert self.base is not None
        self.base.save(str(d / "base"), show_progress=False)
        meta = {"k1": self.k1, "b": self.b, "n_base": self.n_base, "delta_docs": self.delta_docs,
                "delta_rows": self.delta_rows}
        (d / "bm25_meta.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: str | Path) -> BM25Index:
        d = Path(directory)
        meta = json.loads((d / "bm25_meta.json").read_text())
        idx = cls(k1=meta["k1"], b=meta["b"])
        idx.base = bm25s.BM25.load(str(d / "base"), show_progress=False)
        idx.n_base = int(meta["n_base"])
        if meta["delta_docs"]:
            idx.add(meta["delta_docs"], meta["delta_rows"])
        return idx


class TfidfIndex:
    """TF-IDF (scikit-learn) cosine scores; rows added later are transformed with the fitted vocabulary and IDF."""

    def __init__(self, max_features: int | None = None, ngram_max: int = 1) -> None:
        self.vectorizer = TfidfVectorizer(tokenizer=tokenize, lowercase=False, token_pattern=None,
                                          max_features=max_features, ngram_range=(1, ngram_max), sublinear_tf=True)
        self.matrix: sparse.csr_matrix | None = None
        self._analyzer: Any = None   # the vectorizer's analyzer, built on first use

    def fit(self, docs: list[str]) -> TfidfIndex:
        self.matrix = self.vectorizer.fit_transform(docs).tocsr()
        return self

    def add(self, docs: list[str]) -> None:
        """Append rows (in order) for new documents."""
        assert self.matrix is not None
        self.matrix = sparse.vstack([self.matrix, self.vectorizer.transform(docs)]).tocsr()

    def scores(self, query: str) -> np.ndarray:
        assert self.matrix is not None
        return self._cosines(self.matrix, query)

    def scores_rows(self, query: str, rows: np.ndarray) -> np.ndarray:
        """``scores(query)[rows]`` without scoring the rest of the catalog (the hybrid path only needs the
        TF-IDF of its few hundred candidates, and a full pass grows with the catalog)."""
        assert self.matrix is not None
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return np.zeros(0, dtype=np.float32)
        return self._cosines(self.matrix[rows], query)

    def _cosines(self, matrix: sparse.csr_matrix, query: str) -> np.ndarray:
        """Cosine of the query's TF-IDF vector with each row of ``matrix`` (rows and query are L2-normalised)."""
        return np.asarray(matrix @ self.query_vector(query), dtype=np.float64).astype(np.float32)

    def query_vector(self, query: str) -> np.ndarray:
        """The query's L2-normalised TF-IDF vector over the vocabulary, dense (float64): what the fitted
        vectorizer's ``transform`` gives (sublinear tf times idf), without building a sparse matrix for one short
        text (that cost ~0.9 ms per search, more than scoring the candidates)."""
        v = self.vectorizer
        if v.norm != "l2" or not v.use_idf:   # not what TfidfIndex builds: the vectorizer's own transform
            return np.asarray(v.transform([query]).todense(), dtype=np.float64).ravel()
        if self._analyzer is None:
            self._analyzer = v.build_analyzer()
        counts: dict[int, int] = {}
        for term in self._analyzer(query):
            j = v.vocabulary_.get(term)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        q = np.zeros(len(v.idf_), dtype=np.float64)
        if counts:
            cols = np.fromiter(counts, np.int64, len(counts))
            tf = np.fromiter(counts.values(), np.float64, len(counts))
            q[cols] = (np.log(tf) + 1.0 if v.sublinear_tf else tf) * v.idf_[cols]
            norm = float(np.sqrt(np.dot(q[cols], q[cols])))
            if norm > 0:
                q[cols] /= norm
        return q

    def save(self, path: str | Path) -> None:
        """Write a numpy ``.npz`` (arrays + a JSON config/vocabulary): loading it cannot execute code.

        The file keeps the name the caller gives (the bundle's ``tfidf.pkl``); :meth:`load` tells the formats
        apart by their first bytes."""
        assert self.matrix is not None
        v = self.vectorizer
        config = {"format": "pixelmatch-tfidf/1", "max_features": v.max_features, "ngram_range": list(v.ngram_range),
                  "vocabulary": {t: int(i) for t, i in v.vocabulary_.items()}}
        m = self.matrix.tocsr()
        with open(path, "wb") as f:
            np.savez(f, config=np.frombuffer(json.dumps(config).encode("utf-8"), dtype=np.uint8), idf=v.idf_,
                     data=m.data, indices=m.indices, indptr=m.indptr, shape=np.asarray(m.shape, dtype=np.int64))

    @classmethod
    def load(cls, path: str | Path) -> TfidfIndex:
        """Load the ``.npz`` format with ``allow_pickle=False``. A legacy pickle (bundles written before issue 17)
        is read through an unpickler that only resolves the few sklearn/scipy/numpy classes a TF-IDF index holds."""
        data = Path(path).read_bytes()
        if not zipfile.is_zipfile(io.BytesIO(data)):
            state = _SafeTfidfUnpickler(io.BytesIO(data)).load()
            idx = cls()
            idx.vectorizer, idx.matrix = state["vectorizer"], state["matrix"]
            return idx
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            config = json.loads(bytes(z["config"]).decode("utf-8"))
            if config.get("format") != "pixelmatch-tfidf/1":
                raise ValueError(f"{path}: unknown TF-IDF index format {config.get('format')!r}")
            idx = cls(max_features=config["max_features"], ngram_max=int(config["ngram_range"][1]))
            idx.vectorizer.vocabulary_ = dict(config["vocabulary"])
            idx.vectorizer.idf_ = z["idf"]
            idx.matrix = sparse.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(int(n) for n in z["shape"]))
        return idx


class _SafeTfidfUnpickler(pickle.Unpickler):
    """Resolves only the globals a pickled TfidfIndex state needs; anything else (os.system, eval, ...) is refused."""

    ALLOWED = {
        ("sklearn.feature_extraction.text", "TfidfVectorizer"), ("sklearn.feature_extraction.text", "TfidfTransformer"),
        ("modules.search.lexical", "tokenize"), ("numpy", "dtype"), ("numpy", "ndarray"), ("numpy", "float64"),
        ("numpy", "int64"), ("numpy", "int32"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("scipy.sparse._csr", "csr_matrix"), ("scipy.sparse.csr", "csr_matrix"),
        ("builtins", "slice"), ("copyreg", "_reconstructor"), ("builtins", "object"),
    }

    # Pickles written before issue 19 name the tokenizer by its old module path.
    RENAMED = {("modules.retrieval.lexical", "tokenize"): ("modules.search.lexical", "tokenize")}

    def find_class(self, module: str, name: str):  # type: ignore[no-untyped-def]
        module, name = self.RENAMED.get((module, name), (module, name))
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"tfidf pickle refers to {module}.{name}: not allowed (re-push the bundle)")
        return super().find_class(module, name)
