"""Pipeline-level settings derived from params.yaml (the `pipeline:` section)."""
from __future__ import annotations

from typing import Any

from modules.config import REPO_ROOT, load_params

DEFAULT_BEAM_ARGS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


def pipeline_settings(params_path: str | None = None) -> dict[str, Any]:
    """name, root, serving_dir and beam_args, with the repo-relative defaults resolved."""
    params = load_params(params_path)
    section = params.get("pipeline", {}) or {}
    return {
        "name": str(section.get("name", "pixelmatch")),
        "root": str((REPO_ROOT / section.get("root", "pipeline_root")).resolve()),
        "serving_dir": str((REPO_ROOT / section.get("serving_dir", "serving_dir")).resolve()),
        "beam_args": list(section.get("beam_args", DEFAULT_BEAM_ARGS)),
        "feature_repo": str((REPO_ROOT / section.get("feature_repo", "feature_repo")).resolve()),
        "two_tower": bool(section.get("two_tower", True)),
    }
