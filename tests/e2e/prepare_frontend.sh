#!/usr/bin/env bash
# Install the e2e fixture frontend's node_modules once, into a cache the tests reuse.
#
#   tests/e2e/prepare_frontend.sh        -> prints the cache folder (it holds node_modules/)
#
# The cache lives in $E2E_FRONTEND_CACHE (default: <repo>/.cache/e2e-frontend, git-ignored),
# one folder per key: a hash of package-lock.json, package.json, the Node.js major version
# and the machine (esbuild ships a per-platform binary). `npm ci` runs only when that folder
# is missing; it is built under a temporary name and renamed when complete, so an interrupted
# run never leaves a half-filled cache behind. Old keys are removed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
src="$here/project/frontend"
cache="${E2E_FRONTEND_CACHE:-$root/.cache/e2e-frontend}"

command -v node >/dev/null 2>&1 || { echo "prepare_frontend: node not found" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "prepare_frontend: npm not found" >&2; exit 1; }

node_major="$(node -p 'process.versions.node.split(".")[0]')"
key="$( { cat "$src/package-lock.json" "$src/package.json"; echo "node$node_major $(uname -sm)"; } \
        | sha256sum | cut -c1-16)"
dest="$cache/$key"

if [ -f "$dest/.complete" ] && [ -d "$dest/node_modules" ]; then
    echo "$dest"
    exit 0
fi

mkdir -p "$cache"
tmp="$(mktemp -d "$cache/.tmp.XXXXXX")"
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
cp "$src/package.json" "$src/package-lock.json" "$tmp/"
echo "prepare_frontend: npm ci into $dest (once per package-lock.json)" >&2
( cd "$tmp" && npm ci --no-audit --no-fund --loglevel=error >&2 )
touch "$tmp/.complete"
# Drop other keys (stale locks), then publish this one atomically.
find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name '.tmp.*' ! -name "$key" -exec rm -rf {} +
if ! mv -T "$tmp" "$dest" 2>/dev/null; then
    # Another run published it first: keep theirs.
    [ -f "$dest/.complete" ] || { echo "prepare_frontend: could not publish $dest" >&2; exit 1; }
fi
trap - EXIT
rm -rf "$tmp"
echo "$dest"
