#!/usr/bin/env bash
# Real game benchmark: Luanti through Peon against `docker run` of the same image (bench/games.py).
# PEON_BIN=.build/debug skips the release build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh" bench
"$root/scripts/docker.sh"
"$root/scripts/base-image.sh"
if [ -z "${PEON_BIN:-}" ]; then
  (cd "$root" && for p in peon-api peon-scheduler peon; do swift build -c release --product $p >/dev/null; done)
fi
python=$root/.build-venv/bin/python
[ -x "$python" ] || python=python3
"$python" "$root/bench/games.py"
