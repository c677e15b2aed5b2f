#!/bin/bash

HERE="$(cd "$(dirname "$0")" && pwd)"
RUNNING="$HERE/.running"

if [ -f "$RUNNING" ]; then
  echo "The board seems to be up. Run ./halt.sh first."
  exit 1
fi

# the API
cd "$HERE/api"
node index.js &
API_PID=$!

# the UI
cd "$HERE/ui"
npx vite --host &
UI_PID=$!

# one file, a PID a line
echo "$API_PID" > "$RUNNING"
echo "$UI_PID" >> "$RUNNING"

echo "board up: API $API_PID, UI $UI_PID"
