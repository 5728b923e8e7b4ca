#!/usr/bin/env bash
# The container's entrypoint (Dockerfile, compose.yaml). Started as root, it only prepares: the data
# dir is handed to peon (uid 1000, the game servers' uid too), PEON_HOST_DIR=auto becomes the host
# path the engine mounted the data dir from (game servers' bind mounts are resolved by the host's
# engine), and the stack then runs as peon. Only peon-scheduler gets the Docker socket's group (root
# on the host): stack.sh, as peon with CAP_SETGID and CAP_SETPCAP alone (to hand out that group and
# drop the rest), starts nginx and the API workers, which face the network, with no extra group.
# Started as another user (`user:` and `group_add:` in compose), it runs the stack as that user
# directly.
set -euo pipefail
data=${PEON_DATA_DIR:-/srv/peon/var}
socket=${PEON_DOCKER_SOCKET:-/var/run/docker.sock}

# Where the engine mounted $data from: the mount whose destination holds it, longest first.
host_dir() {
  local id
  id=$(grep -o 'containers/[0-9a-f]\{64\}/' /proc/self/mountinfo | head -n1 | cut -d/ -f2) || true
  id=${id:-$(hostname)}
  curl -sf --max-time 10 --unix-socket "$socket" "http://docker/containers/$id/json" | jq -r --arg d "$data" '
    [.Mounts[] | . as $m | select($d + "/" | startswith(($m.Destination | rtrimstr("/")) + "/"))]
    | sort_by(.Destination | length) | last | select(. != null)
    | . as $m | $m.Source + ($d | ltrimstr($m.Destination | rtrimstr("/")))'
}

if [ "${PEON_HOST_DIR:-}" = auto ]; then
  found=$(host_dir || true)
  if [ -n "$found" ]; then
    export PEON_HOST_DIR=$found
  else
    # Without it, game servers' folders would be made by the engine on the host, outside Peon's view.
    echo "PEON_HOST_DIR=auto: $data is not mounted from the host (or $socket does not answer); mount it, or set PEON_HOST_DIR" >&2
    exit 2
  fi
fi
echo "data dir $data is $PEON_HOST_DIR on the Docker host" >&2

if [ "$(id -u)" -ne 0 ]; then exec /opt/peon/scripts/stack.sh; fi

mkdir -p "$data"
# A folder the engine made for a bind mount belongs to root, and so does the state of an image that
# ran Peon as root: hand it to peon (links themselves, never followed; game servers' folders, made
# for uid 1000 and possibly huge, are not walked).
find "$data" -xdev -path "$data/servers/*" -prune -o ! -user 1000 -exec chown -h peon:peon {} +
groups=peon
if [ -S "$socket" ]; then
  groups=$(stat -c %g "$socket")
else
  echo "no Docker socket at $socket: game servers cannot be created" >&2
fi
# Ambient: the capabilities survive the exec of bash, not being root.
caps=-all,+setgid,+setpcap
exec setpriv --reuid=peon --regid=peon --clear-groups --no-new-privs --inh-caps="$caps" --ambient-caps="${caps#-all,}" \
  --bounding-set="$caps" env HOME=/opt/peon USER=peon PEON_SCHEDULER_GROUPS="$groups" /opt/peon/scripts/stack.sh
