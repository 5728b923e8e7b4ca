#!/usr/bin/env bash
# The certificate of PEON_ACME_DOMAIN from an ACME server (Let's Encrypt unless PEON_ACME_SERVER),
# obtained and renewed by Debian's certbot: http-01 through nginx's plain HTTP port, which answers
# /.well-known/acme-challenge/ from $PEON_DATA_DIR/acme/webroot (scripts/render-nginx.sh). Glue
# only: certbot does the ACME work; this script runs it and, when it brought a new certificate,
# renders nginx's configuration again (the first one replaces the self-signed pair) and reloads
# nginx gracefully (requests in flight finish on the old workers).
#   acme.sh                  obtain, or renew when due (certbot's --keep-until-expiring), once
#   acme.sh --force-renewal  a new certificate now, due or not
#   acme.sh --loop           once now, then every 12 h (1 h after a failure); scripts/stack.sh runs this
# Settings are read from the environment and were validated by render-nginx.sh at the stack's start.
set -euo pipefail
source "$(dirname "$0")/env.sh"
domain=${PEON_ACME_DOMAIN:-}
[ -n "$domain" ] || { echo "acme: PEON_ACME_DOMAIN is not set" >&2; exit 2; }
acme=$PEON_DATA_DIR/acme
live=$acme/config/live/$domain
# Let's Encrypt's production directory unless told otherwise.
server=${PEON_ACME_SERVER:-https://acme-v02.api.letsencrypt.org/directory}
nginx_dir=$PEON_DATA_DIR/nginx
# The challenge files must be readable by nginx's workers (www-data when started as root); certbot
# keeps its keys 0600 whatever the umask.
umask 022

# The child being waited for (certbot, a sleep): a stop (SIGTERM) must not leave it behind, nor wait
# for an unreachable server's time-outs.
child=""
trap '[ -z "$child" ] || kill "$child" 2>/dev/null; exit 143' TERM INT
run() {
  local status=0
  "$@" &
  child=$!
  wait "$child" || status=$?
  child=""
  return "$status"
}

once() {
  local before after status=0 account=(--register-unsafely-without-email)
  [ -z "${PEON_ACME_EMAIL:-}" ] || account=(-m "$PEON_ACME_EMAIL")
  # certbot's live/ files are links into archive/: another target is another certificate.
  before=$(readlink -f "$live/fullchain.pem" 2>/dev/null || true)
  # Everything under the data dir (never /etc/letsencrypt): runs without root. The ACME server's
  # own TLS is checked against PEON_ACME_CA when set (a private ACME server), else the system's CAs.
  local ca=()
  [ -z "${PEON_ACME_CA:-}" ] || ca=("REQUESTS_CA_BUNDLE=$PEON_ACME_CA")
  mkdir -p "$acme/webroot"
  run env "${ca[@]}" certbot certonly --non-interactive --quiet --agree-tos "${account[@]}" \
    --server "$server" \
    --config-dir "$acme/config" --work-dir "$acme/work" --logs-dir "$acme/logs" \
    --webroot -w "$acme/webroot" --cert-name "$domain" -d "$domain" --keep-until-expiring "$@" || status=$?
  if [ "$status" -ne 0 ]; then
    echo "acme: no certificate for $domain from $server (certbot exit $status; $acme/logs/letsencrypt.log)" >&2
    return 1
  fi
  after=$(readlink -f "$live/fullchain.pem" 2>/dev/null || true)
  [ -n "$after" ] && [ "$after" != "$before" ] || return 0
  # A new certificate. The first one: nginx's configuration is rendered again to name certbot's
  # live/ files instead of the self-signed pair (renewals keep those paths: nothing to render, so
  # a run by hand with other settings cannot change the running configuration). Then a graceful reload.
  local what out
  what="$(openssl x509 -in "$live/cert.pem" -noout -serial -enddate | tr '\n' ' ')"
  if ! grep -qF "ssl_certificate $live/fullchain.pem;" "$nginx_dir/nginx.conf" 2>/dev/null \
      && ! "$peon_root/scripts/render-nginx.sh" >/dev/null; then
    echo "acme: new certificate for $domain, but nginx's configuration could not be rendered" >&2
    return 1
  fi
  # nginx's notices ("signal process started") only when the reload fails.
  if out=$(nginx -p "$nginx_dir" -c "$nginx_dir/nginx.conf" -e stderr -s reload 2>&1); then
    echo "acme: new certificate for $domain (${what% }); nginx reloaded" >&2
  else
    printf '%s\n' "$out" >&2
    echo "acme: new certificate for $domain (${what% }), but nginx could not be reloaded: it is read at its next start" >&2
  fi
}

case "${1:-}" in
  "") once ;;
  --force-renewal) once --force-renewal ;;
  --loop)
    while :; do
      wait_s=43200
      # A failure (server unreachable, challenge refused) is tried again sooner, within Let's
      # Encrypt's limit of 5 failed validations per hour.
      once || { wait_s=3600; echo "acme: trying again in 1 h" >&2; }
      run sleep "$wait_s"
    done
    ;;
  *) echo "usage: acme.sh [--force-renewal | --loop]" >&2; exit 64 ;;
esac
