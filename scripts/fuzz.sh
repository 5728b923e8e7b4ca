#!/usr/bin/env bash
# `make fuzz` (and `make test`, for 60 s): builds the libFuzzer harness (Fuzz/peon-fuzz) in its own
# scratch path and runs it for $1 seconds (default 300) from the seeds in Fuzz/seeds. A crash
# leaves its input in .build-fuzz/crashes/ and fails; turn it into a unit test, then fix.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${1:-300}
scratch=$root/.build-fuzz
PEON_FUZZ=1 swift build --scratch-path "$scratch" --product peon-fuzz -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library
mkdir -p "$scratch/corpus" "$scratch/crashes"
# -rss_limit_mb and -timeout turn runaway memory or a hang into a reported failure too. Swift's own
# crash backtracer would take the trap signal before libFuzzer could save the input: off here.
SWIFT_BACKTRACE=enable=no "$scratch/debug/peon-fuzz" -max_total_time="$seconds" -max_len=4096 -timeout=5 -rss_limit_mb=1024 \
  -dict=Fuzz/peon.dict -print_final_stats=1 -artifact_prefix="$scratch/crashes/" "$scratch/corpus" Fuzz/seeds
