#!/usr/bin/env bash
# The API, the chat relay and the site together, each line prefixed; one Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."

trap 'kill 0' EXIT INT TERM

(uv run uvicorn svc.main:app --port 8093 --reload 2>&1 | sed 's/^/[api]  /') &
uv run python -m svc.chat.relay &
( cd site && npm run dev ) &
wait
