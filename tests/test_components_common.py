"""components/common.py: the helpers every @component body shares (params + seed, the info file and properties)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from components.common import params_and_seed, record_output


class _Artifact:
    """The part of a TFX output artifact the components touch: ``uri`` and the custom-property setters."""

    def __init__(self, uri: Path) -> None:
        self.uri = str(uri)
        self.props: dict[str, Any] = {}

    def set_int_custom_property(self, key: str, value: int) -> None:
        self.props[key] = ("int", value)

    def set_string_custom_property(self, key: str, value: str) -> None:
        self.props[key] = ("str", value)


def test_record_output_writes_indented_json_and_typed_properties(tmp_path: Path) -> None:
    art = _Artifact(tmp_path)
    info = {"n_items": 12.0, "fusion": "learned", "nested": {"b": 1, "a": [1, 2]}}
    record_output(art, "build_info.json", info, ints={"n_items": info["n_items"]}, strings={"fusion": info["fusion"]})
    assert (tmp_path / "build_info.json").read_text() == json.dumps(info, indent=2)   # the format the files had
    assert art.props == {"n_items": ("int", 12), "fusion": ("str", "learned")}
    assert isinstance(art.props["n_items"][1], int)


def test_params_and_seed_reads_the_json_or_params_yaml() -> None:
    assert params_and_seed(json.dumps({"seed": 7, "x": 1})) == ({"seed": 7, "x": 1}, 7)
    params, seed = params_and_seed("")
    assert seed == params["seed"] and "retrieval" in params
