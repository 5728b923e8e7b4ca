#!/usr/bin/env bash
# Runs the whole stack in the foreground and keeps it up: peon-api (the FastCGI worker pool),
# peon-scheduler (the only process that drives Docker) and nginx. A process that exits unexpectedly
# is restarted after a back-off (1 s, doubling to 60 s, back to 1 s once it has run 5 minutes) while
# the others keep serving; only SIGTERM or Ctrl-C stop everything, cleanly. SIGHUP reloads nginx
# (`nginx -s reload`: new TLS certificate files, new workers; requests in flight finish on the old).
# Binaries come from $PEON_BIN (default .build/release).
set -euo pipefail
source "$(dirname "$0")/env.sh"
bin=${PEON_BIN:-$peon_root/.build/release}
conf=$("$peon_root/scripts/render-nginx.sh")
if [ "$(id -u)" -eq 0 ]; then
  export PEON_SOCKET_GROUP=${PEON_SOCKET_GROUP:-www-data}
  # The API workers drop root for this user (empty: stay root).
  export PEON_USER=${PEON_USER-peon}
  if [ -n "$PEON_USER" ] && [ "$PEON_USER" != root ] && ! id -u "$PEON_USER" >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PEON_USER"
  fi
fi

nginx -t -q -p "$PEON_DATA_DIR/nginx" -c "$conf" -e stderr

declare -A pid=() since=() delay=()
asked=0 sleeper=""
# SIGTERM, or Ctrl-C (SIGINT also reaches peon-api and peon-scheduler, which stop on it; nginx has
# a process group of its own and is stopped here).
trap 'asked=1' TERM INT
trap 'reload' HUP

reload() {
  if [ -n "${pid[nginx]:-}" ] && kill -HUP "${pid[nginx]}" 2>/dev/null; then
    echo "nginx reloading (SIGHUP): configuration and TLS certificate files are read again" >&2
  fi
}

start() {
  case $1 in
    peon-api | peon-scheduler) "$bin/$1" & ;;
    # Its own process group: when the master dies, its orphaned workers (holding the ports) go with it.
    nginx) setsid nginx -p "$PEON_DATA_DIR/nginx" -c "$conf" -e stderr -g 'daemon off;' & ;;
  esac
  pid[$1]=$!
  since[$1]=$SECONDS
}

stop() {
  trap - TERM INT HUP
  [ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null || true
  [ -n "${pid[nginx]:-}" ] && kill -QUIT "${pid[nginx]}" 2>/dev/null || true
  [ -n "${pid[peon-api]:-}" ] && kill -TERM "${pid[peon-api]}" 2>/dev/null || true
  [ -n "${pid[peon-scheduler]:-}" ] && kill -TERM "${pid[peon-scheduler]}" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "peon stopped" >&2
}

wait_for_socket() {
  for _ in $(seq 1 300); do
    [ -S "$PEON_SOCKET" ] && return 0
    kill -0 "${pid[peon-api]}" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

start peon-api
if ! wait_for_socket; then
  echo "peon-api did not open $PEON_SOCKET" >&2
  stop
  exit 1
fi
[ "$asked" -eq 1 ] && { stop; exit 0; }
# PEON_START_SCHEDULER=0 leaves the scheduler to someone else (tests that kill and restart it).
[ "${PEON_START_SCHEDULER:-1}" != 0 ] && start peon-scheduler
start nginx
http="HTTP :$PEON_HTTP_PORT redirects"
[ "${PEON_HTTP_MODE:-redirect}" = off ] && http="no plain HTTP"
echo "Peon is running: https://$PEON_BIND:$PEON_HTTPS_PORT/api/v1/orchestrator ($http; data in $PEON_DATA_DIR)"

# Supervise until a signal: restart whatever exits, with back-off.
while [ "$asked" -eq 0 ]; do
  exited="" status=0
  wait -n -p exited "${pid[@]}" || status=$?
  [ "$asked" -eq 1 ] && break
  # A trapped signal (SIGHUP) ends the wait with no pid, and wait -p then unsets the variable.
  [ -n "${exited:-}" ] || continue
  for name in "${!pid[@]}"; do
    [ "${pid[$name]}" = "$exited" ] || continue
    up=$((SECONDS - since[$name]))
    [ "$up" -ge 300 ] && delay[$name]=1
    d=${delay[$name]:-1}
    why="exit status $status"
    [ "$status" -gt 128 ] && why="killed by signal $((status - 128))"
    echo "$name exited unexpectedly ($why, after ${up} s); restarting in ${d} s" >&2
    [ "$name" = nginx ] && kill -KILL -- "-$exited" 2>/dev/null || true
    sleep "$d" &
    sleeper=$!
    # A SIGHUP ends the wait early; the back-off still runs its course (SIGTERM ends it in stop).
    while [ "$asked" -eq 0 ] && kill -0 "$sleeper" 2>/dev/null; do wait "$sleeper" || true; done
    sleeper=""
    delay[$name]=$((d * 2 > 60 ? 60 : d * 2))
    [ "$asked" -eq 1 ] && break
    start "$name"
  done
done
stop
exit 0
