# Sourced by the benchmarks that run Peon's release build: a Docker engine with the test game image,
# release binaries built as the Dockerfile builds them (PEON_BIN names others), and $python (the
# test venv's when there is one).
"$root/scripts/docker.sh" image
if [ -z "${PEON_BIN:-}" ]; then
  (cd "$root" && swift build -c release --static-swift-stdlib --scratch-path .build-static >/dev/null)
  export PEON_BIN=$root/.build-static/release
fi
python=$root/.build-venv/bin/python
[ -x "$python" ] || python=python3
