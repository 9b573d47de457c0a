"""Loads params.yaml: the single home of every PixelMatch hyperparameter."""
from __future__ import annotations

import copy
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """The workspace's shared folder (reference vectors, the fashion sample): ``$PIXELMATCH_SHARED_DIR``, else
    ``../shared`` beside the checkout, else ``/work/shared`` (a clone elsewhere, e.g. /tmp, still finds it)."""
    env = os.environ.get("PIXELMATCH_SHARED_DIR")
    if env:
        return Path(env)
    for cand in (REPO_ROOT.parent / "shared", Path("/work/shared")):
        if cand.is_dir():
            return cand
    return REPO_ROOT.parent / "shared"


DEFAULT_SEED = 42
CODE_DIRS = ("modules", "components")


def param_seed(params: Mapping[str, Any] | None = None) -> int:
    """The run's seed: ``params["seed"]`` (``load_params`` always sets it), else the params file's own (when a
    caller's params, such as a test's trimmed copy, a component's sub-dict or one section, lack it, or there are
    none): what a random routine uses when its caller passes no ``seed``."""
    if params and "seed" in params:
        return int(params["seed"])
    return int(_cached(params_path())["seed"])


def _is_test_file(path: Path) -> bool:
    """A pytest file by either naming convention (tests live in tests/; one left beside the code is still not code)."""
    return path.name.startswith("test_") or path.name.endswith("_test.py") or path.name == "conftest.py"


def code_fingerprint(root: str | Path = REPO_ROOT, dirs: tuple[str, ...] = CODE_DIRS) -> str:
    """sha256 over the model and component source (``*.py`` under ``dirs``, tests excluded), path and content.

    The pipeline hands it to every component with the params, so a code change invalidates the TFX cache
    (TFX only fingerprints its own module files, not the library code our executors import)."""
    import hashlib

    digest = hashlib.sha256()
    base = Path(root)
    files = sorted(f for d in dirs for f in (base / d).rglob("*.py") if not _is_test_file(f) and "__pycache__" not in f.parts)
    for f in files:
        digest.update(f.relative_to(base).as_posix().encode())
        digest.update(b"\0")
        digest.update(f.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def params_path(path: str | Path | None = None) -> Path:
    """Resolve the params file: explicit path, then $PIXELMATCH_PARAMS, then the repo's params.yaml."""
    if path is not None:
        return Path(path)
    env = os.environ.get("PIXELMATCH_PARAMS")
    return Path(env) if env else REPO_ROOT / "params.yaml"


def load_params(path: str | Path | None = None) -> dict[str, Any]:
    """Return params.yaml as a dict (a fresh copy each call, safe to mutate)."""
    p = params_path(path)
    if not p.is_file():
        raise FileNotFoundError(f"params file not found: {p}")
    return copy.deepcopy(_cached(p))


def params_section(dotted: str, path: str | Path | None = None) -> Any:
    """A copy of one section of params.yaml (``"encoders.color"``): what :func:`load_params` would give under that
    key, without copying the whole file (readers on a per-photo path)."""
    p = params_path(path)
    if not p.is_file():
        raise FileNotFoundError(f"params file not found: {p}")
    node: Any = _cached(p)
    for name in dotted.split("."):
        node = node[name]
    return copy.deepcopy(node)


def _cached(p: Path) -> dict[str, Any]:
    st = p.stat()
    return _parsed_params(str(p.resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _parsed_params(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    """One YAML parse per version of a params file (keyed on its modification time and size): settings are read
    per photo in the catalog passes, where a parse each time cost more than the work."""
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    data.setdefault("seed", DEFAULT_SEED)
    return data
