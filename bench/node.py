"""The node layer where the scheduler does not share the games' host, against the host, in the same
run: Peon on a three-node netns swarm (each node's work through Peon's node agent over mutual TLS)
and Peon on this host (the same work in-process), driven over HTTPS through the API.

Per deployment: an RCON console line (the game's RCON stand-in answers `echo`), a backup of a 1 GiB
server folder (half incompressible, half text) and its restore, and a start of a stopped server (its
folder prepared and checked, the workload started, its config read on its node: Swarm's own task
start is in this figure too). Prints medians
and the ratio of each swarm figure to the host's, and the memory of every node's agent. Not a test.

Run: bench/node.sh (ROUNDS, default 3; CONSOLE_ROUNDS, default 30)."""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Tests", "integration"))
from benchlib import fill_world, settle, timed  # noqa: E402
from conftest import ROOT, RUN, Stack  # noqa: E402

SCRIPT = os.path.join(ROOT, "scripts", "swarm-test.sh")
ROUNDS = int(os.environ.get("ROUNDS", "3"))
CONSOLE_ROUNDS = int(os.environ.get("CONSOLE_ROUNDS", "30"))
HALF = 512 << 20


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


def measure(stack, name, home_of):
    """Figures of one deployment: {operation: [seconds...]}."""
    figures = {"console line": [], "backup 1 GiB": [], "restore 1 GiB": [], "start (files checked, config read)": []}
    rcon = f"peonrcon.{RUN}{name}r"
    ok(stack.request("PUT", f"/api/v1/server/create/{rcon}", json={"SERVER_NAME": "Bench"}, timeout=300))
    deadline = time.time() + 60
    while time.time() < deadline:
        if stack.request("PUT", f"/api/v1/server/console/{rcon}", json={"command": "echo ready"}).status_code == 200:
            break
        time.sleep(0.2)
    for i in range(CONSOLE_ROUNDS):
        figures["console line"].append(timed(lambda: ok(stack.request("PUT", f"/api/v1/server/console/{rcon}",
                                                                      json={"command": f"echo {i}"}))))
    stack.request("DELETE", f"/api/v1/server/eradicate/{rcon}", timeout=300)

    uid = f"peontest.{RUN}{name}b"
    r = ok(stack.request("PUT", f"/api/v1/server/create/{uid}", json={"SERVER_NAME": "Bench", "PASSWORD": "pw", "start_later": True},
                         timeout=300))
    home = home_of(ok(stack.request("GET", f"/api/v1/server/get/{uid}")).json(), uid)
    fill_world(home, HALF)
    for _ in range(ROUNDS):
        settle(home)
        backup = {}
        figures["backup 1 GiB"].append(timed(lambda: backup.update(ok(stack.request("POST", f"/api/v1/server/backup/{uid}", timeout=900),
                                                                         201).json())))
        settle(home)
        figures["restore 1 GiB"].append(timed(lambda: ok(stack.request("PUT", f"/api/v1/server/restore/{uid}", json={"id": backup["id"]},
                                                                       timeout=900))))
        ok(stack.request("DELETE", f"/api/v1/server/backup/{uid}", json={"id": backup["id"]}, timeout=300))
        settle(home)
        figures["start (files checked, config read)"].append(timed(lambda: ok(stack.request("PUT", f"/api/v1/server/start/{uid}", timeout=300))))
        ok(stack.request("PUT", f"/api/v1/server/stop/{uid}", timeout=300))
    stack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=300)
    return figures


def agent_memory():
    """VmRSS of every node's agent process, in MiB."""
    rss = []
    for pid in subprocess.run(["pgrep", "-f", "^/opt/peon/bin/peon-agent"], capture_output=True, text=True).stdout.split():
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                rss.append(int(line.split()[1]) / 1024)
    return rss


def main():
    folder = plans()
    env = swarm_env()
    subprocess.run([SCRIPT, "up", "peon-test-game:latest", "peon-test-game:rcon", env["PEON_SWARM_AGENT_IMAGE"]], check=True,
                   capture_output=True, timeout=600)
    results = {}
    try:
        host = Stack(env={"PEON_BUNDLED_PLANS": folder})
        try:
            results["host"] = measure(host, "h", lambda obj, uid: os.path.join(host.data, "servers", *uid.split(".")))
        finally:
            host.cleanup()
        swarm = Stack(env={
            "PEON_PLATFORM": "swarm", "PEON_DOCKER_SOCKET": env["PEON_SWARM_MANAGER"], "PEON_SWARM_DATA": env["PEON_SWARM_DATA"],
            "PEON_AGENT_IMAGE": env["PEON_SWARM_AGENT_IMAGE"], "PEON_SWARM_NODE_SOCKET": env["PEON_SWARM_NODE_SOCKET"],
            "PEON_BUNDLED_PLANS": folder,
        })
        try:
            results["swarm"] = measure(swarm, "s", lambda obj, uid: os.path.join(env["PEON_SWARM_ROOT"], "n" + obj["node"][-1], "data",
                                                                                 "servers", *uid.split(".")))
            memory = agent_memory()
        finally:
            swarm.cleanup()
    finally:
        subprocess.run([SCRIPT, "down"], capture_output=True, timeout=300)
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{'operation':<26} {'host (median)':>14} {'swarm (median)':>15} {'swarm/host':>11}")
    for op in results["host"]:
        h, s = statistics.median(results["host"][op]), statistics.median(results["swarm"][op])
        print(f"{op:<26} {h * 1000:>11.1f} ms {s * 1000:>12.1f} ms {s / h:>10.2f}x")
    print("rounds:", json.dumps({d: {op: [round(v * 1000, 1) for v in vs] for op, vs in r.items()} for d, r in results.items()}))
    print("agent memory (VmRSS per node, MiB):", ", ".join(f"{m:.1f}" for m in memory))


if __name__ == "__main__":
    main()
