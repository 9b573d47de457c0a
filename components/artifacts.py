"""Custom TFX artifact types shared by the PixelMatch components."""
from tfx import v1 as tfx


class DataReport(tfx.dsl.Artifact):
    """report.json from DataCheck: row counts of a DATA_DIR that passed every rule."""

    TYPE_NAME = "pixelmatch.DataReport"


class Embeddings(tfx.dsl.Artifact):
    """text.npy, image.npy, color.npy (row i = item_ids.json[i]) plus the trained image tower."""

    TYPE_NAME = "pixelmatch.Embeddings"


class RetrievalMetrics(tfx.dsl.Artifact):
    """metrics.json + benchmark.md from RetrievalEvaluator (eval split only)."""

    TYPE_NAME = "pixelmatch.RetrievalMetrics"


class FeatureStoreState(tfx.dsl.Artifact):
    """The Parquet feature tables published to Feast and the materialisation summary."""

    TYPE_NAME = "pixelmatch.FeatureStoreState"
