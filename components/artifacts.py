"""Custom TFX artifact types shared by the PixelMatch components."""
from components.tfx_types import Artifact


class DataReport(Artifact):
    """report.json from DataCheck: row counts of a DATA_DIR that passed every rule."""

    TYPE_NAME = "pixelmatch.DataReport"


class Embeddings(Artifact):
    """text.npy, image.npy, color.npy (row i = item_ids.json[i]) plus the trained image tower."""

    TYPE_NAME = "pixelmatch.Embeddings"


class RetrievalMetrics(Artifact):
    """metrics.json + benchmark.md from RetrievalEvaluator (eval split only)."""

    TYPE_NAME = "pixelmatch.RetrievalMetrics"


class FeatureStoreState(Artifact):
    """The Parquet feature tables published to Feast and the materialisation summary."""

    TYPE_NAME = "pixelmatch.FeatureStoreState"
