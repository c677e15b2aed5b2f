#!/usr/bin/env bash
set -euo pipefail

HERE="$(cd "$(dirname "$0")/.." && pwd)"
"$HERE/bin/web-down.sh"
sleep 1
"$HERE/bin/api-down.sh"
