#!/usr/bin/env bash
set -euo pipefail

HERE="$(cd "$(dirname "$0")/.." && pwd)"
STATE="$HERE/.state"
LOGS="$HERE/var/log"
mkdir -p "$STATE" "$LOGS"

PIDFILE="$STATE/api.pid"
LOGFILE="$LOGS/api.log"

if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "api is up already: $(cat "$PIDFILE")"
  exit 0
fi

PYTHON="$HERE/.venv/bin/python"
if [ ! -x "$PYTHON" ]; then
  PYTHON="$(command -v python3 || command -v python)"
fi

cd "$HERE/server"
nohup "$PYTHON" -m uvicorn app.main:app --reload --host 127.0.0.1 --port 8044 > "$LOGFILE" 2>&1 &
echo $! > "$PIDFILE"
echo "api up: $(cat "$PIDFILE") (log $LOGFILE)"
