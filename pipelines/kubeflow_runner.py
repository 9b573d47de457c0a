"""Compiles the PixelMatch pipeline to a Kubeflow Pipelines V2 JSON spec (no cluster needed).

    python -m pipelines.kubeflow_runner --data gs://bucket/data --output pipelines/kubeflow/pixelmatch_pipeline.json

The spec is the same pipeline as the LocalDagRunner's (pipelines/pipeline.py). Upload it to KFP and make
a recurring run from it (the README shows the command). Paths in the spec are the cluster-side paths.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_IMAGE = "pixelmatch:latest"


def compile_pipeline(
    data_dir: str,
    output_file: str,
    serving_dir: str = "/serving_dir",
    pipeline_root: str = "/pipeline_root",
    image: str = DEFAULT_IMAGE,
    params_path: str | None = None,
    data_hash: str = "",
    two_tower: bool = True,
) -> Path:
    """Write the KFP V2 pipeline spec JSON to ``output_file`` and return its path."""
    from tfx import v1 as tfx

    from pipelines.configs import pipeline_settings
    from pipelines.pipeline import create_pipeline

    settings = pipeline_settings(params_path)
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
        beam_pipeline_args=settings["beam_args"],
        enable_cache=True,
        has_interactions=True,
        enable_two_tower=two_tower,
        feature_repo_dir="/pixelmatch/feature_repo",
    )
    out = Path(output_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
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
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--params", default=None)
    args = parser.parse_args(argv)
    path = compile_pipeline(args.data, args.output, args.serving_dir, args.pipeline_root, args.image, args.params)
    print(f"[pixelmatch] Kubeflow V2 spec written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
