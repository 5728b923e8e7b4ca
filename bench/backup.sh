#!/usr/bin/env bash
# Backup and restore of a 1 GiB folder through Peon against tar|zstd (bench/backup.py).
# PEON_BIN=.build/debug skips the release build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh" bench
# The test game image is shared by every checkout on this engine: built only when missing.
if ! curl -sf --unix-socket "${PEON_DOCKER_SOCKET:-/var/run/docker.sock}" http://docker/images/peon-test-game:latest/json >/dev/null; then
  "$root/scripts/docker.sh" image
fi
if [ -z "${PEON_BIN:-}" ]; then
  (cd "$root" && for p in peon-api peon-scheduler peon; do swift build -c release --product $p >/dev/null; done)
fi
python=$root/.build-venv/bin/python
[ -x "$python" ] || python=python3
"$python" "$root/bench/backup.py"
