#!/usr/bin/env bash
# `make test`: install what the tests need, build, run the Swift tests (unit, and the Docker client
# against the real engine), a minute of fuzzing, then the integration tests against the real stack
# (nginx over TLS + peon-api + SQLite files).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/deps.sh test

venv=$root/.build-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv --system-site-packages "$venv"
fi
if ! "$venv/bin/python" -c 'import pytest, requests, yaml, openapi_spec_validator, schemathesis, jsonschema, prometheus_client' 2>/dev/null; then
  "$venv/bin/pip" install -q --disable-pip-version-check pytest requests pyyaml openapi-spec-validator schemathesis jsonschema prometheus-client
fi

# A real Docker engine (started here when it is not running) and the busybox test game image.
scripts/docker.sh image
# The base of Peon's runtime images (debian:bookworm-slim), made with mmdebstrap when missing.
scripts/base-image.sh

swift build --build-tests
swift test --skip-build
# A minute of fuzzing (the harness builds in .build-fuzz; `make fuzz` runs longer).
scripts/fuzz.sh 60
PEON_BIN=$root/.build/debug "$venv/bin/python" -m pytest -p no:cacheprovider -q Tests/integration "$@"
