# Sourced by the other scripts: Peon's configuration defaults (README, "Configuration").
peon_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
abs() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "${1#./}" ;; esac; }

export PEON_DATA_DIR=$(abs "${PEON_DATA_DIR:-./var}")
export PEON_BIND=${PEON_BIND:-127.0.0.1}
export PEON_HTTPS_PORT=${PEON_HTTPS_PORT:-8443}
export PEON_HTTP_PORT=${PEON_HTTP_PORT:-8080}
export PEON_SOCKET=${PEON_SOCKET:-$PEON_DATA_DIR/run/api.sock}
export PEON_TLS_CERT=${PEON_TLS_CERT:-}
export PEON_TLS_KEY=${PEON_TLS_KEY:-}
export PEON_CORS_ORIGINS=${PEON_CORS_ORIGINS:-}
export PEON_RATE_LIMIT=${PEON_RATE_LIMIT:-20}
export PEON_RATE_BURST=${PEON_RATE_BURST:-40}
export PEON_CONN_LIMIT=${PEON_CONN_LIMIT:-32}
export PEON_BUNDLED_PLANS=${PEON_BUNDLED_PLANS:-$peon_root/plans}
export PEON_LOG_DIR=${PEON_LOG_DIR:-$PEON_DATA_DIR/log}
export PEON_IMAGES_DIR=${PEON_IMAGES_DIR:-$peon_root/images}
