#!/bin/bash
# Peon's runtime entry (docs/runtime.md). Runs as uid 1000 from the first second: everything that
# needs root happened when Peon built the image. Writes STARTED / OFFLINE / ERROR to
# ~/config/state, installs or updates the game with steamcmd when asked (steamcmd runtime), runs
# /actions/init_custom if present, then /actions/server_start in $GAME_DIR, forwarding SIGTERM so
# the game saves before it exits (from the first line on), and exits with the game's code.
set -u
export GAME_DIR=${GAME_DIR:-/home/steam/steamcmd/data}
config=/home/steam/config
state() { printf '%s\n' "$1" >"$config/state" 2>/dev/null || true; }
fail() { echo "peon: $1" >&2; state ERROR; exit 1; }

# SIGTERM is handled from the first line: docker-init (PID 1) signals only this script, so a stop
# that comes while steamcmd installs or the game starts must reach them (and a stop before the
# game started ends the script). Each step runs in the background so the trap fires at once.
child="" stopping=0
on_stop() {
  stopping=1
  [ -n "$child" ] && kill -TERM "$child" 2>/dev/null
}
trap on_stop TERM INT
# Runs a step as $child and waits for it, through any number of signals; its exit code.
step() {
  "$@" &
  child=$!
  local code
  while :; do
    wait "$child"
    code=$?
    # A trapped signal ends `wait` early (code > 128) while the step runs on: wait again.
    [ "$code" -gt 128 ] && kill -0 "$child" 2>/dev/null && continue
    break
  done
  child=""
  return "$code"
}
stopped() { [ "$stopping" -eq 1 ] && { state OFFLINE; exit 143; }; return 0; }

[ -d /actions ] || fail "/actions is not mounted"

# One datagram to the gateway, so the container's ARP request tells the host its address at
# once: a client that sent while the container started (a woken server's player) has left the
# host waiting for an ARP answer it asked too early, retried only after a second (the kernel's
# retrans_time). Nothing listens there; the egress rules drop it; the ARP exchange is the point.
while read -r _ destination gateway _; do
  if [ "$destination" = 00000000 ] && [[ "$gateway" =~ ^[0-9A-F]{8}$ ]]; then
    printf 'peon\n' 2>/dev/null >"/dev/udp/$((16#${gateway:6:2})).$((16#${gateway:4:2})).$((16#${gateway:2:2})).$((16#${gateway:0:2}))/9" || true
    break
  fi
done </proc/net/route
mkdir -p "$config" "$GAME_DIR" 2>/dev/null || true

if [ "${PEON_RUNTIME:-}" = steamcmd ]; then
  # PEON's rule: no /actions/.update (removed by `update`) or an empty game dir means install or
  # update now; /actions/.validate (update mode `validate`) adds a file-by-file check.
  if [ ! -e /actions/.update ] || [ -z "$(ls -A "$GAME_DIR" 2>/dev/null)" ]; then
    [[ "${STEAM_ID:-}" =~ ^[0-9]+$ ]] || fail "STEAM_ID must be a Steam app id"
    login=(+login anonymous)
    [ -n "${STEAM_USER:-}" ] && login=(+login "$STEAM_USER" "${STEAM_PASSWORD:-}")
    platform=()
    [ "${OS_TYPE:-}" = windows ] && platform=(+@sSteamCmdForcePlatformType windows)
    validate=()
    [ -e /actions/.validate ] && validate=(validate)
    step steamcmd "${platform[@]}" +force_install_dir "$GAME_DIR" "${login[@]}" +app_update "$STEAM_ID" "${validate[@]}" +quit \
      || { stopped; fail "steamcmd could not install app $STEAM_ID"; }
    touch /actions/.update || fail "cannot write /actions/.update"
    rm -f /actions/.validate
  fi
fi

if [ -f /actions/init_custom ]; then
  step bash /actions/init_custom || { stopped; fail "/actions/init_custom failed"; }
fi
stopped
[ -f /actions/server_start ] || fail "/actions/server_start is missing"

cd "$GAME_DIR" || fail "cannot enter $GAME_DIR"
state STARTED
# The game gets SIGTERM from on_stop (it saves and exits); its code is the container's.
code=0
step bash /actions/server_start || code=$?
if [ "$code" -eq 0 ] || [ "$code" -eq 143 ]; then state OFFLINE; else state ERROR; fi
exit "$code"
