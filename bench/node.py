"""The node layer where the scheduler does not share the games' host, against the host, in the same
run and in alternating rounds: Peon on this host (the node's work in the scheduler), Peon in its
container (compose.yaml: the node's work by `peon-agent` beside it, over a unix socket) and Peon on a
three-node netns swarm (the node's work by `peon-agent` on the server's node, mutual TLS over the
test bridge), each driven over HTTPS through its API.

Per deployment: an RCON console line (the game's RCON stand-in answers `echo`), a backup of a 1 GiB
server folder (half incompressible, half text) and its restore, a start of a stopped server (its
folder prepared and checked, the workload started: Swarm's own task start is in this figure too),
and the config snapshot (the `config` node operation the scheduler runs every 5 s per running
server, from its `peon_node_operation_duration_seconds` histogram over a quiet minute). Prints
medians, each deployment's ratio to the host, and the peak memory of every agent. Not a test.

Run: bench/node.sh (ROUNDS, default 5; CONSOLE_ROUNDS per round, default 10; CONFIG_SECONDS, 60)."""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Tests", "integration"))
from benchlib import fill_world, settle, timed  # noqa: E402
from conftest import BIN, ROOT, RUN, Stack  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from test_container import compose_command, deployed  # noqa: E402

SCRIPT = os.path.join(ROOT, "scripts", "swarm-test.sh")
ROUNDS = int(os.environ.get("ROUNDS", "5"))
CONSOLE_ROUNDS = int(os.environ.get("CONSOLE_ROUNDS", "10"))
CONFIG_SECONDS = int(os.environ.get("CONFIG_SECONDS", "60"))
HALF = 512 << 20
OPERATIONS = ["console line", "backup 1 GiB", "restore 1 GiB", "start", "config snapshot"]


def swarm_env():
    out = subprocess.run([SCRIPT, "env"], capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.split())


def plans():
    folder = tempfile.mkdtemp(prefix="peon-bench-plans-")
    shutil.copytree(os.path.join(ROOT, "plans", "peontest"), os.path.join(folder, "peontest"))
    shutil.copytree(os.path.join(ROOT, "Tests", "fixtures", "plans", "peonrcon"), os.path.join(folder, "peonrcon"))
    return folder


def ok(r, *codes):
    assert r.status_code in (codes or (200,)), r.text
    return r


class Target:
    """One deployment: how to reach its API, where a server's folder is, how to read its metrics."""

    def __init__(self, name, request, home, metrics_text):
        self.name, self.request, self.home_of, self.metrics_text = name, request, home, metrics_text
        self.figures = {op: [] for op in OPERATIONS}

    def node_histograms(self):
        """{op: (sum, count)} of `peon_node_operation_duration_seconds`."""
        found = {}
        for family in text_string_to_metric_families(self.metrics_text()):
            if family.name == "peon_node_operation_duration_seconds":
                for s in family.samples:
                    total, count = found.get(s.labels.get("op"), (0.0, 0.0))
                    if s.name.endswith("_sum"):
                        total = s.value
                    elif s.name.endswith("_count"):
                        count = s.value
                    found[s.labels.get("op")] = (total, count)
        return found

    def config_histogram(self):
        return self.node_histograms().get("config", (0.0, 0.0))

    def node_means(self):
        """The mean time of each node operation over the whole run, in ms, as the scheduler saw it."""
        return {op: round(total / count * 1000, 1) for op, (total, count) in self.node_histograms().items() if count}

    def setup(self, tag):
        self.rcon = f"peonrcon.{RUN}{tag}r"
        ok(self.request("PUT", f"/api/v1/server/create/{self.rcon}", json={"SERVER_NAME": "Bench"}, timeout=300))
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.request("PUT", f"/api/v1/server/console/{self.rcon}", json={"command": "echo ready"}).status_code == 200:
                break
            time.sleep(0.2)
        self.uid = f"peontest.{RUN}{tag}b"
        ok(self.request("PUT", f"/api/v1/server/create/{self.uid}", json={"SERVER_NAME": "Bench", "PASSWORD": "pw", "start_later": True},
                        timeout=300))
        self.home = self.home_of(ok(self.request("GET", f"/api/v1/server/get/{self.uid}")).json(), self.uid)
        fill_world(self.home, HALF)

    def round(self, i):
        for j in range(CONSOLE_ROUNDS):
            self.figures["console line"].append(timed(lambda: ok(self.request(
                "PUT", f"/api/v1/server/console/{self.rcon}", json={"command": f"echo {i}.{j}"}))))
        settle(self.home)
        backup = {}
        self.figures["backup 1 GiB"].append(timed(lambda: backup.update(ok(self.request(
            "POST", f"/api/v1/server/backup/{self.uid}", timeout=900), 201).json())))
        settle(self.home)
        self.figures["restore 1 GiB"].append(timed(lambda: ok(self.request(
            "PUT", f"/api/v1/server/restore/{self.uid}", json={"id": backup["id"]}, timeout=900))))
        ok(self.request("DELETE", f"/api/v1/server/backup/{self.uid}", json={"id": backup["id"]}, timeout=300))
        settle(self.home)
        self.figures["start"].append(timed(lambda: ok(self.request("PUT", f"/api/v1/server/start/{self.uid}", timeout=300))))
        ok(self.request("PUT", f"/api/v1/server/stop/{self.uid}", timeout=300))

    def teardown(self):
        for uid in (self.rcon, self.uid):
            self.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=300)


def container_of(pid):
    """The id of the container a process runs in (from its cgroup), or its pid."""
    try:
        for part in open(f"/proc/{pid}/cgroup").read().replace("/", " ").replace("-", " ").replace(".", " ").split():
            if len(part) == 64 and all(c in "0123456789abcdef" for c in part):
                return part
    except OSError:
        pass
    return pid


def rss(pid):
    """(VmRSS, RssAnon) in MiB: all resident pages, and those the process alone holds (not the shared
    libraries' code and data it maps from files)."""
    found = {}
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(("VmRSS:", "RssAnon:")):
                found[line.split(":")[0]] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return found.get("VmRSS", 0.0), found.get("RssAnon", 0.0)


class AgentMemory:
    """The peak VmRSS of every `peon-agent` process on this machine (the swarm's and the container
    deployment's), sampled every 100 ms while the rounds run."""

    def __init__(self):
        self.peak, self.stop = {}, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.wait(0.1):
            pids = subprocess.run(["pgrep", "-f", "^/opt/peon/bin/peon-agent"], capture_output=True, text=True).stdout.split()
            for pid in pids:
                where = container_of(pid)
                total, anon = rss(pid)
                old_total, old_anon = self.peak.get(where, (0.0, 0.0))
                self.peak[where] = (max(old_total, total), max(old_anon, anon))

    def finish(self):
        self.stop.set()
        self.thread.join()
        return self.peak


def main():
    folder = plans()
    env = swarm_env()
    subprocess.run([SCRIPT, "up", "peon-test-game:latest", "peon-test-game:rcon", env["PEON_SWARM_AGENT_IMAGE"]], check=True,
                   capture_output=True, timeout=600)
    host = swarm = None
    try:
        with deployed(BIN, compose_command()) as box:
            host = Stack(env={"PEON_BUNDLED_PLANS": folder})
            swarm = Stack(env={
                "PEON_PLATFORM": "swarm", "PEON_DOCKER_SOCKET": env["PEON_SWARM_MANAGER"], "PEON_SWARM_DATA": env["PEON_SWARM_DATA"],
                "PEON_AGENT_IMAGE": env["PEON_SWARM_AGENT_IMAGE"], "PEON_SWARM_NODE_SOCKET": env["PEON_SWARM_NODE_SOCKET"],
                "PEON_BUNDLED_PLANS": folder, "PEON_PORT_RANGE": "42000-42999",
            })
            metrics = lambda stack: lambda: ok(stack.session.get(stack.url("/metrics"), verify=False, timeout=10)).text
            box_metrics = lambda: subprocess.run(
                ["docker", "exec", box.container_id(), "curl", "-sfk", f"https://127.0.0.1:{box.https_port}/metrics"],
                capture_output=True, text=True, check=True).stdout
            targets = [
                Target("host", host.request, lambda obj, uid: os.path.join(host.data, "servers", *uid.split(".")), metrics(host)),
                Target("container", box.request, lambda obj, uid: os.path.join(box.dir, "var", "servers", *uid.split(".")), box_metrics),
                Target("swarm", swarm.request, lambda obj, uid: os.path.join(env["PEON_SWARM_ROOT"], "n" + obj["node"][-1], "data", "servers",
                                                                              *uid.split(".")), metrics(swarm)),
            ]
            for t, tag in zip(targets, "hcs"):
                t.setup(tag)
            memory = AgentMemory()
            try:
                for i in range(ROUNDS):
                    for t in targets:
                        t.round(i)
            except AssertionError:
                # What the schedulers and the swarm's agents said, for the failure above.
                print(swarm.output()[-4000:], file=sys.stderr)
                print(subprocess.run(["docker", "-H", "unix://" + env["PEON_SWARM_MANAGER"], "service", "ps", "--no-trunc", "peon-agent"],
                                     capture_output=True, text=True).stdout, file=sys.stderr)
                raise
            # The config snapshot: each deployment's scheduler reads its running server's config
            # every 5 s; a quiet minute of them, from the histogram's sum and count.
            before = [t.config_histogram() for t in targets]
            time.sleep(CONFIG_SECONDS)
            for t, (s0, c0) in zip(targets, before):
                s1, c1 = t.config_histogram()
                t.figures["config snapshot"] = [(s1 - s0) / (c1 - c0)] if c1 > c0 else []
                t.config_samples = int(c1 - c0)
            peaks = memory.finish()
            box_agent = json.loads(subprocess.run(["docker", "inspect", box.container_id("agent")], capture_output=True,
                                                  text=True).stdout)[0]["Id"]
            node_means = {t.name: t.node_means() for t in targets}
            for t in targets:
                t.teardown()
    finally:
        for stack in (host, swarm):
            if stack:
                stack.cleanup()
        subprocess.run([SCRIPT, "down"], capture_output=True, timeout=300)
        shutil.rmtree(folder, ignore_errors=True)
    base = targets[0]
    print(f"{'operation':<18}" + "".join(f"{t.name + ' (ms)':>16}" for t in targets) + "".join(f"{t.name + '/host':>16}" for t in targets[1:]))
    for op in OPERATIONS:
        h = statistics.median(base.figures[op]) if base.figures[op] else float("nan")
        cells = [statistics.median(t.figures[op]) if t.figures[op] else float("nan") for t in targets]
        print(f"{op:<18}" + "".join(f"{c * 1000:>16.1f}" for c in cells) + "".join(f"{c / h:>15.2f}x" for c in cells[1:]))
    print("config samples:", {t.name: t.config_samples for t in targets})
    print("rounds (ms):", json.dumps({t.name: {op: [round(v * 1000, 1) for v in vs] for op, vs in t.figures.items() if op != "console line"}
                                      for t in targets}))
    print("console line, min-max (ms):", {t.name: (round(min(t.figures["console line"]) * 1000, 1), round(max(t.figures["console line"]) * 1000, 1))
                                         for t in targets})
    print("node operations, mean over the run (ms, the scheduler's histogram):")
    for name, means in node_means.items():
        print(f"  {name}: " + ", ".join(f"{op} {ms}" for op, ms in sorted(means.items())))
    show = lambda m: f"{m[0]:.1f} ({m[1]:.1f} own)"
    print("agent peak memory (VmRSS, and RssAnon: its own, MiB): container", show(peaks.pop(box_agent, (0.0, 0.0))) + ";",
          "swarm nodes", ", ".join(show(m) for m in peaks.values()))


if __name__ == "__main__":
    main()
