#!/bin/bash

HERE="$(cd "$(dirname "$0")" && pwd)"
RUNNING="$HERE/.running"

if [ ! -f "$RUNNING" ]; then
  echo "The board is not up."
  exit 0
fi

while read -r pid; do
  kill "$pid" 2>/dev/null && echo "halted $pid"
done < "$RUNNING"
rm -f "$RUNNING"
