#!/usr/bin/env bash
# Makes sure a Docker engine answers on $PEON_DOCKER_SOCKET (default /var/run/docker.sock):
# installs Debian's docker.io when dockerd is missing and starts dockerd when it is not running.
# With `image`, also builds the test game image (peon-test-game:latest) through the Engine API
# (static busybox and the RCON and UDP stand-ins, compiled with gcc: scripts/deps.sh test installs it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
socket=${PEON_DOCKER_SOCKET:-/var/run/docker.sock}
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
ping() { curl -sf --max-time 2 --unix-socket "$socket" http://docker/_ping >/dev/null 2>&1; }

if ! ping; then
  if ! command -v dockerd >/dev/null; then
    echo "installing docker.io" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends docker.io >/dev/null
  fi
  if ! ping; then
    echo "starting dockerd" >&2
    # Every game server has a bridge network of its own: Docker's default pools hold about 30,
    # so give it room for 1024 (/24 networks inside 172.20.0.0/14).
    $sudo sh -c 'nohup setsid dockerd --default-address-pool base=172.20.0.0/14,size=24 >/var/log/peon-dockerd.log 2>&1 &'
    for _ in $(seq 1 60); do ping && break; sleep 0.5; done
  fi
  ping || { echo "no Docker engine answers on $socket (see /var/log/peon-dockerd.log)" >&2; exit 1; }
fi

if [ "${1:-}" = image ]; then
  # busybox-static, and gcc with a static libc for the RCON stand-in.
  missing=()
  for p in busybox-static gcc libc6-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  cp "$root"/Tests/fixtures/test-game/* "$ctx/"
  cp "$(command -v busybox)" "$ctx/busybox"
  # The RCON stand-in, static like busybox (the image has no libc).
  gcc -static -Os -Wall -Werror -o "$ctx/peon-rcon" "$root/Tests/fixtures/test-game/rcon.c"
  rm "$ctx/rcon.c"
  # The UDP stand-in (A2S_INFO and an echo), static too.
  gcc -static -Os -Wall -Werror -o "$ctx/peon-udp" "$root/Tests/fixtures/test-game/udp.c"
  rm "$ctx/udp.c"
  # Also tagged :rcon, which the RCON tests use: a checkout whose script predates the stand-in
  # moves :latest only.
  labels=$(printf '{"peon.test":"image","peon.test.rcon":"1"}' | od -An -tx1 | tr -d ' \n' | sed 's/../%&/g')
  out=$(tar -C "$ctx" -c . | curl -sS --unix-socket "$socket" -X POST -H 'Content-Type: application/x-tar' --data-binary @- \
    "http://docker/build?t=peon-test-game:latest&t=peon-test-game:rcon&rm=1&forcerm=1&labels=$labels")
  if grep -q '"error"' <<< "$out"; then echo "test image build failed: $out" >&2; exit 1; fi
  echo "built peon-test-game:latest (and :rcon)" >&2
fi
