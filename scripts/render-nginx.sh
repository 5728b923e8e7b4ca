#!/usr/bin/env bash
# Renders nginx/peon.conf.template into $PEON_DATA_DIR/nginx/, and makes a self-signed TLS pair
# when PEON_TLS_CERT/PEON_TLS_KEY are unset.
set -euo pipefail
source "$(dirname "$0")/env.sh"
export PEON_NGINX_DIR=$PEON_DATA_DIR/nginx
export PEON_DOCS_DIR=${PEON_DOCS_DIR:-$peon_root/docs}
export PEON_NGINX_WORKERS=${PEON_NGINX_WORKERS:-auto}
mkdir -p "$PEON_NGINX_DIR/tmp" "$PEON_NGINX_DIR/extra" "$PEON_LOG_DIR"

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
      echo "allow $n;"
    else
      echo "PEON_METRICS_ALLOW: not an address or CIDR: $n" >&2; exit 2
    fi
  done
  echo 'deny all;'
} > "$PEON_NGINX_DIR/metrics-allow.conf"

vars='${PEON_NGINX_USER} ${PEON_NGINX_WORKERS} ${PEON_NGINX_DIR} ${PEON_LOG_DIR} ${PEON_RATE_LIMIT} ${PEON_RATE_BURST} ${PEON_CONN_LIMIT}
${PEON_BIND} ${PEON_HTTP_PORT} ${PEON_HTTPS_PORT} ${PEON_TLS_CERT} ${PEON_TLS_KEY} ${PEON_SOCKET} ${PEON_DOCS_DIR}'
envsubst "$vars" < "$peon_root/nginx/peon.conf.template" > "$PEON_NGINX_DIR/nginx.conf"
echo "$PEON_NGINX_DIR/nginx.conf"
