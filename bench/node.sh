#!/usr/bin/env bash
# Node layer benchmark: Peon on a three-node netns swarm (node agents over mutual TLS) against Peon on
# this host, through the API, in the same run (bench/node.py). Debug binaries, as `make test` builds them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/docker.sh" image
(cd "$root" && swift build --build-tests >/dev/null)
"$root/scripts/image.sh" peon:test "$root/.build/debug" >/dev/null
python=$root/.build-venv/bin/python
[ -x "$python" ] || python=python3
PEON_BIN=${PEON_BIN:-$root/.build/debug} "$python" "$root/bench/node.py"
