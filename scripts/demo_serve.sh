#!/usr/bin/env bash
# Start the server in the background, print its URL the moment /ready answers 200, then stay in the foreground.
# Server output (TF start-up notices, uvicorn) goes to a log file; VERBOSE=1 shows it here too.
set -uo pipefail
PY="$1"; SERVING_DIR="$2"; PORT="$3"; LOG_DIR="$4"; VERBOSE="${5:-}"
mkdir -p "$LOG_DIR"
LOG="$LOG_DIR/serve-$(date +%Y%m%d-%H%M%S).log"
start=$(date +%s)
"$PY" -m pixelmatch_cli serve --serving-dir "$SERVING_DIR" --port "$PORT" >"$LOG" 2>&1 &
server=$!
if [ -n "$VERBOSE" ]; then tail -n +1 -f --pid="$server" "$LOG" & fi
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null' INT TERM EXIT
echo "[demo] starting the server (log: $LOG)"
until "$PY" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/ready', timeout=2)" 2>/dev/null; do
  if ! kill -0 "$server" 2>/dev/null; then
    echo "[demo] the server exited before it was ready; last lines of $LOG:" >&2
    tail -n 20 "$LOG" >&2
    exit 1
  fi
  sleep 1
done
echo "[demo] ready in $(( $(date +%s) - start ))s: http://127.0.0.1:$PORT/  (API docs: http://127.0.0.1:$PORT/docs; Ctrl-C stops it)"
wait "$server"
