#!/usr/bin/env bash
# Installs what Peon needs on Debian 12, only what is missing. Usage: deps.sh run|test|bench
set -euo pipefail
# Commands, each with the package that provides it; then libraries by package.
commands=(nginx:nginx-light openssl:openssl envsubst:gettext-base pkg-config:pkg-config curl:curl)
# tzdata: the zones of cron schedules (/usr/share/zoneinfo).
libraries=(libfcgi-dev libcurl4-openssl-dev libsqlite3-dev libarchive-dev libssl-dev ca-certificates tzdata)
# certbot obtains and renews the certificate of PEON_ACME_DOMAIN (scripts/acme.sh): only when it is set.
if [ -n "${PEON_ACME_DOMAIN:-}" ]; then commands+=(certbot:certbot); fi
case "${1:-run}" in
  # The service tests: unit verification, the units' users and capabilities, a private dockerd's netns;
  # mmdebstrap makes the Debian base image of the runtime images; docker-compose (1.29) runs compose.yaml;
  # docker-registry is the test swarm's registry (runtime images reach the nodes through it).
  # gcc and libc6-dev (static libc) build the test game's RCON stand-in (scripts/docker.sh image).
  # chromium and its driver: the console's tests drive a real headless browser (Selenium).
  # certbot against pebble, a real ACME server (and its mock DNS, pebble-challtestsrv): test_acme.py.
  test) commands+=(certbot:certbot pebble:pebble pebble-challtestsrv:pebble fail2ban-regex:fail2ban mmdebstrap:mmdebstrap systemd-analyze:systemd setpriv:util-linux nsenter:util-linux ip:iproute2 docker-compose:docker-compose gcc:gcc docker-registry:docker-registry chromium:chromium chromedriver:chromium-driver)
    libraries+=(libc6-dev) ;;
  bench) commands+=(wrk:wrk zstd:zstd) ;;
esac
missing=()
for pair in "${commands[@]}"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
for p in "${libraries[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${1:-run}" = test ] && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then missing+=(python3-venv); fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts packaged services; Peon runs its own nginx and only uses fail2ban's tools in tests.
  for service in nginx fail2ban docker-registry; do
    if [[ " ${missing[*]} " == *" $service"* ]]; then
      { $sudo systemctl disable --now "$service" || $sudo service "$service" stop; } >/dev/null 2>&1 || true
    fi
  done
fi
command -v swift >/dev/null || { echo "swift is not on PATH: install a Swift 6 toolchain" >&2; exit 1; }
