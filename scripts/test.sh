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
if ! "$venv/bin/python" -c 'import pytest, requests, yaml, openapi_spec_validator, schemathesis, jsonschema, prometheus_client, selenium, cryptography' 2>/dev/null; then
  "$venv/bin/pip" install -q --disable-pip-version-check pytest requests pyyaml openapi-spec-validator schemathesis jsonschema prometheus-client selenium cryptography
fi

# A real Docker engine (started here when it is not running) and the busybox test game image.
scripts/docker.sh image
# The base of Peon's runtime images (debian:bookworm-slim), made with mmdebstrap when missing.
scripts/base-image.sh

swift build --build-tests
# Peon's own image from these binaries: its node agent runs on every Swarm node (loaded into each).
scripts/image.sh peon:test "$root/.build/debug" >/dev/null
# A real three-node Swarm (network namespaces, one dockerd each) for the Swarm platform's tests;
# removed when this script ends, whatever happens. test_swarm.py makes its own.
trap 'scripts/swarm-test.sh down >/dev/null 2>&1 || true' EXIT
scripts/swarm-test.sh up peon-test-game:latest peon-test-game:rcon peon:test >/dev/null
eval "$(scripts/swarm-test.sh env | sed 's/^/export /')"
swift test --skip-build
scripts/swarm-test.sh down
# A minute of fuzzing (the harness builds in .build-fuzz; `make fuzz` runs longer).
scripts/fuzz.sh 60
PEON_BIN=$root/.build/debug "$venv/bin/python" -m pytest -p no:cacheprovider -q Tests/integration "$@"
