"""params loading and the source fingerprint that keys the TFX cache on code as well as params."""
from __future__ import annotations

import json
from pathlib import Path

from modules.config import code_fingerprint, load_params


def _tree(root: Path) -> None:
    for rel, text in {"modules/a.py": "x = 1\n", "components/c/executor.py": "y = 2\n",
                      "components/c/executor_test.py": "def test(): pass\n", "components/c/test_executor.py": "t = 1\n",
                      "tests/t.py": "z = 3\n"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_code_fingerprint_follows_source_not_tests(tmp_path: Path) -> None:
    _tree(tmp_path)
    first = code_fingerprint(tmp_path)
    assert first == code_fingerprint(tmp_path) and len(first) == 16
    (tmp_path / "components/c/executor_test.py").write_text("def test(): assert 1\n")
    (tmp_path / "components/c/test_executor.py").write_text("t = 2\n")
    (tmp_path / "tests/t.py").write_text("z = 4\n")
    (tmp_path / "modules/__pycache__").mkdir()
    (tmp_path / "modules/__pycache__/a.cpython-310.py").write_text("junk")
    assert code_fingerprint(tmp_path) == first
    (tmp_path / "modules/a.py").write_text("x = 2\n")
    assert code_fingerprint(tmp_path) != first
    (tmp_path / "modules/a.py").write_text("x = 1\n")
    (tmp_path / "modules/a.py").rename(tmp_path / "modules/b.py")  # same content, new path
    assert code_fingerprint(tmp_path) != first


def test_components_receive_params_with_the_code_version(tmp_path: Path) -> None:
    from pipelines.pipeline import create_pipeline

    pipe = create_pipeline(pipeline_name="t", pipeline_root=str(tmp_path / "root"), data_dir=str(tmp_path / "data"),
                           serving_dir=str(tmp_path / "serving"), data_hash="abc")
    seen = [json.loads(c.exec_properties["params_json"]) for c in pipe.components if "params_json" in c.exec_properties]
    assert seen and all(p["code_version"] == code_fingerprint() for p in seen)
    assert all({k: v for k, v in p.items() if k != "code_version"} == load_params() for p in seen)


def test_tests_live_in_tests() -> None:
    """One convention (pytest.ini: testpaths = tests, python_files = test_*.py): no test file beside the code."""
    from modules.config import REPO_ROOT, _is_test_file

    stray = [p.relative_to(REPO_ROOT).as_posix() for d in ("modules", "components", "serving", "pipelines")
             for p in (REPO_ROOT / d).rglob("*.py") if _is_test_file(p)]
    assert stray == [], f"move these into tests/ as tests/test_<component>_<what>.py: {stray}"
