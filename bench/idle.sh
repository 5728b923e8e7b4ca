#!/usr/bin/env bash
# The scheduler at rest with a fleet of N running test servers (bench/idle.py): its CPU and memory.
# Release binaries built as the Dockerfile builds them (PEON_BIN overrides).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/docker.sh" image
if [ -z "${PEON_BIN:-}" ]; then
  (cd "$root" && swift build -c release --static-swift-stdlib --scratch-path .build-static >/dev/null)
  export PEON_BIN=$root/.build-static/release
fi
python=$root/.build-venv/bin/python
[ -x "$python" ] || python=python3
"$python" "$root/bench/idle.py"
