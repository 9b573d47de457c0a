"""Retrieval building blocks: lexical (BM25, TF-IDF), dense (FAISS HNSW + exact), hybrid fusion, filters."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
