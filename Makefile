# PixelMatch — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PY310 ?= /root/.pyenv/versions/3.10.13/bin/python
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONPATH := $(CURDIR)

SCALE ?= small
DATA ?= data
SERVING_DIR ?= serving_dir
PORT ?= 8000
PIPELINE_ROOT ?= pipeline_root
VERBOSE ?=
RUN_FLAGS := $(if $(VERBOSE),--verbose)

.PHONY: install demo test test-fast test-all lint pipeline serve generate benchmark mlflow-ui kubeflow clean

install: $(STAMP)

# Re-runs only when the lock or setup.py change: a second `make test` does not reinstall.
$(STAMP): requirements.lock setup.py scripts/install.sh
	@bash scripts/install.sh "$(PY310)" "$(VENV)"
	@touch $(STAMP)

generate: install
	$(PY) -m pixelmatch_cli generate --scale $(SCALE) --out $(DATA)

pipeline: install
	$(PY) -m pixelmatch_cli run --data $(DATA) --serving-dir $(SERVING_DIR) --pipeline-root $(PIPELINE_ROOT) $(RUN_FLAGS)

serve: install
	$(PY) -m pixelmatch_cli serve --serving-dir $(SERVING_DIR) --port $(PORT)

demo: install
	@if [ ! -f $(DATA)/manifest.json ]; then echo "[demo] generating the $(SCALE) catalog in $(DATA)/"; $(PY) -m pixelmatch_cli generate --scale $(SCALE) --out $(DATA); else echo "[demo] $(DATA)/ already holds a catalog (delete it to regenerate)"; fi
	@$(PY) -m pixelmatch_cli run --data $(DATA) --serving-dir $(SERVING_DIR) --pipeline-root $(PIPELINE_ROOT) $(RUN_FLAGS)
	@bash scripts/demo_serve.sh "$(PY)" "$(SERVING_DIR)" "$(PORT)" "$(PIPELINE_ROOT)/logs" "$(VERBOSE)"

test: install
	$(PY) -m pytest -q

test-all: install
	$(PY) -m pytest -q -m "slow or not slow"

lint: install
	$(VENV)/bin/ruff check .

benchmark: install
	$(PY) -m pixelmatch_cli benchmark --scale $(SCALE)

mlflow-ui: install
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlflow/mlflow.db --default-artifact-root mlflow/artifacts --host 127.0.0.1 --port 5000

kubeflow: install
	$(PY) -m pipelines.kubeflow_runner --data $(DATA) --output pipelines/kubeflow/pixelmatch_pipeline.json

clean:
	rm -rf pipeline_root serving_dir mlflow/mlflow.db mlflow/artifacts
