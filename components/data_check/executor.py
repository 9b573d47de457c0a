"""DataCheck logic: turns ExampleValidator anomalies plus the cross-row rules into one clear failure."""
from __future__ import annotations

import os
from pathlib import Path

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import artifact_utils

from components.data_check.rules import DataCheckError, Problem, check_data_dir

ANOMALIES_FILE = "SchemaDiff.pb"
TABLE_FILES = {"items": "items.csv", "interactions": "interactions.csv", "queries": "queries.jsonl"}


def anomaly_problems(table: str, anomalies_artifact) -> list[Problem]:
    """Problems found by TFDV for one table (every split), each naming the report file."""
    problems: list[Problem] = []
    for split in artifact_utils.decode_split_names(anomalies_artifact.split_names):
        path = os.path.join(anomalies_artifact.uri, f"Split-{split}", ANOMALIES_FILE)
        if not tf.io.gfile.exists(path):
            continue
        with tf.io.gfile.GFile(path, "rb") as f:
            anomalies = anomalies_pb2.Anomalies.FromString(f.read())
        for feature, info in sorted(anomalies.anomaly_info.items()):
            detail = "; ".join(r.description or r.short_description for r in info.reason) or info.description
            problems.append(Problem(TABLE_FILES[table], feature, f"{detail} [split {split}; report {path}]"))
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            detail = "; ".join(r.description for r in info.reason)
            problems.append(Problem(TABLE_FILES[table], "(dataset)", f"{detail} [split {split}; report {path}]"))
    return problems


def run_check(data_dir: str, anomalies_by_table: dict[str, object]) -> dict:
    """Raise DataCheckError when TFDV found anomalies or a cross-row rule fails; return counts otherwise."""
    problems: list[Problem] = []
    for table, artifact in anomalies_by_table.items():
        if artifact is not None:
            problems += anomaly_problems(table, artifact)
    try:
        report = check_data_dir(Path(data_dir))
    except DataCheckError as exc:
        problems += exc.problems
        report = {}
    if problems:
        raise DataCheckError(problems)
    return report
