"""The local pipeline does not pay for TFX's Google Cloud extension at start-up (components/tfx_types.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_building_the_local_pipeline_does_not_import_google_cloud_aiplatform() -> None:
    code = (
        "import sys\n"
        "import pipelines.local_runner, pipelines.pipeline, pixelmatch_cli  # pipeline.py imports every component\n"
        "from components.tfx_types import LocalDagRunner, Pipeline  # what local_runner imports when it runs\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('google.cloud.aiplatform', 'tfx.v1')))\n"
        "print(loaded[:5])\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
