"""Two trivial TFX components for tests/test_progress.py (module level: TFX imports components by name)."""
from tfx.types.standard_artifacts import Examples

from components.tfx_types import InputArtifact, OutputArtifact, component


@component
def Count(numbers: OutputArtifact[Examples]) -> None:  # noqa: N802
    numbers.set_int_custom_property("n_items", 1234)


@component
def Shout(numbers: InputArtifact[Examples]) -> None:  # noqa: N802
    print("shouting from inside a component")
