#!/usr/bin/env bash
# API throughput and latency through nginx over HTTPS, against nginx serving a static file of the
# same size in the same run (the floor), plus worker memory. Usage: bench/run.sh [seconds] [connections]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
duration=${1:-10}
connections=${2:-32}
workers=${PEON_WORKERS:-2}
"$root/scripts/deps.sh" bench
"$root/scripts/docker.sh"
(cd "$root" && for p in peon-api peon-scheduler peon; do swift build -c release --product $p >/dev/null; done)

dir=$(mktemp -d /tmp/peon-bench-XXXXXX)
chmod 755 "$dir"
key="bench-key-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
hport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export PEON_DATA_DIR=$dir/var PEON_HTTPS_PORT=$port PEON_HTTP_PORT=$hport PEON_API_KEY=$key PEON_WORKERS=$workers
export PEON_BIN=$root/.build/release PEON_RATE_LIMIT=1000000 PEON_RATE_BURST=1000000
mkdir -p "$PEON_DATA_DIR/nginx/extra" "$dir/static"
echo "location /bench-static/ { alias $dir/static/; default_type application/json; }" > "$PEON_DATA_DIR/nginx/extra/bench.conf"

"$root/scripts/stack.sh" > "$dir/stack.log" 2>&1 &
stack=$!
trap 'kill -TERM $stack 2>/dev/null; wait $stack 2>/dev/null; rm -rf "$dir"' EXIT
base=https://127.0.0.1:$port
for _ in $(seq 1 100); do curl -sk -o /dev/null "$base/api/v1/orchestrator" && break; sleep 0.1; done

# Static files with exactly the bytes the API returns, so the floor moves the same payload.
for ep in orchestrator plans; do
  curl -sk -H "X-Api-Key: $key" "$base/api/v1/$ep" > "$dir/static/$ep.json"
done

run() {  # name url [header]
  local out
  if [ -n "${3:-}" ]; then
    out=$(wrk -t2 -c"$connections" -d"${duration}s" --latency -H "$3" "$2")
  else
    out=$(wrk -t2 -c"$connections" -d"${duration}s" --latency "$2")
  fi
  local rps p50 p99 errors
  rps=$(awk '/^Requests\/sec/ {print $2}' <<< "$out")
  p50=$(awk '$1=="50%" {print $2}' <<< "$out")
  p99=$(awk '$1=="99%" {print $2}' <<< "$out")
  errors=$(awk '/Non-2xx/ {print $5} /Socket errors/ {print "sock:" $0}' <<< "$out" | tr '\n' ' ')
  printf '%-34s %10s %10s %10s %s\n' "$1" "$rps" "$p50" "$p99" "${errors:-}"
  eval "rps_$4=$rps"
}

echo "wrk -t2 -c$connections -d${duration}s, HTTPS (TLS 1.3, HTTP/1.1 keep-alive), $workers workers, $(nproc) cores"
printf '%-34s %10s %10s %10s\n' "endpoint" "req/s" "p50" "p99"
run "static floor, orchestrator size ($(stat -c %s "$dir/static/orchestrator.json") B)" "$base/bench-static/orchestrator.json" "" so
run "GET /api/v1/orchestrator" "$base/api/v1/orchestrator" "X-Api-Key: $key" o
run "static floor, plans size ($(stat -c %s "$dir/static/plans.json") B)" "$base/bench-static/plans.json" "" sp
run "GET /api/v1/plans" "$base/api/v1/plans" "X-Api-Key: $key" p
python3 -c "print(f'ratio API/static: orchestrator {float($rps_o)/float($rps_so):.2f}, plans {float($rps_p)/float($rps_sp):.2f}')"

api=$(pgrep -f -P "$stack" peon-api | head -1)
for pid in $(pgrep -P "$api"); do
  echo "worker $pid RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
done
echo "supervisor RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$api/status)"
