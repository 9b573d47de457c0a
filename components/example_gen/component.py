"""DataExampleGen: the three DATA_DIR tables as Examples artifacts with deterministic train/eval splits.

TFX's CsvExampleGen infers column types from the data (an all-integer price column becomes INT,
numeric-looking ids become INT), which would make the curated schema fail on valid catalogs, and it
cannot split by time. This component writes the same Examples layout with the types fixed by the
schema and the temporal split from DATA_DIR/manifest.json. ``data_hash`` is part of the cache key,
so a changed DATA_DIR reruns it while an unchanged one hits the TFX cache.
"""
# No "from __future__ import annotations": the @component decorator reads real type hints.
import logging
from pathlib import Path

from tfx.types import artifact_utils
from tfx.types.standard_artifacts import Examples

from components.common import local_dirs
from components.example_gen import executor
from components.tfx_types import OutputArtifact, Parameter, component
from modules.data.data_io import read_cutoff

log = logging.getLogger(__name__)


def _finish(artifact: Examples, counts: dict[str, int]) -> None:
    artifact.split_names = artifact_utils.encode_split_names(list(counts))
    for split, n in counts.items():
        artifact.set_int_custom_property(f"num_{split}", n)


@component
def DataExampleGen(  # noqa: N802 (TFX components are named like classes)
    data_dir: Parameter[str],
    data_hash: Parameter[str],
    items: OutputArtifact[Examples],
    interactions: OutputArtifact[Examples],
    queries: OutputArtifact[Examples],
) -> None:
    """Write items / interactions / queries tf.Examples, split train/eval (written through tf.io.gfile)."""
    with local_dirs({"data": data_dir}) as local:
        root = Path(local["data"])
        cutoff = read_cutoff(root)
        for name, artifact, rows in (
            ("items", items, executor.items_examples(root, cutoff)),
            ("interactions", interactions, executor.interactions_examples(root, cutoff)),
            ("queries", queries, executor.queries_examples(root)),
        ):
            counts = executor.write_splits(artifact.uri, rows)
            _finish(artifact, counts)
            artifact.set_string_custom_property("data_hash", data_hash)
            log.info("DataExampleGen %s: %s (cutoff_ts=%s)", name, counts, cutoff)
