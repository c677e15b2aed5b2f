#!/usr/bin/env bash
set -euo pipefail

HERE="$(cd "$(dirname "$0")/.." && pwd)"
PIDFILE="$HERE/.state/web.pid"

if [ -f "$PIDFILE" ]; then
  PID=$(cat "$PIDFILE")
  if kill -0 "$PID" 2>/dev/null; then
    kill "$PID" || true
    sleep 1
    if kill -0 "$PID" 2>/dev/null; then
      kill -9 "$PID" || true
    fi
  fi
  rm -f "$PIDFILE"
else
  pids=$(lsof -tiTCP:5190 -sTCP:LISTEN -n -P 2>/dev/null || true)
  if [ -n "$pids" ]; then
    kill -9 $pids || true
  fi
fi
