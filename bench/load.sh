#!/usr/bin/env bash
# Reads while 32 slow stops hold their requests (bench/load.py): p99, errors, worker memory.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh" bench
"$root/scripts/docker.sh" image
(cd "$root" && for p in peon-api peon-scheduler peon; do swift build -c release --product $p >/dev/null; done)
python=$root/.build-venv/bin/python
[ -x "$python" ] || python=python3
"$python" "$root/bench/load.py"
