"""modules/settings.py: params.yaml loads into frozen, typed settings; every key has a field and every field a key;
unknown keys and wrong types are refused by dotted key; a caller's partial params merge over params.yaml's."""
from __future__ import annotations

import dataclasses
import types
import typing

import pytest

from modules.config import load_params
from modules.settings import HnswSettings, Settings, load_settings

# fields params.yaml may leave out (commented there); they load as None
OPTIONAL_FIELDS = {"generate.categories"}


def _field_paths(cls: type, prefix: str = "") -> set[str]:
    out = set()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        out.add(path)
        if dataclasses.is_dataclass(hints[f.name]):
            out |= _field_paths(hints[f.name], f"{path}.")
    return out


def _params_paths(node: dict, cls: type, prefix: str = "") -> set[str]:
    """Dotted params.yaml keys, descending where the settings declare a section."""
    out = set()
    hints = typing.get_type_hints(cls)
    for key, value in node.items():
        path = f"{prefix}{key}"
        out.add(path)
        tp = hints.get(key)
        if isinstance(value, dict) and tp is not None and dataclasses.is_dataclass(tp):
            out |= _params_paths(value, tp, f"{path}.")
    return out


def test_params_yaml_loads_into_settings() -> None:
    s = load_settings()
    params = load_params()
    assert isinstance(s, Settings) and s.seed == params["seed"]
    assert isinstance(s.retrieval.hnsw, HnswSettings)
    assert s.retrieval.hnsw.ef_search == params["retrieval"]["hnsw"]["ef_search"]
    assert s.serving.top_k_max == params["serving"]["top_k_max"]
    assert dict(s.retrieval.rrf_weights) == params["retrieval"]["rrf_weights"]
    assert s.pipeline.beam_args == tuple(params["pipeline"]["beam_args"])
    assert s.encoders.backbone.pca_dim == params["encoders"]["backbone"]["pca_dim"]
    assert s.retrieval.rerank_depth == 150 and s.generate.categories is None
    assert isinstance(s.look.models.detector_classes, types.MappingProxyType)
    assert isinstance(s.serving.max_upload_mb, float)    # an int in params.yaml, a float field


def test_settings_are_frozen() -> None:
    s = load_settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.seed = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.retrieval.hnsw.ef_search = 1
    with pytest.raises(TypeError):
        s.retrieval.rrf_weights["image"] = 1.0
    with pytest.raises(AttributeError):
        s.pipeline.beam_args.append("--x")


def test_every_params_key_has_a_field_and_every_field_a_key() -> None:
    in_yaml = _params_paths(load_params(), Settings)
    in_code = _field_paths(Settings)
    assert in_yaml - in_code == set(), "params.yaml keys without a settings field"
    assert in_code - in_yaml == OPTIONAL_FIELDS, "settings fields params.yaml does not set"


def test_dataclasses_declare_no_defaults() -> None:
    """params.yaml is the only source of values."""
    def walk(cls: type) -> list[str]:
        hints = typing.get_type_hints(cls)
        bad = [f"{cls.__name__}.{f.name}" for f in dataclasses.fields(cls)
               if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING]
        return bad + [b for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name]) for b in walk(hints[f.name])]

    assert walk(Settings) == []


@pytest.mark.parametrize("params, message", [
    ({"retrieval": {"hnsw": {"ef_serch": 64}}}, "retrieval.hnsw.ef_serch: unknown key"),
    ({"retrieval": {"hnsw": {"ef_search": "64"}}}, "retrieval.hnsw.ef_search: expected int, got str"),
    ({"serving": {"top_k_max": True}}, "serving.top_k_max: expected int, got bool"),
    ({"serving": {"max_upload_mb": "10"}}, "serving.max_upload_mb: expected float, got str"),
    ({"retrieval": {"rrf_weights": {"image": "high"}}}, "retrieval.rrf_weights.image: expected float, got str"),
    ({"pipeline": {"beam_args": ["--a", 1]}}, "pipeline.beam_args[1]: expected str, got int"),
    ({"retrieval": {"photo": 0.5}}, "retrieval.photo: expected a mapping, got float"),
    ({"retrieval": {"rerank_depth": 1.5}}, "retrieval.rerank_depth: expected int or null, got float"),
    ({"retrieval": 5}, "retrieval: expected a mapping, got int"),
    ({"retreival": {}}, "retreival: unknown key"),
])
def test_unknown_keys_and_wrong_types_are_refused_by_dotted_key(params: dict, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        load_settings(params)
    assert str(exc.value).startswith(message)


def test_a_partial_override_merges_over_params_yaml() -> None:
    base = load_settings()
    s = load_settings({"retrieval": {"hnsw": {"ef_search": 64}, "rrf_weights": {}}, "serving": {"max_upload_mb": 0.5},
                       "seed": 7})
    assert s.seed == 7 and s.retrieval.hnsw.ef_search == 64
    assert s.retrieval.hnsw.M == base.retrieval.hnsw.M                    # the rest of the section from params.yaml
    assert s.retrieval.candidates == base.retrieval.candidates
    assert dict(s.retrieval.rrf_weights) == {}                            # a free-form mapping is replaced whole
    assert s.serving.max_upload_mb == 0.5 and s.serving.top_k_max == base.serving.top_k_max
    assert s.look == base.look
    assert load_settings({"pipeline": None}).pipeline == base.pipeline    # an empty YAML section overrides nothing
    assert load_settings({"generate": {"categories": ["sneakers"]}}).generate.categories == ("sneakers",)
    assert load_settings(load_params()) == base
