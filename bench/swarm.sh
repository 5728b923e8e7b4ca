#!/usr/bin/env bash
# Swarm lifecycle benchmark: Peon on a three-node netns swarm against the Swarm API directly (bench/swarm.py).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/docker.sh" image
(cd "$root" && swift build --build-tests >/dev/null)
"$root/scripts/image.sh" peon:test "$root/.build/debug" >/dev/null   # Peon's image: the node agent
python=$root/.build-venv/bin/python
[ -x "$python" ] || python=python3
PEON_BIN=${PEON_BIN:-$root/.build/debug} "$python" "$root/bench/swarm.py"
