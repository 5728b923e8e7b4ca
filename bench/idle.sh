#!/usr/bin/env bash
# The scheduler at rest with a fleet of N running test servers (bench/idle.py): its CPU and memory.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/bench/release.sh"
"$python" "$root/bench/idle.py"
