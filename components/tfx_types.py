"""The TFX names PixelMatch uses, imported once from their defining modules.

Not through ``from tfx import v1``: importing ``tfx.v1`` also imports its Google Cloud AI Platform extension
(``google.cloud.aiplatform``), which costs 6-10 s of CPU at every process start (``python -X importtime``) and is
never used here. Only the Kubeflow runner, which needs the Vertex runner, imports ``tfx.v1``.
"""
from tfx.components.example_validator.component import ExampleValidator
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.components.statistics_gen.component import StatisticsGen
from tfx.components.transform.component import Transform
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import LatestBlessedModelStrategy
from tfx.orchestration.local.local_dag_runner import LocalDagRunner
from tfx.orchestration.metadata import sqlite_metadata_connection_config
from tfx.orchestration.pipeline import Pipeline
from tfx.types import standard_artifacts
from tfx.types.artifact import Artifact
from tfx.types.channel import Channel

__all__ = [
    "Artifact", "Channel", "ExampleValidator", "ImportSchemaGen", "InputArtifact", "LatestBlessedModelStrategy",
    "LocalDagRunner", "OutputArtifact", "Parameter", "Pipeline", "Resolver", "StatisticsGen", "Transform", "component",
    "sqlite_metadata_connection_config", "standard_artifacts",
]
