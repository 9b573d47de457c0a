"""Loads params.yaml: the single home of every PixelMatch hyperparameter."""
from __future__ import annotations

import copy
import os
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
    with p.open() as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{p}: expected a mapping at the top level")
    data.setdefault("seed", DEFAULT_SEED)
    return copy.deepcopy(data)
