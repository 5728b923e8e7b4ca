#!/usr/bin/env bash
# `make run`: install what is missing, build, and run the stack in the foreground.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh" run
"$root/scripts/docker.sh"
(cd "$root" && swift build -c release --product peon-api && swift build -c release --product peon-scheduler && swift build -c release --product peon)
exec "$root/scripts/stack.sh"
