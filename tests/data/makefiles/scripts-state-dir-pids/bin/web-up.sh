#!/usr/bin/env bash
set -euo pipefail

HERE="$(cd "$(dirname "$0")/.." && pwd)"
STATE="$HERE/.state"
LOGS="$HERE/var/log"
mkdir -p "$STATE" "$LOGS"

PIDFILE="$STATE/web.pid"
LOGFILE="$LOGS/web-vite.log"

if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "web is up already: $(cat "$PIDFILE")"
  exit 0
fi

cd "$HERE/web"
nohup npm run dev -- --host 127.0.0.1 > "$LOGFILE" 2>&1 &
echo $! > "$PIDFILE"
echo "web up: $(cat "$PIDFILE") (log $LOGFILE)"
