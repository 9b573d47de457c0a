"""DataCheck: the gate between validation and everything that trains or pushes.

ExampleValidator only records anomalies; this component fails the run when there are any, and adds the
rules TFDV cannot express (duplicate item ids, interactions or judgements pointing to unknown items).
The failure message names the file, the column, the problem and where the anomaly report is.
"""
# No "from __future__ import annotations": the @component decorator reads real type hints.
import json
import logging
import os

from tfx.types.standard_artifacts import ExampleAnomalies

from components.artifacts import DataReport
from components.common import local_dirs
from components.data_check import executor
from components.tfx_types import InputArtifact, OutputArtifact, Parameter, component

log = logging.getLogger(__name__)


@component
def DataCheck(  # noqa: N802
    items_anomalies: InputArtifact[ExampleAnomalies],
    queries_anomalies: InputArtifact[ExampleAnomalies],
    report: OutputArtifact[DataReport],
    data_dir: Parameter[str],
    interactions_anomalies: InputArtifact[ExampleAnomalies] = None,  # optional input
) -> None:
    """Stop the pipeline on any data problem; otherwise write a small JSON report."""
    tables = {"items": items_anomalies, "interactions": interactions_anomalies, "queries": queries_anomalies}
    with local_dirs({"data": data_dir}, {"report": report}) as local:
        try:
            counts = executor.run_check(local["data"], tables)
        except Exception as exc:
            log.error("DataCheck failed: %s", exc)
            print(f"\n[pixelmatch] DataCheck stopped the run: {exc}\n", flush=True)
            raise
        os.makedirs(local["report"], exist_ok=True)
        with open(os.path.join(local["report"], "report.json"), "w") as f:
            json.dump(counts, f, indent=2)
    for key, value in counts.items():
        report.set_int_custom_property(key, int(value))
