#!/usr/bin/env bash
# Log follow to 16 SSE clients while reads run (bench/logs.py): delays, lines, read p99.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh" bench
"$root/scripts/docker.sh" image
"$root/scripts/base-image.sh"
(cd "$root" && for p in peon-api peon-scheduler peon; do swift build -c release --product $p >/dev/null; done)
python=$root/.build-venv/bin/python
[ -x "$python" ] || python=python3
"$python" "$root/bench/logs.py"
