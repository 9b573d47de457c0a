"""Two trivial TFX components for tests/test_progress.py (module level: TFX imports components by name)."""
from tfx import v1 as tfx
from tfx.types.standard_artifacts import Examples


@tfx.dsl.components.component
def Count(numbers: tfx.dsl.components.OutputArtifact[Examples]) -> None:  # noqa: N802
    numbers.set_int_custom_property("n_items", 1234)


@tfx.dsl.components.component
def Shout(numbers: tfx.dsl.components.InputArtifact[Examples]) -> None:  # noqa: N802
    print("shouting from inside a component")
