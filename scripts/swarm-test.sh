#!/usr/bin/env bash
# A three-node Docker Swarm on this machine for tests and benchmarks (docs: /work/shared/swarm-netns.md):
# one network namespace and one dockerd per node, bridged in a namespace of their own (no route
# out), node n1 the manager. This namespace gets one veth into that bridge ($NET.1/24, nothing
# routed through it): the scheduler and the tests run here and reach the nodes' addresses, as a
# scheduler on a manager host does (Peon's node agent listens on each node's address). Each node's data path (PEON_SWARM_DATA, default /srv/peon) is a bind
# mount of its own folder in that node's mount namespace, so nothing works because nodes share a disk.
#
#   scripts/swarm-test.sh up [image...]   # teardown first, then 3 Ready nodes; images are save|load-ed to every node
#   scripts/swarm-test.sh down            # idempotent; by pid file and path only
#   scripts/swarm-test.sh env             # PEON_SWARM_* variables for tests
#
# A registry (Debian's docker-registry) listens on this namespace's end ($NET.1:5000, plain HTTP,
# trusted by the nodes' engines): Peon pushes the runtime images it builds there, nodes pull them.
#
# Never touches the machine's own dockerd: every docker call names a node socket with -H.
set -euo pipefail
ROOT=${PEON_SWARM_ROOT:-/tmp/peon-swarm}
DATA=${PEON_SWARM_DATA:-/srv/peon}
NODES=3
NET=10.99.7
BR=pswbr
ROOTLINK=pswroot
# Inside each node's mount namespace, a tmpfs of its own holds a second socket of its engine.
NODE_SOCKET_DIR=/run/peon-swarm-node
# Peon's image (its node agent) for tests: scripts/test.sh builds it from this checkout.
AGENT_IMAGE=${PEON_SWARM_AGENT_IMAGE:-peon:test}

node_sock() { echo "unix://$ROOT/n$1/docker.sock"; }
dk() { local n=$1; shift; docker -H "$(node_sock "$n")" "$@"; }

down() {
  for i in $(seq 1 $NODES); do
    local d=$ROOT/n$i
    if [ -f "$d/pid" ]; then
      local pid; pid=$(cat "$d/pid")
      if kill -0 "$pid" 2>/dev/null; then
        # Tasks first, with a short grace, so dockerd stops quickly.
        [ "$i" = 1 ] && timeout 10 docker -H "$(node_sock 1)" service rm $(timeout 5 docker -H "$(node_sock 1)" service ls -q 2>/dev/null) >/dev/null 2>&1 || true
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
    # The wrapper (unshare, sh) of a dockerd that failed to start.
    if [ -f "$d/wrapper.pid" ]; then kill -KILL "$(cat "$d/wrapper.pid")" 2>/dev/null || true; fi
    # Leftover containerd shims of this node, found by this node's path only.
    for p in $(pgrep -f "containerd.*$ROOT/n$i/" || true); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del peonsw-n$i 2>/dev/null || true
  done
  if [ -f "$ROOT/registry.pid" ]; then kill -TERM "$(cat "$ROOT/registry.pid")" 2>/dev/null || true; fi
  ip netns del $BR 2>/dev/null || true
  ip link del $ROOTLINK 2>/dev/null || true
  rmdir $NODE_SOCKET_DIR 2>/dev/null || true
  # --cgroup-parent folders sit in the shared hierarchy: remove ours, deepest first.
  for dir in $(find /sys/fs/cgroup/*/ -maxdepth 1 -name 'peonsw-n*' -type d 2>/dev/null); do
    find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  if [ -d "$ROOT" ]; then
    # Overlay mounts live in the node namespaces, gone with them; anything left is unmounted, then removed.
    grep " $ROOT/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$ROOT"
  fi
}

up() {
  down
  mkdir -p "$ROOT"
  ip netns add $BR
  ip -n $BR link set lo up
  ip -n $BR link add peonswbr0 type bridge
  ip -n $BR link set peonswbr0 up
  ip link add $ROOTLINK type veth peer name pswbr0 netns $BR
  ip -n $BR link set pswbr0 master peonswbr0
  ip -n $BR link set pswbr0 up
  ip addr add $NET.1/24 dev $ROOTLINK
  ip link set $ROOTLINK up
  for i in $(seq 1 $NODES); do
    local ns=peonsw-n$i d=$ROOT/n$i
    ip netns add $ns
    ip -n $ns link set lo up
    ip link add pswv$i netns $ns type veth peer name pswb$i netns $BR
    ip -n $ns link set pswv$i name eth0
    ip -n $ns addr add $NET.1$i/24 dev eth0
    ip -n $ns link set eth0 up
    ip -n $BR link set pswb$i master peonswbr0
    ip -n $BR link set pswb$i up
    mkdir -p "$d/varlib" "$d/runctd" "$d/data"
    echo "{\"deprecated-key-path\": \"$d/key.json\", \"insecure-registries\": [\"$NET.1:5000\"]}" > "$d/daemon.json"
    ip netns exec $ns unshare --uts sh -c "set -e; hostname peonsw-n$i
      mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup
      for c in cpu cpuacct cpuset memory devices freezer blkio pids; do mkdir -p /sys/fs/cgroup/\$c; mount -t cgroup -o \$c cgroup /sys/fs/cgroup/\$c; done
      mkdir -p /sys/fs/cgroup/systemd; mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
      mount --bind $d/varlib /var/lib/docker; mount --bind $d/runctd /run/containerd
      mkdir -p $DATA; mount --bind $d/data $DATA
      # The node's engine at one path on every node, as on real nodes: Peon's node agent mounts it.
      mkdir -p $NODE_SOCKET_DIR; mount -t tmpfs -o mode=755 peon-node $NODE_SOCKET_DIR
      exec dockerd --config-file $d/daemon.json --data-root $d/docker --exec-root $d/exec --pidfile $d/pid \
        -H unix://$d/docker.sock -H unix://$NODE_SOCKET_DIR/docker.sock --cgroup-parent /peonsw-n$i --iptables=false --ip-forward=false" >"$d/dockerd.log" 2>&1 &
    echo $! > "$d/wrapper.pid"
  done
  for i in $(seq 1 $NODES); do
    for _ in $(seq 1 200); do dk "$i" info >/dev/null 2>&1 && break; sleep 0.1; done
    dk "$i" info >/dev/null
  done
  mkdir -p "$ROOT/registry"
  printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' "$ROOT/registry" "$NET.1:5000" > "$ROOT/registry.yml"
  docker-registry serve "$ROOT/registry.yml" > "$ROOT/registry.log" 2>&1 &
  echo $! > "$ROOT/registry.pid"
  dk 1 swarm init --advertise-addr $NET.11 >/dev/null
  local token; token=$(dk 1 swarm join-token -q worker)
  for i in $(seq 2 $NODES); do dk "$i" swarm join --token "$token" --advertise-addr $NET.1$i $NET.11:2377 >/dev/null; done
  for _ in $(seq 1 100); do
    [ "$(dk 1 node ls --format '{{.Status}}' | grep -c Ready)" = "$NODES" ] && break
    sleep 0.1
  done
  for image in "$@"; do
    for i in $(seq 1 $NODES); do docker save "$image" | dk "$i" load -q >/dev/null; done
  done
  dk 1 node ls
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  env)
    echo "PEON_SWARM_ROOT=$ROOT"
    echo "PEON_SWARM_DATA=$DATA"
    echo "PEON_SWARM_MANAGER=$ROOT/n1/docker.sock"
    echo "PEON_SWARM_NODE_SOCKET=$NODE_SOCKET_DIR/docker.sock"
    echo "PEON_SWARM_AGENT_IMAGE=$AGENT_IMAGE"
    echo "PEON_SWARM_REGISTRY=$NET.1:5000"
    echo "PEON_SWARM_NODES=$(for i in $(seq 1 $NODES); do printf 'peonsw-n%s=%s.1%s,' "$i" "$NET" "$i"; done | sed 's/,$//')"
    ;;
  *) echo "usage: $0 up [image...]|down|env" >&2; exit 2 ;;
esac
