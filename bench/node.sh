#!/usr/bin/env bash
# Node layer benchmark: Peon on this host against Peon in its container (compose.yaml) and on a
# three-node netns swarm (node agents over mutual TLS), through the API, in alternating rounds of one
# run (bench/node.py). Release binaries built as the Dockerfile builds them (PEON_BIN overrides).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/bench/release.sh"
"$root/scripts/image.sh" peon:test "$PEON_BIN" >/dev/null
"$python" "$root/bench/node.py"
