#!/usr/bin/env bash
# The web console's first paint of the server list with 100 real servers, in headless Chromium
# (bench/console.py). PEON_BIN picks the binaries (default: release, built here).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh" test
"$root/scripts/docker.sh" image
if [ -z "${PEON_BIN:-}" ]; then
  (cd "$root" && for p in peon-api peon-scheduler peon; do swift build -c release --product $p >/dev/null; done)
  export PEON_BIN=$root/.build/release
fi
python=$root/.build-venv/bin/python
[ -x "$python" ] || python=python3
"$python" "$root/bench/console.py"
