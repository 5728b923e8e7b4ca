#!/bin/bash
# Peon's runtime entry (docs/runtime.md). Runs as uid 1000 from the first second: everything that
# needs root happened when Peon built the image. Writes STARTED / OFFLINE / ERROR to
# ~/config/state, installs or updates the game with steamcmd when asked (steamcmd runtime), runs
# /actions/init_custom if present, then /actions/server_start in $GAME_DIR, forwarding SIGTERM so
# the game saves before it exits, and exits with the game's code.
set -u
export GAME_DIR=${GAME_DIR:-/home/steam/steamcmd/data}
config=/home/steam/config
state() { printf '%s\n' "$1" >"$config/state" 2>/dev/null || true; }
fail() { echo "peon: $1" >&2; state ERROR; exit 1; }

[ -d /actions ] || fail "/actions is not mounted"
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
    steamcmd "${platform[@]}" +force_install_dir "$GAME_DIR" "${login[@]}" +app_update "$STEAM_ID" "${validate[@]}" +quit \
      || fail "steamcmd could not install app $STEAM_ID"
    touch /actions/.update || fail "cannot write /actions/.update"
    rm -f /actions/.validate
  fi
fi

if [ -f /actions/init_custom ]; then
  bash /actions/init_custom || fail "/actions/init_custom failed"
fi
[ -f /actions/server_start ] || fail "/actions/server_start is missing"

cd "$GAME_DIR" || fail "cannot enter $GAME_DIR"
state STARTED
bash /actions/server_start &
game=$!
# docker-init (PID 1) signals only this script: pass SIGTERM/SIGINT on and keep waiting.
trap 'kill -TERM "$game" 2>/dev/null' TERM INT
wait "$game"
code=$?
while kill -0 "$game" 2>/dev/null; do
  wait "$game"
  code=$?
done
if [ "$code" -eq 0 ] || [ "$code" -eq 143 ]; then state OFFLINE; else state ERROR; fi
exit "$code"
