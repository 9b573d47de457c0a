"""Compiles the PixelMatch pipeline to a Kubeflow Pipelines V2 JSON spec (no cluster needed).

    python -m pipelines.kubeflow_runner --data gs://bucket/data --pipeline-root gs://bucket/root \\
        --output pipelines/kubeflow/pixelmatch_pipeline.json [--beam-runner FlinkRunner --beam-arg=--flink_master=host:8081]

The spec is the same pipeline as the LocalDagRunner's (pipelines/pipeline.py), run in the image the repo's
``Dockerfile`` builds (``pipeline.kubeflow.image``). Beam's runner and options come from ``pipeline.kubeflow``
in params.yaml or from the flags. ``has_interactions`` is read from ``DATA_DIR/interactions.csv`` at compile time
(through ``tf.io.gfile``, so ``gs://`` works where credentials allow); when the file cannot be read, pass
``--has-interactions true|false``. Upload the spec to KFP and make a recurring run from it (README, "Kubeflow").
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_IMAGE = "pixelmatch:latest"


def kubeflow_settings(params_path: str | None = None) -> dict[str, Any]:
    """``pipeline.kubeflow`` of params.yaml: image, beam_runner, beam_args, has_interactions (auto|true|false)."""
    from modules.config import load_params

    section = (load_params(params_path).get("pipeline", {}) or {}).get("kubeflow", {}) or {}
    return {"image": str(section.get("image", DEFAULT_IMAGE)),
            "beam_runner": str(section.get("beam_runner", "DirectRunner")),
            "beam_args": [str(a) for a in section.get("beam_args", [])],
            "has_interactions": str(section.get("has_interactions", "auto")).lower()}


def beam_pipeline_args(runner: str, args: list[str]) -> list[str]:
    """``--runner=<runner>`` followed by the runner's options (an explicit ``--runner`` in ``args`` wins)."""
    return list(args) if any(a.startswith("--runner") for a in args) else [f"--runner={runner}", *args]


def interactions_present(data_dir: str) -> bool | None:
    """True when ``DATA_DIR/interactions.csv`` has a data row, False when it is empty or absent, None if unreadable."""
    import tensorflow as tf

    path = f"{data_dir.rstrip('/')}/interactions.csv"
    try:
        if not tf.io.gfile.exists(path):
            return False if tf.io.gfile.isdir(data_dir) else None
        with tf.io.gfile.GFile(path) as f:
            f.readline()
            return bool(f.readline().strip())
    except (tf.errors.OpError, OSError):
        return None


def resolve_has_interactions(data_dir: str, choice: str) -> bool:
    if choice in ("true", "false"):
        return choice == "true"
    found = interactions_present(data_dir)
    if found is None:
        raise ValueError(f"cannot read {data_dir}/interactions.csv at compile time: pass --has-interactions true|false "
                         "(or set pipeline.kubeflow.has_interactions)")
    return found


def compile_pipeline(
    data_dir: str,
    output_file: str,
    serving_dir: str = "/serving_dir",
    pipeline_root: str = "/pipeline_root",
    image: str | None = None,
    params_path: str | None = None,
    data_hash: str = "",
    two_tower: bool | None = None,
    beam_runner: str | None = None,
    beam_args: list[str] | None = None,
    has_interactions: str | bool | None = None,
) -> Path:
    """Write the KFP V2 pipeline spec JSON to ``output_file`` and return its path.

    ``None`` arguments fall back to ``pipeline.kubeflow`` in params.yaml (``two_tower``: ``pipeline.two_tower``).
    """
    from tfx import v1 as tfx

    from pipelines.configs import pipeline_settings
    from pipelines.pipeline import create_pipeline

    settings, kfp = pipeline_settings(params_path), kubeflow_settings(params_path)
    if isinstance(has_interactions, bool):
        interactions = has_interactions
    else:
        interactions = resolve_has_interactions(data_dir, (has_interactions or kfp["has_interactions"]).lower())
    if not data_hash and os.path.isdir(data_dir):
        from components.example_gen.executor import data_fingerprint

        data_hash = data_fingerprint(data_dir)
    pipeline = create_pipeline(
        pipeline_name=settings["name"],
        pipeline_root=pipeline_root,
        data_dir=data_dir,
        serving_dir=serving_dir,
        data_hash=data_hash or "compiled",
        params_path=params_path or "",
        beam_pipeline_args=beam_pipeline_args(beam_runner or kfp["beam_runner"],
                                              kfp["beam_args"] if beam_args is None else beam_args),
        enable_cache=True,
        has_interactions=interactions,
        enable_two_tower=(settings["two_tower"] if two_tower is None else two_tower) and interactions,
        feature_repo_dir="/pixelmatch/feature_repo",
    )
    out = Path(output_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image or kfp["image"]),
        output_dir=str(out.parent),
        output_filename=out.name,
    )
    runner.run(pipeline, write_out=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="DATA_DIR as the cluster sees it")
    parser.add_argument("--output", default="pipelines/kubeflow/pixelmatch_pipeline.json")
    parser.add_argument("--serving-dir", default="/serving_dir")
    parser.add_argument("--pipeline-root", default="/pipeline_root")
    parser.add_argument("--image", default=None, help="container image (default: pipeline.kubeflow.image)")
    parser.add_argument("--params", default=None)
    parser.add_argument("--beam-runner", default=None, help="e.g. DirectRunner, FlinkRunner, SparkRunner, DataflowRunner")
    parser.add_argument("--beam-arg", action="append", default=None,
                        help="a Beam option, repeatable (--beam-arg=--flink_master=host:8081); replaces params' list")
    parser.add_argument("--has-interactions", choices=("auto", "true", "false"), default=None)
    args = parser.parse_args(argv)
    try:
        path = compile_pipeline(args.data, args.output, args.serving_dir, args.pipeline_root, args.image, args.params,
                                beam_runner=args.beam_runner, beam_args=args.beam_arg,
                                has_interactions=args.has_interactions)
    except ValueError as exc:
        print(f"[pixelmatch] {exc}", file=sys.stderr)
        return 2
    print(f"[pixelmatch] Kubeflow V2 spec written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
