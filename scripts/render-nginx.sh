#!/usr/bin/env bash
# Renders nginx/peon.conf.template into $PEON_DATA_DIR/nginx/, and makes a self-signed TLS pair
# when PEON_TLS_CERT/PEON_TLS_KEY are unset.
set -euo pipefail
source "$(dirname "$0")/env.sh"
export PEON_NGINX_DIR=$PEON_DATA_DIR/nginx
export PEON_DOCS_DIR=${PEON_DOCS_DIR:-$peon_root/docs}
export PEON_WEB_DIR=${PEON_WEB_DIR:-$peon_root/web}
export PEON_NGINX_WORKERS=${PEON_NGINX_WORKERS:-auto}
mkdir -p "$PEON_NGINX_DIR/tmp" "$PEON_NGINX_DIR/extra" "$PEON_LOG_DIR"

# PEON_ACME_DOMAIN: a certificate from an ACME server, obtained and renewed by certbot
# (scripts/acme.sh, run by stack.sh) through the plain HTTP port's /.well-known/acme-challenge/.
# nginx names certbot's files once they exist; until then the self-signed pair below, so nginx
# starts and its HTTP port can answer the first challenge (acme.sh renders again and reloads).
acme_domain=${PEON_ACME_DOMAIN:-}
acme_webroot=$PEON_DATA_DIR/acme/webroot
if [ -z "$acme_domain" ]; then
  # A setting that would do nothing is a mistake: say so rather than serve without it.
  for n in PEON_ACME_EMAIL PEON_ACME_SERVER PEON_ACME_CA; do
    [ -z "${!n:-}" ] || { echo "$n is set but PEON_ACME_DOMAIN is not: no certificate would be requested" >&2; exit 2; }
  done
else
  label='[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
  # One name, no wildcard (http-01 cannot prove one), no IP address (the last label has a letter).
  if ! [[ "$acme_domain" =~ ^($label\.)+$label$ && ${#acme_domain} -le 253 && "${acme_domain##*.}" =~ [A-Za-z] ]]; then
    echo "PEON_ACME_DOMAIN must be one domain name such as peon.example.com (no wildcard, no address): $acme_domain" >&2; exit 2
  fi
  if [ -n "${PEON_ACME_EMAIL:-}" ] && ! [[ "$PEON_ACME_EMAIL" =~ ^[A-Za-z0-9._%+-]+@($label\.)+[A-Za-z]{2,}$ ]]; then
    echo "PEON_ACME_EMAIL must be one e-mail address (the ACME server's expiry notices go there)" >&2; exit 2
  fi
  # The account key signs every request, but the orders and certificates would still travel in
  # clear: plain http:// only for a server on this host.
  url_path='(/[^[:space:]]*)?'
  if [ -n "${PEON_ACME_SERVER:-}" ] && ! [[ "$PEON_ACME_SERVER" =~ ^https://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(:[0-9]{1,5})?$url_path$ \
      || "$PEON_ACME_SERVER" =~ ^http://(127(\.[0-9]{1,3}){3}|localhost|\[::1\])(:[0-9]{1,5})?$url_path$ ]]; then
    echo "PEON_ACME_SERVER must be an ACME directory's https:// URL (http:// only on 127.0.0.1, [::1] or localhost): $PEON_ACME_SERVER" >&2; exit 2
  fi
  if [ -n "${PEON_ACME_CA:-}" ] && ! { [ -f "$PEON_ACME_CA" ] && [ -r "$PEON_ACME_CA" ] && openssl x509 -in "$PEON_ACME_CA" -noout 2>/dev/null; }; then
    echo "PEON_ACME_CA must be a readable PEM certificate file (the CA of the ACME server's own TLS): $PEON_ACME_CA" >&2; exit 2
  fi
  if [ -n "$PEON_TLS_CERT$PEON_TLS_KEY" ]; then
    echo "PEON_ACME_DOMAIN and PEON_TLS_CERT/PEON_TLS_KEY both name the certificate: set only one" >&2; exit 2
  fi
  if [ "${PEON_HTTP_MODE:-redirect}" = off ]; then
    echo "PEON_ACME_DOMAIN needs the plain HTTP port (PEON_HTTP_MODE redirect or serve): the ACME server checks the domain there (http-01)" >&2; exit 2
  fi
  if ! command -v certbot >/dev/null 2>&1; then
    echo "PEON_ACME_DOMAIN needs certbot (Debian: apt-get install certbot; scripts/deps.sh installs it when PEON_ACME_DOMAIN is set)" >&2; exit 2
  fi
  mkdir -p "$acme_webroot"
  live=$PEON_DATA_DIR/acme/config/live/$acme_domain
  if [ -s "$live/fullchain.pem" ] && [ -s "$live/privkey.pem" ]; then
    export PEON_TLS_CERT=$live/fullchain.pem PEON_TLS_KEY=$live/privkey.pem
  fi
fi

if [ -z "$PEON_TLS_CERT" ] || [ -z "$PEON_TLS_KEY" ]; then
  tls=$PEON_DATA_DIR/tls
  export PEON_TLS_CERT=$tls/cert.pem PEON_TLS_KEY=$tls/key.pem
  if [ ! -s "$PEON_TLS_CERT" ] || [ ! -s "$PEON_TLS_KEY" ]; then
    mkdir -p "$tls" && chmod 700 "$tls"
    san="DNS:localhost,IP:127.0.0.1"
    [ "$PEON_BIND" = 127.0.0.1 ] || [ "$PEON_BIND" = 0.0.0.0 ] || san="$san,IP:$PEON_BIND"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 -subj "/CN=peon" \
      -addext "subjectAltName=$san" -keyout "$PEON_TLS_KEY" -out "$PEON_TLS_CERT" 2>/dev/null
    echo "generated a self-signed TLS certificate: $PEON_TLS_CERT" >&2
  fi
fi

for n in PEON_RATE_LIMIT PEON_RATE_BURST PEON_CONN_LIMIT; do
  [[ "${!n}" =~ ^[1-9][0-9]{0,6}$ ]] || { echo "$n must be a whole number from 1 to 9999999" >&2; exit 2; }
done

# PEON_FILE_MAX: the files API's largest upload (bytes; the workers check it again).
export PEON_FILE_MAX=${PEON_FILE_MAX:-16777216}
[[ "$PEON_FILE_MAX" =~ ^[1-9][0-9]{0,7}$ ]] && [ "$PEON_FILE_MAX" -le 33554432 ] \
  || { echo "PEON_FILE_MAX must be a number of bytes from 1 to 33554432 (32 MiB)" >&2; exit 2; }

# PEON_TRUSTED_PROXIES: the proxies whose X-Forwarded-For names the client (CIDRs or addresses,
# comma- or space-separated). Unset, the header is ignored: a client cannot pick its address.
ipv4='((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])'
IFS=$', \t\n' read -ra proxies <<< "${PEON_TRUSTED_PROXIES:-}"
{
  for p in "${proxies[@]}"; do
    addr=${p%/*} bits=""
    [ "$addr" = "$p" ] || bits=${p#*/}
    if [[ "$addr" =~ ^$ipv4$ ]]; then max=32
    elif [[ "$addr" =~ ^[0-9A-Fa-f:.]+$ && "$addr" == *:*:* ]]; then max=128
    else echo "PEON_TRUSTED_PROXIES: not an IP address or CIDR: $p" >&2; exit 2; fi
    if [ -n "$bits" ] || [ "$addr" != "$p" ]; then
      [[ "$bits" =~ ^[0-9]{1,3}$ ]] && [ "$bits" -le "$max" ] || { echo "PEON_TRUSTED_PROXIES: bad prefix length: $p" >&2; exit 2; }
      # Trusting every address would let any client name its own.
      [ "$bits" -gt 0 ] || { echo "PEON_TRUSTED_PROXIES: $p trusts every address; name the proxies" >&2; exit 2; }
    fi
    echo "set_real_ip_from $p;"
  done
} > "$PEON_NGINX_DIR/realip.conf"
if [ -s "$PEON_NGINX_DIR/realip.conf" ]; then
  # Recursive: the rightmost address not of a trusted proxy, so a client's own X-Forwarded-For
  # entries in front of it are skipped.
  printf 'real_ip_header X-Forwarded-For;\nreal_ip_recursive on;\n' >> "$PEON_NGINX_DIR/realip.conf"
fi

# PEON_HTTP_MODE, on PEON_HTTP_BIND (default PEON_BIND) and PEON_HTTP_PORT:
# - redirect: a 308 to HTTPS, which keeps the method and body (Python requests resends a PUT's body);
# - serve: the API and the console in plain HTTP, for clients on this host or a private network
#   (PEON's own web UI and bot talk to their orchestrator this way): only on a loopback or private
#   address, never on every interface;
# - off: no plain HTTP listener.
http_bind=${PEON_HTTP_BIND:-$PEON_BIND}
# ACME http-01 (PEON_ACME_DOMAIN): the challenge tokens certbot writes, in both modes; nothing else
# of that folder (no listing, no other path).
acme_location=""
if [ -n "$acme_domain" ]; then
  acme_location="    location ^~ /.well-known/acme-challenge/ { root $acme_webroot; default_type text/plain; try_files \$uri =404; }
"
fi
# A 308 to HTTPS on one address.
redirect_server() {
  cat <<CONF
server {
    listen $1:$PEON_HTTP_PORT;
$acme_location    location / { return 308 https://\$host:$PEON_HTTPS_PORT\$request_uri; }
}
CONF
}
case "${PEON_HTTP_MODE:-redirect}" in
  redirect) redirect_server "$http_bind" > "$PEON_NGINX_DIR/http.conf" ;;
  serve)
    o='(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
    if [[ "$http_bind" =~ ^(127\.$o|10\.$o|172\.(1[6-9]|2[0-9]|3[01])|192\.168)\.$o\.$o$ ]] \
      || [ "$http_bind" = "::1" ] || [ "$http_bind" = "[::1]" ] || [[ "$http_bind" =~ ^\[?[fF][cdCD][0-9a-fA-F:]*\]?$ ]]; then
      {
        cat <<CONF
server {
    listen $http_bind:$PEON_HTTP_PORT;
$acme_location    include $PEON_NGINX_DIR/api.conf;
}
CONF
        # Served on a private address of its own (compose.yaml's clients network): the HTTP port
        # on PEON_BIND goes on redirecting everyone else to HTTPS.
        if [ "$http_bind" != "$PEON_BIND" ]; then redirect_server "$PEON_BIND"; fi
      } > "$PEON_NGINX_DIR/http.conf"
    else
      echo "PEON_HTTP_MODE=serve answers in plain HTTP: only on a loopback or private address (PEON_HTTP_BIND or PEON_BIND is $http_bind)" >&2
      exit 2
    fi
    ;;
  off) : > "$PEON_NGINX_DIR/http.conf" ;;
  *) echo "PEON_HTTP_MODE must be redirect, serve or off" >&2; exit 2 ;;
esac

# Headers of every HTTPS answer, nginx's own errors included. HSTS: PEON_HSTS_MAX_AGE seconds, 0 off.
hsts=${PEON_HSTS_MAX_AGE:-31536000}
[[ "$hsts" =~ ^[0-9]{1,9}$ ]] || { echo "PEON_HSTS_MAX_AGE must be a whole number of seconds (0 turns HSTS off)" >&2; exit 2; }
{
  echo 'add_header X-Content-Type-Options nosniff always;'
  echo 'add_header Cache-Control no-store always;'
  [ "$hsts" -eq 0 ] || echo "add_header Strict-Transport-Security \"max-age=$hsts\" always;"
} > "$PEON_NGINX_DIR/headers.conf"
# CORS preflights, answered by nginx (rewrite phase: before limit_req, never reaching a worker):
# included by /api/v1/ and by the files API's nested location, which does not inherit an `if`.
cat > "$PEON_NGINX_DIR/preflight.conf" <<CONF
if (\$request_method = OPTIONS) {
    add_header Access-Control-Allow-Origin \$peon_cors_origin always;
    add_header Access-Control-Allow-Methods "GET, POST, PUT, DELETE, OPTIONS" always;
    add_header Access-Control-Allow-Headers "X-Api-Key, Content-Type" always;
    add_header Access-Control-Max-Age 600 always;
    add_header Vary Origin always;
    include $PEON_NGINX_DIR/headers.conf;
    return 204;
}
CONF
# The console's page and files: the same, and a policy that lets it run only its own script and
# style and talk only to this origin (no inline code, no frame, no other host).
{
  cat "$PEON_NGINX_DIR/headers.conf"
  echo "add_header Content-Security-Policy \"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\" always;"
  echo 'add_header Referrer-Policy no-referrer always;'
  echo 'add_header X-Frame-Options DENY always;'
} > "$PEON_NGINX_DIR/console-headers.conf"

# nginx drops to www-data when started as root; the API socket is then group www-data.
export PEON_NGINX_USER=""
if [ "$(id -u)" -eq 0 ]; then PEON_NGINX_USER="user www-data www-data;"; fi

{
  echo 'map $http_origin $peon_cors_origin {'
  if [ "$PEON_CORS_ORIGINS" = "*" ]; then
    echo '    default "*";'
  else
    echo '    default "";'
    IFS=',' read -ra origins <<< "$PEON_CORS_ORIGINS"
    for o in "${origins[@]}"; do
      o=$(echo "$o" | tr -d '[:space:]')
      [ -z "$o" ] && continue
      [[ "$o" =~ ^https?://[A-Za-z0-9.-]+(:[0-9]+)?$ ]] || { echo "PEON_CORS_ORIGINS: not an origin: $o" >&2; exit 2; }
      echo "    \"$o\" \$http_origin;"
    done
  fi
  echo '}'
} > "$PEON_NGINX_DIR/cors.conf"

# /metrics: loopback always, plus PEON_METRICS_ALLOW (comma-separated addresses or CIDRs), nobody else.
# A prefix shorter than /8 (either family; /0 is everyone) is refused: it opens the server's
# counters and names to much of the Internet, which is never what a scraper's network needs.
{
  echo 'allow 127.0.0.0/8;'
  echo 'allow ::1;'
  IFS=',' read -ra nets <<< "${PEON_METRICS_ALLOW:-}"
  for n in "${nets[@]}"; do
    n=$(echo "$n" | tr -d '[:space:]')
    [ -z "$n" ] && continue
    octet='(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
    if [[ "$n" =~ ^$octet(\.$octet){3}(/(3[0-2]|[12]?[0-9]))?$ ]] \
      || [[ "$n" =~ ^[0-9A-Fa-f:]*:[0-9A-Fa-f:]*(/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))?$ && ${#n} -le 43 ]]; then
      if [[ "$n" == */* ]] && [ "$((10#${n#*/}))" -lt 8 ]; then
        echo "PEON_METRICS_ALLOW: $n lets (nearly) everyone read /metrics; name the scrapers' networks (/8 or longer)" >&2; exit 2
      fi
      echo "allow $n;"
    else
      echo "PEON_METRICS_ALLOW: not an address or CIDR: $n" >&2; exit 2
    fi
  done
  echo 'deny all;'
} > "$PEON_NGINX_DIR/metrics-allow.conf"

vars='${PEON_NGINX_USER} ${PEON_NGINX_WORKERS} ${PEON_NGINX_DIR} ${PEON_LOG_DIR} ${PEON_RATE_LIMIT} ${PEON_RATE_BURST} ${PEON_CONN_LIMIT}
${PEON_BIND} ${PEON_HTTP_PORT} ${PEON_HTTPS_PORT} ${PEON_TLS_CERT} ${PEON_TLS_KEY} ${PEON_SOCKET} ${PEON_DOCS_DIR} ${PEON_FILE_MAX} ${PEON_WEB_DIR}'
envsubst "$vars" < "$peon_root/nginx/api.conf.template" > "$PEON_NGINX_DIR/api.conf"
envsubst "$vars" < "$peon_root/nginx/peon.conf.template" > "$PEON_NGINX_DIR/nginx.conf"
echo "$PEON_NGINX_DIR/nginx.conf"
