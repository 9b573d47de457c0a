"""Product search: the stages a query passes through, one module each, and the ``SearchEngine`` facade.

query (understanding) -> encode -> retrieve (lexical, dense, filters, fusion) -> rrf -> features -> rerank -> respond.
Beside them: ``state`` (the engine's state), ``persistence`` (save/load), ``live`` (add/delete items),
``calibration`` (low_confidence), ``rerank_train`` (training the LambdaMART re-ranker), ``zero_shot``
(attributes of a photo) and ``build`` (the one build path of an engine from a catalog).
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from modules.search.calibration import (  # noqa: E402
    calibrate_from_train_queries,
    calibrate_low_confidence,
    gibberish_queries,
    sample_query_texts,
)
from modules.search.engine import RETRIEVERS, SearchEngine  # noqa: E402
from modules.search.features import RANK_FEATURES, query_kind  # noqa: E402
from modules.search.respond import Result, SearchResponse  # noqa: E402
from modules.search.state import EngineState, UnknownItemError, document_text  # noqa: E402

__all__ = [
    "RANK_FEATURES", "RETRIEVERS", "EngineState", "Result", "SearchEngine", "SearchResponse", "UnknownItemError",
    "calibrate_from_train_queries", "calibrate_low_confidence", "document_text", "gibberish_queries", "query_kind",
    "sample_query_texts",
]
