"""Peon on a real three-node Docker Swarm (scripts/swarm-test.sh: one dockerd per network namespace,
each node's data path its own disk), driven over HTTPS with PEON_PLATFORM=swarm. Everything works
there as on one machine: the node work goes through Peon's node agent (peon-agent, from Peon's own
image, mutual TLS) on each server's node."""
import io
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import zipfile

import pytest

from conftest import ROOT, RUN, Stack, docker
from test_sleep import a2s_info, echoed, host_ports, read_line, sleep_plan, udp

PLANS = os.path.join(ROOT, "Tests", "fixtures", "plans")

SETTINGS = {"SERVER_NAME": "Swarm", "PASSWORD": "pw"}
SCRIPT = os.path.join(ROOT, "scripts", "swarm-test.sh")


def swarm_env():
    out = subprocess.run([SCRIPT, "env"], capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.split())


@pytest.fixture(scope="module")
def swarm():
    # Peon's image (scripts/test.sh builds peon:test from this checkout) carries the node agent.
    env = swarm_env()
    # debian:bookworm-slim on the manager gives the runtime images there the same tags as here.
    subprocess.run([os.path.join(ROOT, "scripts", "base-image.sh")], check=True, timeout=600)
    subprocess.run([SCRIPT, "up", "peon-test-game:latest", "peon-test-game:rcon", env["PEON_SWARM_AGENT_IMAGE"], "debian:bookworm-slim"],
                   check=True, capture_output=True, timeout=600)
    env = swarm_env()
    yield env
    subprocess.run([SCRIPT, "down"], capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def plans():
    """The bundled plans, the RCON test plan, and a test game whose players are counted from its log."""
    folder = tempfile.mkdtemp(prefix="peon-swarm-plans-")
    shutil.copytree(os.path.join(ROOT, "plans", "peontest"), os.path.join(folder, "peontest"))
    shutil.copytree(os.path.join(PLANS, "peonrcon"), os.path.join(folder, "peonrcon"))
    shutil.copytree(os.path.join(ROOT, "plans", "luanti"), os.path.join(folder, "luanti"))
    shutil.copytree(os.path.join(PLANS, "peonslow"), os.path.join(folder, "peonslow"))
    shutil.copytree(os.path.join(ROOT, "plans", "peontest"), os.path.join(folder, "peonlog"))
    with open(os.path.join(ROOT, "plans", "peontest", "plan.json")) as f:
        plan = json.load(f)
    plan["metadata"].update({"game_uid": "peonlog", "players": {"query": "log", "join": "joined: ", "leave": "left: ",
                                                                  "file": "user/game.log"}})
    with open(os.path.join(folder, "peonlog", "plan.json"), "w") as f:
        json.dump(plan, f)
    sleep_plan(folder)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def swarm_stack_env(swarm, plans):
    return {
        "PEON_PLATFORM": "swarm", "PEON_DOCKER_SOCKET": swarm["PEON_SWARM_MANAGER"], "PEON_SWARM_DATA": swarm["PEON_SWARM_DATA"],
        "PEON_AGENT_IMAGE": swarm["PEON_SWARM_AGENT_IMAGE"], "PEON_SWARM_NODE_SOCKET": swarm["PEON_SWARM_NODE_SOCKET"],
        "PEON_BUNDLED_PLANS": plans, "PEON_PLAYER_POLL_SECONDS": "1", "PEON_REGISTRY": swarm["PEON_SWARM_REGISTRY"],
        # An idle_stop minute of 15 s: idle stops and sleeps without a minute's wait.
        "PEON_IDLE_MINUTE_SECONDS": "15",
        # The nodes' firewalls are the swarm's own (network namespaces): Peon keeps its rules there.
        "PEON_GAME_EGRESS": "restricted",
    }


@pytest.fixture(scope="module")
def sstack(swarm, plans):
    s = Stack(env=swarm_stack_env(swarm, plans))
    yield s
    s.cleanup()


def manager(swarm, *args):
    out = subprocess.run(["docker", "-H", "unix://" + swarm["PEON_SWARM_MANAGER"], *args], capture_output=True, text=True, timeout=30)
    return out.stdout


def service_id(swarm, uid):
    ids = manager(swarm, "service", "ls", "-q", "--filter", f"label=peon.server={uid}").split()
    return ids[0] if ids else None


def service(swarm, uid):
    sid = service_id(swarm, uid)
    return json.loads(manager(swarm, "service", "inspect", sid))[0] if sid else None


def node_of(swarm, uid):
    constraint = service(swarm, uid)["Spec"]["TaskTemplate"]["Placement"]["Constraints"][0]
    return constraint.split("==")[1]


def address(swarm, node):
    return dict(pair.split("=") for pair in swarm["PEON_SWARM_NODES"].split(","))[node]


def answers(from_ns, host, port):
    for _ in range(60):
        out = subprocess.run(["ip", "netns", "exec", from_ns, "busybox", "sh", "-c", f"echo ping | timeout 3 busybox nc {host} {port}"],
                             capture_output=True, text=True)
        if out.stdout.strip() == "ping":
            return True
        time.sleep(0.25)
    return False


def port_of(swarm, uid):
    return service(swarm, uid)["Spec"]["EndpointSpec"]["Ports"][0]["PublishedPort"]


def tasks(swarm, uid):
    sid = service_id(swarm, uid)
    return [line for line in manager(swarm, "service", "ps", "-q", sid).split() if line] if sid else []


def create(stack, uid, body=None):
    return stack.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, **(body or {})}, timeout=120)


def test_three_servers_land_on_three_nodes_and_the_lifecycle_works(swarm, sstack):
    uids = [f"peontest.{RUN}w{i}" for i in range(3)]
    answers_ = []
    for uid in uids:
        r = create(sstack, uid)
        assert r.status_code == 200 and r.json()["container_state"] == "running", r.text
        answers_.append(r.json())
    nodes = [node_of(swarm, uid) for uid in uids]
    # The create answer already says where to connect: the node, its address, the published ports.
    for obj, node, uid in zip(answers_, nodes, uids):
        assert obj["node"] == node and obj["address"] == address(swarm, node), obj
        assert [p["port"] for p in obj["ports"]] == [port_of(swarm, uid)], obj
    assert sorted(nodes) == ["peonsw-n1", "peonsw-n2", "peonsw-n3"], nodes
    # The API shows each server's node and the nodes (mirrored by the scheduler every 10 s).
    deadline = time.time() + 30
    listed = []
    while time.time() < deadline:
        listed = sstack.request("GET", "/api/v1/nodes").json()
        if sum(len(n["servers"]) for n in listed) >= 3:
            break
        time.sleep(0.5)
    assert [n["name"] for n in listed] == ["peonsw-n1", "peonsw-n2", "peonsw-n3"], listed
    assert all(n["state"] == "ready" and n["availability"] == "active" and n["memory_bytes"] > 0 and n["cpus"] > 0 for n in listed)
    assert {n["name"]: n["servers"] for n in listed} == {node: [uid] for uid, node in zip(uids, nodes)}
    assert [sstack.request("GET", f"/api/v1/server/get/{uid}").json()["node"] for uid in uids] == nodes
    for uid, node in zip(uids, nodes):
        spec = service(swarm, uid)["Spec"]
        assert spec["EndpointSpec"]["Ports"][0]["PublishMode"] == "host"
        assert spec["TaskTemplate"]["RestartPolicy"]["Condition"] == "none"
        assert spec["TaskTemplate"]["ContainerSpec"]["User"] == "1000:1000"
        assert spec["TaskTemplate"]["ContainerSpec"]["CapabilityDrop"] == ["ALL"]
        assert spec["TaskTemplate"]["Resources"]["Limits"]["Pids"] > 0
        # Reached on its own node's address, from another node's namespace.
        other = next(n for n in ("peonsw-n1", "peonsw-n2", "peonsw-n3") if n != node)
        assert answers(other, address(swarm, node), port_of(swarm, uid)), (uid, node)
        # Its folder is on its node's disk only.
        on_disk = [n for n in ("n1", "n2", "n3")
                   if os.path.isdir(os.path.join(swarm["PEON_SWARM_ROOT"], n, "data", "servers", "peontest", uid.split(".")[1]))]
        assert on_disk == ["n" + node[-1]], on_disk
    # Joinable: each node's agent found its game accepting on its port (the plan's tcp probe).
    deadline = time.time() + 30
    while time.time() < deadline and not all(sstack.request("GET", f"/api/v1/server/get/{u}").json()["ready"] for u in uids):
        time.sleep(0.25)
    states = [sstack.request("GET", f"/api/v1/server/get/{u}").json() for u in uids]
    assert all(s["ready"] and s["server_state"] == "running" and s["ready_at"] for s in states), states

    # Resource figures come from each server's node (its agent asks its node's engine).
    for uid in uids:
        deadline, stats = time.time() + 30, {}
        while time.time() < deadline and not stats.get("stats"):
            stats = sstack.request("GET", f"/api/v1/server/stats/{uid}").json()
            time.sleep(0.5)
        assert stats["stats"]["memory_bytes"] > 0 and stats["stats"]["memory_limit_bytes"] > 0, (uid, stats)
        assert 0 <= stats["memory_percent"] <= 100 and isinstance(stats["cpu_percent"], (int, float)), (uid, stats)

    uid = uids[0]
    r = sstack.request("PUT", f"/api/v1/server/stop/{uid}", timeout=120)
    assert r.status_code == 200 and r.json()["container_state"] == "exited", r.text
    r = sstack.request("PUT", f"/api/v1/server/start/{uid}", timeout=120)
    assert r.json()["container_state"] == "running", r.text
    r = sstack.request("PUT", f"/api/v1/server/restart/{uid}", timeout=120)
    assert r.json()["container_state"] == "running", r.text
    # Update modes change the files on the server's node: reinit empties its data folder there.
    data = os.path.join(swarm["PEON_SWARM_ROOT"], "n" + nodes[0][-1], "data", "servers", "peontest", uid.split(".")[1], "data")
    open(os.path.join(data, "world.db"), "w").write("save")
    r = sstack.request("PUT", f"/api/v1/server/update/{uid}", json={"mode": "server"}, timeout=120)
    assert r.status_code == 200 and os.path.exists(os.path.join(data, "world.db")), r.text
    r = sstack.request("PUT", f"/api/v1/server/update/{uid}", json={"mode": "reinit"}, timeout=120)
    assert r.status_code == 200 and os.listdir(data) == [], r.text
    assert sstack.request("GET", f"/api/v1/server/get/{uid}").json()["container_state"] == "running"
    # Modify applies at the next start: the service is re-made with the new settings and limits.
    r = sstack.request("PUT", f"/api/v1/server/modify/{uid}", json={"SERVER_NAME": "Renamed", "limits": {"memory_mb": 96}})
    assert r.status_code == 200, r.text
    assert sstack.request("PUT", f"/api/v1/server/restart/{uid}", timeout=120).status_code == 200
    spec = service(swarm, uid)["Spec"]["TaskTemplate"]
    assert "SERVER_NAME=Renamed" in spec["ContainerSpec"]["Env"] and spec["Resources"]["Limits"]["MemoryBytes"] == 96 << 20
    assert node_of(swarm, uid) == nodes[0], "a server never moves"
    assert answers("peonsw-n1", address(swarm, nodes[0]), port_of(swarm, uid))
    r = sstack.request("DELETE", f"/api/v1/server/destroy/{uid}", timeout=120)
    assert r.status_code == 200 and service(swarm, uid) is None
    for uid in uids[1:]:
        assert sstack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120).status_code == 200
        assert not os.path.isdir(os.path.join(swarm["PEON_SWARM_ROOT"], "n" + node_of_gone(nodes, uids, uid)[-1], "data", "servers",
                                              "peontest", uid.split(".")[1]))


def node_of_gone(nodes, uids, uid):
    return nodes[uids.index(uid)]


def test_a_server_still_loading_is_killed_on_its_node_without_waiting(swarm, sstack):
    """A Swarm task stops with the grace it was made with (here the plan's 20 s): one stopped
    before its ready line is killed by its node's agent instead (Tests/fixtures/plans/peonslow)."""
    uid = f"peonslow.{RUN}wk"
    try:
        assert create(sstack, uid, {"START_SECONDS": "60"}).status_code == 200
        started = time.time()
        r = sstack.request("PUT", f"/api/v1/server/stop/{uid}", timeout=120)
        assert r.status_code == 200 and r.json()["container_state"] != "running", r.text
        assert time.time() - started < 15
    finally:
        sstack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120)


def test_every_node_holds_the_egress_rules_and_a_game_cannot_reach_its_node(swarm, sstack):
    """Swarm's tasks run on their node's default bridge: each node's agent installs the rules for it
    (and Peon's bridges) in its node's own firewall; a game on a worker cannot reach its node."""
    from test_egress import LISTENER
    uids, worker = [], None
    for i in range(3):
        uid = f"peontest.{RUN}x{i}"
        r = create(sstack, uid)
        assert r.status_code == 200 and r.json()["container_state"] == "running", r.text
        uids.append(uid)
        if node_of(swarm, uid) != "peonsw-n1":
            worker = uid
            break
    assert worker, "a server on a worker"
    node = node_of(swarm, worker)
    for n in ("peonsw-n1", "peonsw-n2", "peonsw-n3"):
        rules = subprocess.run(["ip", "netns", "exec", n, "iptables", "-w", "-S"], capture_output=True, text=True).stdout.splitlines()
        for line in ("-A INPUT -i docker0 -j PEON-INPUT", "-A INPUT -i peon+ -j PEON-INPUT", "-A FORWARD -i docker0 -j PEON-EGRESS",
                     "-A PEON-INPUT -j DROP", "-A PEON-EGRESS -d 169.254.0.0/16 -j DROP"):
            assert line in rules, (n, rules)
    # A listener on the worker's own address answers from outside the node, not to the node's game.
    port = 18500 + int(RUN[2:4], 16)
    listener = subprocess.Popen(["ip", "netns", "exec", node, "python3", "-c", LISTENER, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline().strip() == "ready"
        with socket.create_connection((address(swarm, node), port), timeout=2) as s:
            assert s.recv(100).startswith(b"peon-egress-reached")
        node_socket = "unix://" + os.path.join(swarm["PEON_SWARM_ROOT"], "n" + node[-1], "docker.sock")
        game = subprocess.run(["docker", "-H", node_socket, "ps", "-q", "--filter", f"label=peon.server={worker}"], capture_output=True,
                              text=True).stdout.split()
        assert game, worker
        out = subprocess.run(["docker", "-H", node_socket, "exec", game[0], "sh", "-c",
                              f"echo hello | nc -w 2 {address(swarm, node)} {port}"], capture_output=True, text=True, timeout=30)
        assert out.stdout.strip() == "", out
    finally:
        listener.kill()
        listener.wait()
        for uid in uids:
            sstack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120)


def test_a_crash_is_restarted_by_peons_policy(swarm, sstack):
    uid = f"peontest.{RUN}wc"
    assert create(sstack, uid, {"MODE": "crash", "CRASH_AFTER": "2"}).status_code == 200
    deadline = time.time() + 30
    while time.time() < deadline and len(tasks(swarm, uid)) < 2:
        time.sleep(0.5)
    assert len(tasks(swarm, uid)) >= 2, "Peon's crash policy started a new task"
    sstack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120)


def test_a_drained_node_is_reported_and_its_server_stays(swarm, sstack):
    uid = f"peontest.{RUN}wd"
    assert create(sstack, uid).status_code == 200
    node = node_of(swarm, uid)
    manager(swarm, "node", "update", "--availability", "drain", node)
    try:
        deadline = time.time() + 30
        state = None
        while time.time() < deadline:
            state = sstack.request("GET", f"/api/v1/server/get/{uid}").json()["container_state"]
            if state == "node_down":
                break
            time.sleep(0.5)
        assert state == "node_down"
        r = sstack.request("PUT", f"/api/v1/server/start/{uid}", timeout=120)
        assert r.status_code == 503 and r.json()["code"] == "node.unavailable", r.text
        assert node_of(swarm, uid) == node, "never re-created elsewhere"
    finally:
        manager(swarm, "node", "update", "--availability", "active", node)
    sstack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120)



def test_a_servers_output_reaches_its_logs(swarm, sstack):
    # The scheduler follows the service's log stream on the manager (Swarm gathers it from the node).
    uid = f"peontest.{RUN}wl"
    assert create(sstack, uid).status_code == 200
    try:
        logs = []
        for _ in range(150):
            r = sstack.request("GET", f"/api/v1/server/logs/{uid}")
            assert r.status_code == 200, r.text
            logs = r.json()["logs"]
            if any("peon test game listening" in line for line in logs):
                break
            time.sleep(0.2)
        assert any("peon test game listening" in line for line in logs), logs
    finally:
        sstack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120)

def server_dir(swarm, node, uid):
    return os.path.join(swarm["PEON_SWARM_ROOT"], "n" + node[-1], "data", "servers", *uid.split("."))


def wait_for(predicate, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


def test_backups_restore_save_and_config_work_on_any_node(swarm, sstack):
    """What was refused on Swarm: backups (made on the server's node, kept on the manager), restore
    (streamed back to the node), PEON's save zip, and server_config read on the node."""
    uid = f"peontest.{RUN}wb"
    r = create(sstack, uid, {"SERVER_NAME": "Swarmy"})
    assert r.status_code == 200, r.text
    node = r.json()["node"]
    home = server_dir(swarm, node, uid)
    try:
        assert wait_for(lambda: sstack.request("GET", f"/api/v1/server/get/{uid}").json()["server_config"].get("server_name") == "Swarmy", 15)
        # A console line into the game's stdin, through its node's engine; the answer is what it printed.
        r = None
        for _ in range(100):
            r = sstack.request("PUT", f"/api/v1/server/console/{uid}", json={"command": "hello swarm"}, timeout=60)
            if r.status_code == 200 and "peon test game got: hello swarm" in r.json()["output"]:
                break
            time.sleep(0.3)
        assert r.status_code == 200 and "peon test game got: hello swarm" in r.json()["output"], r.text
        open(os.path.join(home, "user", "world.txt"), "w").write("day one")
        r = sstack.request("POST", f"/api/v1/server/backup/{uid}", timeout=120)
        assert r.status_code == 201, r.text
        backup = r.json()
        assert backup["size"] > 0 and len(backup["sha256"]) == 64
        # The archive is on the manager's disk (this stack's data dir), not the node's.
        assert os.path.isfile(os.path.join(sstack.data, "backups", "peontest", uid.split(".")[1], backup["name"]))
        open(os.path.join(home, "user", "world.txt"), "w").write("day two")
        r = sstack.request("PUT", f"/api/v1/server/restore/{uid}", json={"id": backup["id"]}, timeout=120)
        assert r.status_code == 200 and r.json()["container_state"] == "running", r.text
        assert open(os.path.join(home, "user", "world.txt")).read() == "day one"
        # PEON's save zip.
        r = sstack.request("GET", f"/api/v1/server/save/{uid}", timeout=120)
        assert r.status_code == 200 and "user/world.txt" in zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    finally:
        sstack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120)


def test_the_files_api_works_on_the_servers_node(swarm, sstack):
    """Files are read and written on the node that holds the server, by its agent; what a game
    planted on that node's disk is refused there."""
    uid = f"peontest.{RUN}wf"
    r = create(sstack, uid, {"SERVER_NAME": "Filed"})
    assert r.status_code == 200, r.text
    home = server_dir(swarm, r.json()["node"], uid)
    try:
        r = sstack.request("PUT", f"/api/v1/server/file/{uid}", params={"path": "user/notes/hello.txt"}, data=b"from the api")
        assert r.status_code == 200, r.text
        assert open(os.path.join(home, "user", "notes", "hello.txt"), "rb").read() == b"from the api"
        r = sstack.request("GET", f"/api/v1/server/file/{uid}", params={"path": "user/notes/hello.txt"})
        assert r.status_code == 200 and r.content == b"from the api", r.text
        entries = sstack.request("GET", f"/api/v1/server/files/{uid}", params={"path": "user/notes"}).json()["entries"]
        assert [(e["name"], e["type"], e["size"]) for e in entries] == [("hello.txt", "file", 12)]
        os.symlink("/etc/hostname", os.path.join(home, "config", "planted"))
        os.mkfifo(os.path.join(home, "config", "pipe"))
        for path in ["config/planted", "config/pipe"]:
            r = sstack.request("GET", f"/api/v1/server/file/{uid}", params={"path": path})
            assert r.status_code == 409 and r.json()["code"] == "file.refused", (path, r.text)
        assert sstack.request("DELETE", f"/api/v1/server/file/{uid}", params={"path": "user/notes"}).status_code == 200
        assert not os.path.exists(os.path.join(home, "user", "notes"))
    finally:
        sstack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120)


def test_console_over_rcon_and_players_from_the_log_on_a_node(swarm, sstack):
    """RCON goes from the server's node to the container (the port is never published); a log
    player count is read on the node, and idle auto-stop acts on it."""
    uid = f"peonrcon.{RUN}wr"
    r = sstack.request("PUT", f"/api/v1/server/create/{uid}", json={"SERVER_NAME": "RCON"}, timeout=120)
    assert r.status_code == 200, r.text
    try:
        deadline, r = time.time() + 30, None
        while time.time() < deadline:
            r = sstack.request("PUT", f"/api/v1/server/console/{uid}", json={"command": "echo swarm"}, timeout=60)
            if r.status_code == 200:
                break
            time.sleep(0.3)
        assert r.status_code == 200 and r.json()["via"] == "rcon" and r.json()["response"] == "swarm", r.text
        assert not any(p["TargetPort"] == 27015 for p in service(swarm, uid)["Spec"]["EndpointSpec"]["Ports"])
    finally:
        sstack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120)

    uid = f"peonlog.{RUN}wp"
    r = create(sstack, uid, {"idle_stop": 1})
    assert r.status_code == 200, r.text
    log = os.path.join(server_dir(swarm, r.json()["node"], uid), "user", "game.log")
    try:
        with open(log, "w") as f:
            f.write("joined: ada\njoined: bob\nleft: ada\n")
        server = lambda: sstack.request("GET", f"/api/v1/server/get/{uid}").json()
        assert wait_for(lambda: server()["players"] == 1, 15), server()
        with open(log, "a") as f:
            f.write("left: bob\n")
        assert wait_for(lambda: server()["players"] == 0, 15), server()
        # A minute at zero players: the scheduler stops it.
        assert wait_for(lambda: server()["container_state"] == "exited", 90), server()
    finally:
        sstack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120)


def test_an_idle_server_sleeps_on_its_node_and_a_client_wakes_it(swarm, sstack):
    """Sleep and wake on Swarm: the server's node agent holds its ports at the node's address,
    answers A2S_INFO marked sleeping, ignores a connect scan, and a TCP connection that speaks
    wakes the server on the same node and ports, then gets the game's answer; a UDP client's
    retry then gets the game's own echo."""
    uid = f"sleepgame.{RUN}wz"
    r = create(sstack, uid, {"idle_stop": 1, "wake_on_connect": True})
    assert r.status_code == 200, r.text
    server = lambda: sstack.request("GET", f"/api/v1/server/get/{uid}").json()
    try:
        node, host = r.json()["node"], r.json()["address"]
        tcp_port, udp_port = host_ports(r.json())
        assert wait_for(lambda: server()["server_state"] == "sleeping", 150), server()

        def held():
            try:
                return a2s_info(udp_port, host)
            except OSError:
                return None
        assert wait_for(lambda: held() is not None, 15), server()
        name, players = held()
        assert name.endswith(" (sleeping)") and players == 0, name
        socket.create_connection((host, tcp_port), timeout=3).close()
        time.sleep(2)
        assert server()["server_state"] == "sleeping", server()
        with socket.create_connection((host, tcp_port), timeout=90) as connection:
            connection.sendall(b"awake on the swarm\n")
            assert read_line(connection) == b"awake on the swarm\n", server()
        now = server()
        assert now["server_state"] == "running" and now["ready"] and now["node"] == node and now["ports"] == r.json()["ports"], now
        with udp("0.0.0.0") as client:
            assert echoed(client, udp_port, b"after the wake", host=host)
    finally:
        sstack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120)


def luanti_answers(host, port, timeout=120.0):
    """A Luanti client's first datagram (test_games.HANDSHAKE) until the server answers."""
    from test_games import HANDSHAKE
    deadline = time.time() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        while time.time() < deadline:
            s.sendto(HANDSHAKE, (host, port))
            try:
                reply, _ = s.recvfrom(1024)
                return reply[:4] == HANDSHAKE[:4]
            except OSError:
                time.sleep(0.3)
    return False


def test_a_real_game_built_by_peon_plays_on_a_worker_node(swarm, sstack):
    """Luanti, created through the API: its runtime image is on the manager, Peon pushes it to the
    registry (PEON_REGISTRY), and the worker node the server lands on pulls it from there."""
    # The test swarm's manager has no route out (apt there cannot reach Debian's archive), so the
    # image is built by Peon on this host's engine, then loaded into the manager as if built there
    # (the same inputs, the same base image: the same tag). The push and the pull are Swarm's own.
    host = Stack()
    try:
        uid = f"luanti.{RUN}hb"
        r = host.request("PUT", f"/api/v1/server/create/{uid}", json={"SERVER_NAME": "Build", "start_later": True}, timeout=900)
        assert r.status_code == 200, r.text
        image = docker("GET", f"/containers/peon.warcamp.{uid}/json")["Config"]["Image"]
        host.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120)
    finally:
        host.cleanup()
    pushed = f"{swarm['PEON_SWARM_REGISTRY']}/{image}"
    subprocess.run(["docker", "tag", image, pushed], check=True)
    subprocess.run(f"docker save {pushed} | docker -H unix://{swarm['PEON_SWARM_MANAGER']} load -q", shell=True, check=True, timeout=600)
    subprocess.run(["docker", "rmi", pushed], capture_output=True)
    # Only workers take new servers meanwhile.
    manager(swarm, "node", "update", "--availability", "pause", "peonsw-n1")
    uid = f"luanti.{RUN}wg"
    try:
        r = sstack.request("PUT", f"/api/v1/server/create/{uid}", json={"SERVER_NAME": "Swarm Luanti"}, timeout=900)
        assert r.status_code == 200 and r.json()["container_state"] == "running", r.text
        obj = r.json()
        assert obj["node"] in ("peonsw-n2", "peonsw-n3") and obj["address"] == address(swarm, obj["node"]), obj
        assert service(swarm, uid)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].startswith(pushed)
        port = next(p["port"] for p in obj["ports"] if p["name"] == "PORT")
        assert luanti_answers(obj["address"], port), "Luanti answers a client's handshake on the worker's address"
        # The plan's Luanti probe, asked by the worker's agent, found it joinable too.
        deadline = time.time() + 60
        while time.time() < deadline and not sstack.request("GET", f"/api/v1/server/get/{uid}").json()["ready"]:
            time.sleep(0.5)
        assert sstack.request("GET", f"/api/v1/server/get/{uid}").json()["server_state"] == "running"
    finally:
        manager(swarm, "node", "update", "--availability", "active", "peonsw-n1")
        sstack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120)


def agent_refuses(from_ns, address):
    """Whether Peon's node agent refuses a caller without Peon's client certificate, asked from
    inside a node's network namespace (where a game container's traffic comes from): the TLS
    handshake fails (curl 35 or 56), so no operation is ever read. Retried while the task starts."""
    codes = []
    for _ in range(50):
        out = subprocess.run(["ip", "netns", "exec", from_ns, "curl", "-sk", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}",
                              "-X", "POST", "--data", '{"op":"manifests"}', f"https://{address}:7380/"], capture_output=True, text=True)
        if out.returncode in (35, 56) and out.stdout == "000":
            return True
        codes.append((out.returncode, out.stdout))  # not listening yet (7), restarting (28): ask again
        time.sleep(0.2)
    print("agent answers", codes)
    return False


def agent_service(swarm):
    return json.loads(manager(swarm, "service", "inspect", "peon-agent"))[0]


def test_a_destroyed_servers_folder_is_erased_by_uid_on_its_node(swarm, sstack):
    # PEON's web UI destroys without erasing; the erase later finds the folder on the node that
    # holds it: by the node's label, which a destroy leaves, or, with the label lost, by its manifest.
    uid = f"peontest.{RUN}we"
    for lose_label in (False, True):
        assert create(sstack, uid).status_code == 200
        node = node_of(swarm, uid)
        folder = server_dir(swarm, node, uid)
        assert sstack.request("DELETE", f"/api/v1/server/destroy/{uid}", timeout=120).status_code == 200
        assert service(swarm, uid) is None and os.path.isdir(folder), "destroy keeps the folder on its node"
        if lose_label:
            manager(swarm, "node", "update", "--label-rm", f"peon.server.{uid}", node)
        r = sstack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120)
        assert r.status_code == 200 and "will be purged" in r.json()["info"], r.text
        assert not os.path.exists(folder)
        labels = json.loads(manager(swarm, "node", "inspect", node))[0]["Spec"]["Labels"]
        assert f"peon.server.{uid}" not in labels
    r = sstack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120)
    assert r.status_code == 404 and r.json()["code"] == "server.not_found", r.text


def test_the_node_agent_refuses_strangers_and_a_restarted_scheduler_leaves_it_as_it_is(swarm, sstack):
    # The scheduler deployed it: one global service of Peon's, a running task on every node.
    agent = agent_service(swarm)
    assert agent["Spec"]["Mode"] == {"Global": {}} and agent["Spec"]["Labels"]["peon.agent"] == "true"
    running = manager(swarm, "service", "ps", "--filter", "desired-state=running", "--format", "{{.Node}}", "peon-agent").split()
    assert sorted(running) == ["peonsw-n1", "peonsw-n2", "peonsw-n3"], running
    # It is Peon's own executable, as the games' user, with only NET_ADMIN left (ambient) and bounded.
    spec = agent["Spec"]["TaskTemplate"]
    assert spec["ContainerSpec"]["Command"] == ["/opt/peon/bin/peon-agent"] and spec["ContainerSpec"]["ReadOnly"]
    assert spec["ContainerSpec"]["CapabilityDrop"] == ["ALL"] and spec["Resources"]["Limits"]["Pids"] > 0
    assert sorted(s["File"]["Name"] for s in spec["ContainerSpec"]["Secrets"]) == ["peon-agent-ca.pem", "peon-agent-cert.pem",
                                                                                     "peon-agent-key.pem"]
    pids = subprocess.run(["pgrep", "-f", "^/opt/peon/bin/peon-agent"], capture_output=True, text=True).stdout.split()
    assert len(pids) >= 3, "an agent process on every node"
    for pid in pids:
        status = open(f"/proc/{pid}/status").read()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        assert fields["Uid"].split()[:2] == ["1000", "1000"] and fields["CapEff"].strip() == "0" * 16, status
        # CAP_NET_ADMIN alone stays, ambient, for the iptables of the node's egress rules.
        assert fields["CapPrm"].strip() == fields["CapAmb"].strip() == f"{1 << 12:016x}", status
    # Without Peon's client certificate every node's agent refuses at the handshake.
    for node in ("peonsw-n1", "peonsw-n2", "peonsw-n3"):
        assert agent_refuses("peonsw-n2", address(swarm, node)), node
    # A new scheduler on the same store (same keys) finds the agent as it wants it: no update.
    # (Last in this file: the module's stack is stopped here.)
    version = agent["Version"]["Index"]
    sstack.stop()
    again = Stack(env={**{k: sstack.env[k] for k in ("PEON_PLATFORM", "PEON_DOCKER_SOCKET", "PEON_SWARM_DATA", "PEON_AGENT_IMAGE",
                                                       "PEON_SWARM_NODE_SOCKET", "PEON_BUNDLED_PLANS", "PEON_REGISTRY", "PEON_DATA_DIR",
                                                       "PEON_GAME_EGRESS")}})
    again.data = sstack.data  # its TLS certificate is there too
    try:
        uid = f"peontest.{RUN}wa"
        r = create(again, uid)
        assert r.status_code == 200 and r.json()["container_state"] == "running", r.text
        assert agent_service(swarm)["Version"]["Index"] == version
        # Keys rotated on demand: the running scheduler takes them and updates the agents at its next
        # node operation; the server's files are still reached.
        out = again.peon("agent-keys", "rotate")
        assert out.returncode == 0, out.stdout + out.stderr
        time.sleep(6)
        r = again.request("POST", f"/api/v1/server/backup/{uid}", timeout=120)
        assert r.status_code == 201, r.text
        assert agent_service(swarm)["Version"]["Index"] > version, "the agents run with the new keys"
        assert again.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120).status_code == 200
    finally:
        again.cleanup()
