#!/bin/bash
# The API and the UI together; Ctrl+C stops both.

ROOT="$(cd "$(dirname "$0")" && pwd)"

cleanup() {
  kill "$API_PID" "$UI_PID" 2>/dev/null
  exit 0
}
trap cleanup INT TERM

start_api() {
  cd "$ROOT/api"
  source "$ROOT/venv/bin/activate"
  uvicorn service:app --reload --port 8077 &
  API_PID=$!
}

echo "API..."
start_api

echo "UI..."
cd "$ROOT/ui"
npm run dev &
UI_PID=$!

wait
