#!/usr/bin/env bash
# Makes sure a Docker engine answers on $PEON_DOCKER_SOCKET (default /var/run/docker.sock):
# installs Debian's docker.io when dockerd is missing and starts dockerd when it is not running.
# With `image`, also builds the test game image (peon-test-game:latest) through the Engine API.
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
  if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "ok installed"; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends busybox-static >/dev/null
  fi
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  cp "$root"/Tests/fixtures/test-game/* "$ctx/"
  cp "$(command -v busybox)" "$ctx/busybox"
  labels=$(printf '{"peon.test":"image"}' | od -An -tx1 | tr -d ' \n' | sed 's/../%&/g')
  out=$(tar -C "$ctx" -c . | curl -sS --unix-socket "$socket" -X POST -H 'Content-Type: application/x-tar' --data-binary @- \
    "http://docker/build?t=peon-test-game:latest&rm=1&forcerm=1&labels=$labels")
  if grep -q '"error"' <<< "$out"; then echo "test image build failed: $out" >&2; exit 1; fi
  echo "built peon-test-game:latest" >&2
fi
