"""A bounded, thread-safe LRU of query embeddings keyed by the exact query text (both MiniLM query paths use it:
``TextEncoder.encode_query`` in TensorFlow, ``OnnxTextEncoder.encode_query`` on onnxruntime). Cached vectors are
read-only, so no caller can change what the next caller of the same text gets."""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np


class QueryCache:
    """``get_or_compute(text, compute)``: the cached vector of ``text``, else ``compute(text)`` (then cached).
    ``size`` 0 disables caching (every call computes). ``hits`` / ``misses`` count the calls."""

    def __init__(self, size: int) -> None:
        self.size = max(0, int(size))
        self._entries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get_or_compute(self, text: str, compute: Callable[[str], np.ndarray]) -> np.ndarray:
        with self._lock:
            hit = self._entries.get(text)
            if hit is not None:
                self._entries.move_to_end(text)
                self.hits += 1
                return hit
            self.misses += 1
        vec = np.asarray(compute(text), dtype=np.float32)
        vec.setflags(write=False)
        if self.size:
            with self._lock:
                self._entries[text] = vec
                self._entries.move_to_end(text)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return vec
