#!/usr/bin/env bash
# Installs what Peon needs on Debian 12, only what is missing. Usage: deps.sh run|test|bench
set -euo pipefail
want=(nginx-light libfcgi-dev libcurl4-openssl-dev libsqlite3-dev pkg-config openssl gettext-base ca-certificates)
case "${1:-run}" in
  test) want+=(fail2ban curl python3-venv) ;;
  bench) want+=(wrk curl) ;;
esac
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts the packaged nginx on port 80; Peon runs its own instance.
  if [[ " ${missing[*]} " == *" nginx-light "* ]]; then
    { $sudo systemctl disable --now nginx || $sudo service nginx stop || $sudo nginx -s quit; } >/dev/null 2>&1 || true
  fi
  if [[ " ${missing[*]} " == *" fail2ban "* ]]; then
    { $sudo systemctl disable --now fail2ban || $sudo service fail2ban stop; } >/dev/null 2>&1 || true
  fi
fi
command -v swift >/dev/null || { echo "swift is not on PATH: install a Swift 6 toolchain" >&2; exit 1; }
