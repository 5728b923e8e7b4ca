#!/usr/bin/env bash
# Makes the base of Peon's runtime images, debian:bookworm-slim, when the engine lacks it and no
# registry is reachable: a minimal Debian 12 from the Debian archive (mmdebstrap, ~20 s), imported
# with the label peon.base=mmdebstrap so later runs find and reuse it.
set -euo pipefail
socket=${PEON_DOCKER_SOCKET:-/var/run/docker.sock}
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
image=debian:bookworm-slim
if curl -sf --unix-socket "$socket" "http://docker/images/$image/json" >/dev/null; then exit 0; fi
if ! command -v mmdebstrap >/dev/null; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
fi
echo "making $image with mmdebstrap" >&2
$sudo mmdebstrap --quiet --variant=minbase bookworm - \
  | docker import --change 'CMD ["bash"]' --change 'LABEL peon.base=mmdebstrap' - "$image" >/dev/null
echo "made $image" >&2
