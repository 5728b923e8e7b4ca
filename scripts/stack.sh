#!/usr/bin/env bash
# Runs the whole stack in the foreground: peon-api (the FastCGI worker pool), peon-scheduler (the
# only process that drives Docker) and nginx.
# SIGTERM or Ctrl-C stops both cleanly. Binaries come from $PEON_BIN (default .build/release).
set -euo pipefail
source "$(dirname "$0")/env.sh"
bin=${PEON_BIN:-$peon_root/.build/release}
conf=$("$peon_root/scripts/render-nginx.sh")
[ "$(id -u)" -eq 0 ] && export PEON_SOCKET_GROUP=${PEON_SOCKET_GROUP:-www-data}

nginx -t -q -p "$PEON_DATA_DIR/nginx" -c "$conf" -e stderr

api_pid="" nginx_pid="" scheduler_pid="" asked=0
stop() {
  trap - TERM INT
  [ -n "$nginx_pid" ] && kill -QUIT "$nginx_pid" 2>/dev/null || true
  [ -n "$api_pid" ] && kill -TERM "$api_pid" 2>/dev/null || true
  [ -n "$scheduler_pid" ] && kill -TERM "$scheduler_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "peon stopped" >&2
}
# SIGTERM, or Ctrl-C (SIGINT reaches the whole process group: nginx and the workers stop too).
trap 'asked=1' TERM INT

"$bin/peon-api" &
api_pid=$!
for _ in $(seq 1 300); do
  [ -S "$PEON_SOCKET" ] && break
  kill -0 "$api_pid" 2>/dev/null || { echo "peon-api exited during start" >&2; exit 1; }
  sleep 0.05
done
[ -S "$PEON_SOCKET" ] || { echo "peon-api did not open $PEON_SOCKET" >&2; stop; exit 1; }
[ "$asked" -eq 1 ] && { stop; exit 0; }

# PEON_START_SCHEDULER=0 leaves the scheduler to someone else (tests that kill and restart it).
if [ "${PEON_START_SCHEDULER:-1}" != 0 ]; then
  "$bin/peon-scheduler" &
  scheduler_pid=$!
fi

nginx -p "$PEON_DATA_DIR/nginx" -c "$conf" -e stderr -g 'daemon off;' &
nginx_pid=$!
echo "Peon is running: https://$PEON_BIND:$PEON_HTTPS_PORT/api/v1/orchestrator (HTTP :$PEON_HTTP_PORT redirects; data in $PEON_DATA_DIR)"

# Until a signal, or until either process exits, which takes the other down.
wait -n "$api_pid" "$nginx_pid" ${scheduler_pid:+"$scheduler_pid"} || true
stop
[ "$asked" -eq 1 ] && exit 0
echo "a Peon process exited unexpectedly" >&2
exit 1
