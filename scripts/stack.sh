#!/usr/bin/env bash
# Runs the whole stack in the foreground and keeps it up: peon-api (the FastCGI worker pool),
# peon-scheduler (the only process that drives Docker) and nginx. A process that exits unexpectedly
# is restarted after a back-off (1 s, doubling to 60 s, back to 1 s once it has run 5 minutes) while
# the others keep serving; only SIGTERM or Ctrl-C stop everything, cleanly (each child waited for,
# killed after 30 s; more signals do not cut the stop short). SIGHUP reloads nginx
# (`nginx -s reload`: new TLS certificate files, new workers; requests in flight finish on the old).
# With PEON_ACME_DOMAIN, scripts/acme.sh runs beside them (certbot: the certificate obtained in the
# background, renewed every 12 h, nginx reloaded after each new one), supervised and stopped the same
# way; an ACME server that cannot be reached never holds the stack's start.
# Binaries come from $PEON_BIN (default .build/release).
#
# PEON_SCHEDULER_GROUPS (set by scripts/container.sh, which runs this script as peon with only
# CAP_SETGID and CAP_SETPCAP): every child runs as this script's user through setpriv, with no
# capability, and only peon-scheduler with these extra groups (the Docker socket's, root on the
# host); nginx and the API workers, which face the network, get none.
set -euo pipefail
source "$(dirname "$0")/env.sh"
bin=${PEON_BIN:-$peon_root/.build/release}
drop=() with_socket=()
if [ -n "${PEON_SCHEDULER_GROUPS:-}" ]; then
  priv=(setpriv --reuid="$(id -u)" --regid="$(id -g)" --no-new-privs --inh-caps=-all --bounding-set=-all)
  drop=("${priv[@]}" --clear-groups)
  with_socket=("${priv[@]}" --groups="$PEON_SCHEDULER_GROUPS")
fi
conf=$("${drop[@]}" "$peon_root/scripts/render-nginx.sh")
if [ "$(id -u)" -eq 0 ]; then
  export PEON_SOCKET_GROUP=${PEON_SOCKET_GROUP:-www-data}
  # The API workers drop root for this user (empty: stay root).
  export PEON_USER=${PEON_USER-peon}
  if [ -n "$PEON_USER" ] && [ "$PEON_USER" != root ] && ! id -u "$PEON_USER" >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PEON_USER"
  fi
fi

"${drop[@]}" nginx -t -q -p "$PEON_DATA_DIR/nginx" -c "$conf" -e stderr

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
    peon-api) "${drop[@]}" "$bin/$1" & ;;
    peon-scheduler) "${with_socket[@]}" "$bin/$1" & ;;
    # Its own process group: when the master dies, its orphaned workers (holding the ports) go with it.
    nginx) setsid "${drop[@]}" nginx -p "$PEON_DATA_DIR/nginx" -c "$conf" -e stderr -g 'daemon off;' & ;;
    # As nginx's configuration was rendered: no group, no capability (it only runs certbot and
    # reloads nginx, both as this user).
    acme) "${drop[@]}" "$peon_root/scripts/acme.sh" --loop & ;;
  esac
  pid[$1]=$!
  since[$1]=$SECONDS
}

# Tells every child to stop and waits for each; what outlives the grace period is killed.
stop() {
  # Signals are only recorded from here on: make sends TERM to its process group and forwards one
  # more to this script, and a script ended by the second would leave nginx (a session of its own)
  # holding the ports.
  trap 'asked=1' TERM INT
  trap '' HUP
  [ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null || true
  local n=${pid[nginx]:-} p timer grace=30
  local children=() group=()
  [ -z "$n" ] || group=("-$n")
  for p in "${pid[@]}"; do children+=("$p"); done
  # nginx by its group too: a master that died leaves workers that still hold the ports.
  [ -z "$n" ] || kill -QUIT -- "$n" "${group[@]}" 2>/dev/null || true
  for p in "${pid[peon-api]:-}" "${pid[peon-scheduler]:-}" "${pid[acme]:-}"; do
    [ -z "$p" ] || kill -TERM "$p" 2>/dev/null || true
  done
  sleep "$grace" &
  timer=$!
  for p in "${children[@]}"; do
    # A trapped signal ends a wait early: wait again until the child is gone.
    while kill -0 "$p" 2>/dev/null; do
      wait -n "$p" ${timer:+"$timer"} 2>/dev/null || true
      if [ -n "$timer" ] && ! kill -0 "$timer" 2>/dev/null; then
        echo "still running after $grace s: killing what is left" >&2
        kill -KILL -- "${children[@]}" "${group[@]}" 2>/dev/null || true
        timer=""
      fi
    done
  done
  [ -z "$timer" ] || kill "$timer" 2>/dev/null || true
  # Workers of a master that died before the stop.
  [ -z "$n" ] || kill -KILL -- "${group[@]}" 2>/dev/null || true
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
# After nginx: the ACME server's challenge comes to its HTTP port.
[ -z "${PEON_ACME_DOMAIN:-}" ] || start acme
http="HTTP :$PEON_HTTP_PORT redirects"
[ "${PEON_HTTP_MODE:-redirect}" = off ] && http="no plain HTTP"
[ "${PEON_HTTP_MODE:-redirect}" = serve ] && http="HTTP :$PEON_HTTP_PORT serves the API on ${PEON_HTTP_BIND:-$PEON_BIND}"
echo "Peon is running: open https://$PEON_BIND:$PEON_HTTPS_PORT/ in a browser (the console; log in with a key); the API is under /api/v1 ($http; data in $PEON_DATA_DIR)"

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
