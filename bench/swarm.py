"""Server lifecycle on a three-node Docker Swarm: Peon (API over HTTPS, PEON_PLATFORM=swarm) against the
same operations done directly on the Swarm API in the same run. Direct: service create (one replica,
pinned to a node, host-mode port, restart condition none) until its task runs and the port answers from
another node; stop = scale to 0 until the node has no container of it; start = forced update to 1
replica until its new task runs and the port answers. Both sides probe the port only once the task
runs (Peon answers then): a probe sent before the container's network is up loses its SYN and waits
for TCP's 1 s retransmission, which would time the probe, not Swarm. Not a test: it prints."""
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Tests", "integration"))
from conftest import ROOT, RUN, Stack  # noqa: E402

SCRIPT = os.path.join(ROOT, "scripts", "swarm-test.sh")
ROUNDS = int(os.environ.get("ROUNDS", "5"))


def sh(*args):
    return subprocess.run(args, capture_output=True, text=True, timeout=120).stdout


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("docker", timeout=30)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def api(sock, path):
    """A GET on the manager's Engine API (no CLI process in the timed window)."""
    conn = UnixHTTP(sock)
    conn.request("GET", path)
    body = conn.getresponse().read()
    conn.close()
    return json.loads(body)


def runs(sock, service, after=None):
    """Waits until the service's newest task (other than `after`) runs; its id."""
    deadline = time.time() + 60
    query = "/tasks?filters=" + json.dumps({"service": [service]}).replace(" ", "")
    while time.time() < deadline:
        tasks = [t for t in api(sock, query) if t["ID"] != after]
        if tasks:
            newest = max(tasks, key=lambda t: t["CreatedAt"])
            if newest["Status"]["State"] == "running":
                return newest["ID"]
        time.sleep(0.02)
    raise RuntimeError(f"{service} did not run")


def answers(ns, host, port):
    deadline = time.time() + 60
    while time.time() < deadline:
        out = subprocess.run(["ip", "netns", "exec", ns, "busybox", "sh", "-c", f"echo ping | timeout 2 busybox nc {host} {port}"],
                             capture_output=True, text=True)
        if out.stdout.strip() == "ping":
            return True
        time.sleep(0.05)
    return False


def main():
    env = dict(line.split("=", 1) for line in sh(SCRIPT, "env").split())
    subprocess.run([SCRIPT, "up", "peon-test-game:latest", env["PEON_SWARM_AGENT_IMAGE"]], check=True, capture_output=True)
    nodes = dict(pair.split("=") for pair in env["PEON_SWARM_NODES"].split(","))
    dk = ["docker", "-H", "unix://" + env["PEON_SWARM_MANAGER"]]
    stack = Stack(env={"PEON_PLATFORM": "swarm", "PEON_DOCKER_SOCKET": env["PEON_SWARM_MANAGER"],
                       "PEON_SWARM_DATA": env["PEON_SWARM_DATA"], "PEON_AGENT_IMAGE": env["PEON_SWARM_AGENT_IMAGE"],
                       "PEON_SWARM_NODE_SOCKET": env["PEON_SWARM_NODE_SOCKET"]})
    times = {k: [] for k in ("peon create+start", "peon stop", "peon start", "direct create+start", "direct stop", "direct start")}
    try:
        for i in range(ROUNDS):
            # Direct, on the node Peon would not pick first (any node: they are equal).
            node, port, name = "peonsw-n2", 43000 + i, f"bench-{RUN}-{i}"
            sock = env["PEON_SWARM_MANAGER"]
            t = time.time()
            sh(*dk, "service", "create", "-d", "--name", name, "--no-resolve-image", "--restart-condition", "none",
               "--constraint", f"node.hostname=={node}", "--publish", f"mode=host,target={port},published={port}",
               "--endpoint-mode", "dnsrr", "--env", f"PORT={port}", "--stop-grace-period", "30s", "--label", f"peon.test={RUN}",
               "peon-test-game:latest")
            task = runs(sock, name)
            assert answers("peonsw-n1", nodes[node], port), sh(*dk, "service", "ps", "--no-trunc", name)
            times["direct create+start"].append(time.time() - t)
            t = time.time()
            sh(*dk, "service", "scale", "-d", f"{name}=0")
            # Ended when the node has no container of it any more (the task list hides it earlier).
            on_node = ["docker", "-H", f"unix://{env['PEON_SWARM_ROOT']}/n{node[-1]}/docker.sock"]
            while sh(*on_node, "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={name}").strip():
                time.sleep(0.05)
            times["direct stop"].append(time.time() - t)
            t = time.time()
            # With restart condition none a finished slot stays finished: a forced update makes a new task (as Peon does).
            sh(*dk, "service", "update", "-d", "--force", "--replicas", "1", "--no-resolve-image", name)
            runs(sock, name, after=task)
            assert answers("peonsw-n1", nodes[node], port), sh(*dk, "service", "ps", "--no-trunc", name)
            times["direct start"].append(time.time() - t)
            sh(*dk, "service", "rm", name)

            uid = f"peontest.{RUN}b{i}"
            t = time.time()
            r = stack.request("PUT", f"/api/v1/server/create/{uid}", json={"SERVER_NAME": "b", "PASSWORD": "pw"}, timeout=120)
            assert r.status_code == 200, r.text
            spec = api(sock, "/services?filters=" + json.dumps({"label": [f"peon.server={uid}"]}).replace(" ", ""))[0]["Spec"]
            pnode = spec["TaskTemplate"]["Placement"]["Constraints"][0].split("==")[1]
            pport = spec["EndpointSpec"]["Ports"][0]["PublishedPort"]
            assert answers("peonsw-n1", nodes[pnode], pport)
            times["peon create+start"].append(time.time() - t)
            t = time.time()
            assert stack.request("PUT", f"/api/v1/server/stop/{uid}", timeout=120).status_code == 200
            times["peon stop"].append(time.time() - t)
            t = time.time()
            assert stack.request("PUT", f"/api/v1/server/start/{uid}", timeout=120).status_code == 200
            assert answers("peonsw-n1", nodes[pnode], pport)
            times["peon start"].append(time.time() - t)
            stack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120)
    finally:
        stack.cleanup()
        subprocess.run([SCRIPT, "down"], capture_output=True)
    print(f"rounds: {ROUNDS} (median ms)")
    print("| operation | Peon | Swarm API | ratio |")
    print("|---|---|---|---|")
    for op in ("create+start", "stop", "start"):
        p, d = statistics.median(times["peon " + op]) * 1000, statistics.median(times["direct " + op]) * 1000
        print(f"| {op} | {p:.0f} | {d:.0f} | {p / d:.2f} |")
    for key, values in times.items():
        print(f"{key}: " + " ".join(f"{v * 1000:.0f}" for v in values))


if __name__ == "__main__":
    main()
