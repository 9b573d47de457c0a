"""params.yaml is the only source of default values: no inline numeric default (``x.get("key", 3)``,
``*_DEFAULTS = {...}``) may disagree with the value params.yaml gives the same key (scripts/inline_defaults.py), and no
function signature may carry its own default for a params.yaml key (``def f(max_seq_length=256)``, ``seed=42``).

The keyword-default rule (:func:`test_no_keyword_default_for_a_params_key`): in production code (modules/,
components/, serving/, pipelines/), a parameter named after a params.yaml leaf key (any section; or an alias of
``inline_defaults.KEY_ALIASES``, e.g. ``max_pixels``) may not default to a literal (a number, string, bool, a
tuple/list of them, or a module constant bound to one such as ``DEFAULT_SEED``). Its value comes from params: the
default is ``None`` and the function reads params.yaml (``seed``: :func:`modules.config.param_seed`, others:
``modules.settings.load_section``), or there is no default and every caller passes it. Exempt:
* ``GENERIC_NAMES``: names whose default is a call-site choice, not the setting (``k``: a result-list cut-off of a
  metric, a recommender or a colour list; the evaluation passes ``evaluation.k`` explicitly);
* ``KEYWORD_NOT_THE_SAME_SETTING``: one (file, function, parameter) whose name only collides with a key, with why;
* ``KEYWORD_NOT_YET_CONVERTED``: files other branches are editing; converted after they merge.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHECKED = ("modules", "components", "serving", "pipelines")
# same key name, different setting: a live-added record's own created_at (0 = unknown), not ingest.created_at
NOT_THE_SAME_SETTING = {("modules/search/state.py", "created_at")}
# Being edited on other branches while issue 19 moved every other reader to modules/settings.py; they still hold
# inline defaults that agree with params.yaml and are converted after those branches merge. Nothing else may.
NOT_YET_CONVERTED: set[str] = set()   # every reader goes through modules.settings

GENERIC_NAMES = {"k"}
KEYWORD_NOT_THE_SAME_SETTING = {
    ("modules/data/images.py", "load_image", "max_pixels"): "the decoder's own decompression-bomb guard "
    "(DEFAULT_MAX_PIXELS) for trusted files; each untrusted path passes its section's max_image_pixels",
    ("modules/encoders/clip.py", "__init__", "batch_size"): "CLIP's inference batch: params.yaml has no clip "
    "section, the name collides with encoders.text/lit/tower.batch_size",
    ("modules/encoders/tower.py", "train", "val_fraction"): "the tower's diagnostic hold-out (0: none), not "
    "encoders.lit.val_fraction",
    ("components/data_check/rules.py", "check_items", "name"): "the checked file's name in messages, not pipeline.name",
    ("components/data_check/rules.py", "check_interactions", "name"): "the checked file's name, not pipeline.name",
    ("pipelines/pipeline.py", "create_pipeline", "has_interactions"): "the resolved bool; "
    "pipeline.kubeflow.has_interactions (auto|true|false) is resolved before the call",
    ("pipelines/kubeflow_runner.py", "compile_pipeline", "serving_dir"): "the container's mount path, not the "
    "local runner's pipeline.serving_dir",
    ("modules/search/zero_shot.py", "zero_shot_attributes", "temperature"): "the zero-shot labels' softmax "
    "sharpness (a display score), not one of the trained models' temperatures",
    ("serving/app.py", "serve", "workers"): "uvicorn's process count (the CLI defaults it to the core count), not "
    "generate/encoder worker pools",
    ("serving/tf_serving_client.py", "__init__", "name"): "the encoder's display name, not pipeline.name",
}
# Files that were being edited on other branches when the keyword rule landed; all converted since. Nothing may be
# added here.
KEYWORD_NOT_YET_CONVERTED: set[str] = set()   # every file converted once the other branches merged


def _scanner():
    spec = importlib.util.spec_from_file_location("inline_defaults", REPO / "scripts" / "inline_defaults.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_inline_default_disagrees_with_params_yaml() -> None:
    rows = _scanner().rows(CHECKED)
    assert rows                 # the scanner does find inline defaults (those for keys params.yaml lacks)
    differs = [f"{r['where']} {r['key']}={r['inline']} (params.yaml: {r['params']})" for r in rows
               if r["verdict"] == "DIFFERS" and (r["where"].split(":")[0], r["key"]) not in NOT_THE_SAME_SETTING]
    assert differs == []


def test_no_inline_default_for_a_params_key() -> None:
    """A reader takes its values from ``modules.settings`` (params.yaml), never from an inline copy, even one that
    agrees: ``x.get("key", N)`` or a ``*_DEFAULTS`` table for a key params.yaml holds is refused."""
    inline = [f"{r['where']} {r['key']}={r['inline']} (params.yaml: {r['params']})" for r in _scanner().rows(CHECKED)
              if r["verdict"] != "absent" and r["where"].split(":")[0] not in NOT_YET_CONVERTED
              and (r["where"].split(":")[0], r["key"]) not in NOT_THE_SAME_SETTING]
    assert inline == []


def test_the_scanner_flags_a_disagreement(tmp_path: Path) -> None:
    scanner = _scanner()
    (tmp_path / "m.py").write_text('def f(params):\n    hnsw = params["retrieval"]["hnsw"]\n'
                                   '    return hnsw.get("ef_search", 1), params.get("retrieval", {}).get("k", 2)\n')
    found = scanner._found(tmp_path / "m.py")
    assert [(chain, key, value) for _, chain, key, value in found] == [
        (["retrieval", "hnsw"], "ef_search", 1), (["retrieval"], "k", 2)]


def _keyword_violations(rows: list[dict]) -> list[str]:
    return [f"{r['where']} {r['function']}({r['key']}={r['inline']!r}) | params.yaml: {r['params']}" for r in rows
            if r["key"] not in GENERIC_NAMES
            and (r["where"].split(":")[0], r["function"], r["key"]) not in KEYWORD_NOT_THE_SAME_SETTING
            and r["where"].split(":")[0] not in KEYWORD_NOT_YET_CONVERTED]


def test_no_keyword_default_for_a_params_key() -> None:
    """See the module docstring for the rule and its exemptions."""
    rows = _scanner().keyword_rows(CHECKED)
    assert any(r["key"] == "k" for r in rows)   # the scanner does see signatures (the generic cut-offs)
    assert _keyword_violations(rows) == []


def test_keyword_exemptions_still_exist() -> None:
    """An exemption whose default is gone must leave the lists (they may only shrink)."""
    rows = _scanner().keyword_rows(CHECKED)
    seen = {(r["where"].split(":")[0], r["function"], r["key"]) for r in rows}
    assert set(KEYWORD_NOT_THE_SAME_SETTING) <= seen
    assert KEYWORD_NOT_YET_CONVERTED <= {where for where, _, _ in seen}


def test_the_keyword_scanner_flags_signature_defaults() -> None:
    scanner = _scanner()
    source = ('DEFAULT_SEED = 42\n'
              'def f(x, seed=DEFAULT_SEED, *, max_seq_length=256, bins=(8, 4), params=None, k=10, other=3): ...\n'
              'class C:\n    def __init__(self, model="m", timeout_s=-2.0, cfg=None, seed=None): ...\n'
              'g = lambda batch_size=64: batch_size\n'
              'def h(image=File(...), threads=len("ab")): ...\n')
    found = [(fn, name, value) for _, fn, name, value in scanner.keyword_defaults_in_source(source)]
    assert found == [("f", "seed", 42), ("f", "max_seq_length", 256), ("f", "bins", (8, 4)), ("f", "k", 10),
                     ("f", "other", 3), ("__init__", "model", "m"), ("__init__", "timeout_s", -2.0),
                     ("<lambda>", "batch_size", 64)]
    rows = [{"where": "modules/x.py:2", "function": fn, "key": name, "inline": value, "params": "?"}
            for fn, name, value in found]
    flagged = [line.split(" ")[1].split("=")[0] for line in _keyword_violations(rows)]
    assert "f(k" not in flagged and "f(seed" in flagged and "<lambda>(batch_size" in flagged   # k: a generic name
    exempt = [{**r, "where": "modules/encoders/tower.py:1", "function": "train", "key": "val_fraction"} for r in rows[:1]]
    assert _keyword_violations(exempt) == []
