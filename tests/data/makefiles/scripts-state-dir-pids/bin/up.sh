#!/usr/bin/env bash
set -euo pipefail

HERE="$(cd "$(dirname "$0")/.." && pwd)"
"$HERE/bin/api-up.sh"
sleep 1
"$HERE/bin/web-up.sh"
