#!/usr/bin/env bash
# Node layer benchmark: Peon on this host against Peon in its container (compose.yaml) and on a
# three-node netns swarm (node agents over mutual TLS), through the API, in alternating rounds of one
# run (bench/node.py). Release binaries built as the Dockerfile builds them (PEON_BIN overrides).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/docker.sh" image
if [ -z "${PEON_BIN:-}" ]; then
  (cd "$root" && swift build -c release --static-swift-stdlib --scratch-path .build-static >/dev/null)
  export PEON_BIN=$root/.build-static/release
fi
"$root/scripts/image.sh" peon:test "$PEON_BIN" >/dev/null
python=$root/.build-venv/bin/python
[ -x "$python" ] || python=python3
"$python" "$root/bench/node.py"
