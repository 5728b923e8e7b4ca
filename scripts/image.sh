#!/usr/bin/env bash
# Builds Peon's container image from binaries built on this host (the Swift build image cannot be
# pulled everywhere): usage image.sh TAG [BIN_DIR] (default .build/release), extra `docker build`
# arguments in $PEON_IMAGE_BUILD_FLAGS. A debug build links the Swift runtime dynamically: its
# libraries (those not in Debian) are copied along. The binaries are stripped copies.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tag=${1:?usage: image.sh TAG [BIN_DIR]}
bin=${2:-$root/.build/release}
out=$root/.peon-image
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
trap 'rm -rf "$out"' EXIT
for b in peon-api peon-scheduler peon peon-agent; do
  [ -x "$bin/$b" ] || { echo "no $bin/$b: swift build --product $b first" >&2; exit 1; }
  strip -o "$out/bin/$b" "$bin/$b"
done
# Libraries resolved outside the system's library folders come from the Swift toolchain.
ldd "$out"/bin/* | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u | while read -r lib; do
  case "$lib" in /lib/* | /usr/lib/x86_64-linux-gnu/* | /usr/lib/aarch64-linux-gnu/*) ;; *) cp -L "$lib" "$out/lib/" ;; esac
done
# Without BuildKit (buildx) the classic builder runs; both read PEON_PREBUILT.
log=$(mktemp)
trap 'rm -rf "$out" "$log"' EXIT
DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} docker build --force-rm --build-arg PEON_PREBUILT=1 -t "$tag" ${PEON_IMAGE_BUILD_FLAGS:-} "$root" \
  > "$log" 2>&1 || { cat "$log" >&2; exit 1; }
# The build stage's images are no parent of the result: left alone they stay as dangling images.
# Remove the untagged ones this build made (a layer with children, or tagged, is refused and kept).
ids=$(grep -o -- '---> [0-9a-f]\{12\}$' "$log" | cut -c6- | sort -u)
for _ in 1 2 3 4 5 6 7 8; do   # a child first, then its parent on the next pass
  for id in $ids; do
    [ "$(docker image inspect -f '{{len .RepoTags}}' "$id" 2>/dev/null)" = 0 ] && docker rmi "$id" >/dev/null 2>&1 || true
  done
done
docker image inspect -f '{{.Id}}' "$tag"
