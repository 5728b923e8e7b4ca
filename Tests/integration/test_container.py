"""The container deployment: the Dockerfile's runtime stage, built from this host's binaries
(--build-arg PEON_PREBUILT=1, scripts/image.sh: the Swift build image cannot be pulled here), started
with compose.yaml as it ships (only the image, ports, labels and test plans changed), driven over
HTTPS from the host: a game server is created, started, stopped and destroyed on the host's engine,
and its files appear in the host's ./var (PEON_HOST_DIR=auto). The node's work goes to Peon's node
agent beside the stack (host network), so RCON, A2S player counts and idle stop work here too."""
import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest
import requests
import yaml

from conftest import BIN, ROOT, RUN, free_port
from test_players import A2S, a2s_plan
from test_servers import SETTINGS, container
from test_sleep import a2s_info, echoed, host_ports, read_line, sleep_plan, udp

PLANS = os.path.join(ROOT, "Tests", "fixtures", "plans")

KEY = "container-key-" + os.urandom(8).hex()
IMAGE = f"peon:test-{RUN}"
PROJECT = f"peon{RUN}"


def compose_command():
    """Debian 12's docker-compose 1.29, else Compose v2."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    pytest.skip("neither docker-compose nor docker compose is installed (scripts/deps.sh test installs it)")


def wait_until(predicate, timeout, step=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


class Deployment:
    def __init__(self, project_dir, compose):
        self.dir, self.compose = project_dir, compose

    def run(self, *args, check=True):
        out = subprocess.run([*self.compose, "-p", PROJECT, *args], cwd=self.dir, capture_output=True, text=True, timeout=180)
        assert not check or out.returncode == 0, out.stdout + out.stderr
        return out

    def container_id(self, service="peon"):
        return self.run("ps", "-q", service).stdout.strip()

    def inspect(self):
        return json.loads(subprocess.run(["docker", "inspect", self.container_id()], capture_output=True, text=True).stdout)[0]

    def logs(self):
        return self.run("logs", "--no-color", "peon", check=False).stdout

    def url(self, path):
        return f"https://127.0.0.1:{self.https_port}{path}"

    def request(self, method, path, **kw):
        kw.setdefault("timeout", 60)
        return requests.request(method, self.url(path), headers={"X-Api-Key": KEY}, verify=os.path.join(self.dir, "var", "tls", "cert.pem"), **kw)


@pytest.fixture(scope="module")
def deployment():
    with deployed(BIN, compose_command()) as d:
        yield d


@contextlib.contextmanager
def deployed(bin_dir, compose):
    """The image built from `bin_dir`, started with compose.yaml; removed again on exit (also used
    by bench/node.py)."""
    started = time.time()
    build = subprocess.run([os.path.join(ROOT, "scripts", "image.sh"), IMAGE, bin_dir], capture_output=True, text=True, timeout=900,
                           env={**os.environ, "PEON_IMAGE_BUILD_FLAGS": f"--label peon.test={RUN}"})
    assert build.returncode == 0, build.stdout + build.stderr
    print(f"image built from {bin_dir} in {time.time() - started:.1f} s")
    project_dir = tempfile.mkdtemp(prefix="peon-compose-")
    # Test plans: the bundled test game, the RCON one, and one counted over A2S.
    plans = os.path.join(project_dir, "plans")
    shutil.copytree(os.path.join(ROOT, "plans", "peontest"), os.path.join(plans, "peontest"))
    shutil.copytree(os.path.join(PLANS, "peonrcon"), os.path.join(plans, "peonrcon"))
    a2s_plan(plans)
    sleep_plan(plans)
    # compose.yaml as shipped; only what would collide with the machine or other runs changes.
    spec = yaml.safe_load(open(os.path.join(ROOT, "compose.yaml")))
    service = spec["services"]["peon"]
    service.pop("build")
    service["image"] = IMAGE
    # Free ports, the same inside and out: the 308's Location names PEON_HTTPS_PORT.
    https_port, http_port = free_port(), free_port()
    service["ports"] = [f"127.0.0.1:{https_port}:{https_port}", f"127.0.0.1:{http_port}:{http_port}"]
    service["labels"] = {"peon.test": RUN}
    service["environment"].update({"PEON_LABELS": f"peon.test={RUN}", "PEON_GAME_BIND": "127.0.0.1", "PEON_PORT_RANGE": "43000-43999",
                                   "PEON_WORKERS": "2", "PEON_BUNDLED_PLANS": "/srv/peon/test-plans", "PEON_PLAYER_POLL_SECONDS": "1",
                                   "PEON_IDLE_MINUTE_SECONDS": "15",
                                   "PEON_HTTPS_PORT": str(https_port), "PEON_HTTP_PORT": str(http_port)})
    service["volumes"].append(f"{plans}:/srv/peon/test-plans:ro")
    agent = spec["services"]["agent"]
    agent["image"] = IMAGE
    agent["labels"] = {"peon.test": RUN}
    agent["environment"]["PEON_GAME_BIND"] = "127.0.0.1"
    service["healthcheck"] = {"interval": "1s"}  # the image's own check, tried every second here
    spec["networks"]["default"] = {"labels": {"peon.test": RUN}}
    spec["networks"]["clients"]["labels"] = {"peon.test": RUN}
    with open(os.path.join(project_dir, "compose.yaml"), "w") as f:
        yaml.safe_dump(spec, f)
    # ./var as an earlier image that ran as root left it: the entrypoint hands it to peon.
    os.makedirs(os.path.join(project_dir, "var", "log"))
    open(os.path.join(project_dir, "var", "log", "old.log"), "w").close()
    with open(os.path.join(project_dir, "peon.env"), "w") as f:
        f.write(f"PEON_API_KEY={KEY}\n")
    d = Deployment(project_dir, compose)
    d.https_port, d.http_port = https_port, http_port
    try:
        d.run("-f", "compose.yaml", "up", "-d", "--no-build")
        assert wait_until(lambda: d.inspect()["State"].get("Health", {}).get("Status") == "healthy", 60), d.logs()
        print(f"healthy {time.time() - started:.1f} s after the build started")
        yield d
    finally:
        d.run("down", "--timeout", "20", check=False)
        subprocess.run(["docker", "rmi", IMAGE], capture_output=True)
        shutil.rmtree(project_dir, ignore_errors=True)


def process_status(pid):
    """The name, /proc/<pid>/status fields and arguments of a process (None once it is gone)."""
    try:
        status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status").read().splitlines() if ":" in line)
        args = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode().strip()
    except OSError:
        return None
    return {k: v.strip() for k, v in status.items()}, args


def container_processes(container_id):
    """Host pids (docker top) with their status and arguments."""
    out = subprocess.run(["docker", "top", container_id, "-eo", "pid"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    found = {int(pid): process_status(pid) for pid in out.stdout.split()[1:]}
    return {pid: info for pid, info in found.items() if info is not None}


# CAP_SETGID and CAP_SETPCAP: stack.sh hands the socket's group to the scheduler and drops the rest.
SUPERVISOR_CAPS = f"{(1 << 6) | (1 << 8):016x}"


def test_the_stack_runs_as_peon_and_only_the_scheduler_holds_the_socket_group(deployment):
    # The Docker socket's group is root on the host: nginx and the API workers, which face the
    # network, must not hold it; only the scheduler and the node agent drive the engine.
    socket_gid = str(os.stat("/var/run/docker.sock").st_gid)
    holders, seen = set(), []
    for service in ("peon", "agent"):
        for pid, (status, args) in container_processes(deployment.container_id(service)).items():
            # tini (pid 1, reaps and forwards signals) stays root; so does the HEALTHCHECK's curl,
            # which the engine runs as the image's user beside the stack.
            if args.startswith("/usr/bin/tini") or "/api/v1/orchestrator" in args:
                continue
            seen.append(args)
            assert status["Uid"].split() == ["1000"] * 4 and status["Gid"].split() == ["1000"] * 4, (status, args)
            if socket_gid in status["Groups"].split():
                holders.add(args.split()[0])
            if args.endswith("/opt/peon/scripts/stack.sh"):
                assert status["CapEff"] == status["CapBnd"] == SUPERVISOR_CAPS and status["Groups"] == "", (status, args)
            elif args.startswith("/opt/peon/bin/peon-agent"):
                # NET_ADMIN (bit 12) alone, ambient only, for the iptables it runs (test_the_agent_... below).
                assert status["CapEff"] == "0" * 16 and status["CapAmb"] == "0000000000001000", (status, args)
            else:
                assert status["CapEff"] == status["CapPrm"] == status["CapAmb"] == "0" * 16, (status, args)
            if service == "peon" and not args.endswith("stack.sh"):
                # setpriv: no capability to regain, no extra group but the scheduler's.
                assert status["CapBnd"] == "0" * 16 and status["NoNewPrivs"] == "1", (status, args)
                assert status["Groups"] == ("" if "peon-scheduler" not in args else socket_gid), (status, args)
    assert holders == {"/opt/peon/bin/peon-scheduler", "/opt/peon/bin/peon-agent"}, (holders, seen)
    names = {args.split()[0] for args in seen}
    assert {"/opt/peon/bin/peon-api", "/opt/peon/bin/peon-scheduler", "nginx:", "/opt/peon/bin/peon-agent"} <= names, seen
    assert sum(args.startswith("/opt/peon/bin/peon-api") for args in seen) >= 3, seen  # the supervisor and 2 workers
    r = deployment.request("GET", "/api/v1/orchestrator")
    assert r.status_code == 200 and r.json()["scheduler"]["running"], r.text
    # The admin CLI, as operations.md says to run it.
    keys = deployment.run("exec", "-T", "-u", "peon", "peon", "peon", "key", "list")
    assert "admin" in keys.stdout, keys.stdout + keys.stderr
    for path in ("var", "var/log", "var/log/old.log", "var/peon.db"):
        assert os.stat(os.path.join(deployment.dir, path)).st_uid == 1000, path


def test_a_game_server_lives_on_the_hosts_engine_with_files_in_the_host_dir(deployment):
    uid = f"peontest.{RUN}c"
    server_dir = os.path.join(deployment.dir, "var", "servers", "peontest", f"{RUN}c")
    r = deployment.request("PUT", f"/api/v1/server/create/{uid}", json=SETTINGS)
    assert r.status_code == 200 and r.json()["container_state"] == "running", r.text
    # The engine bind-mounted the host's ./var, which the container sees at /srv/peon/var.
    mounts = {m["Destination"]: m["Source"] for m in container(uid)["Mounts"]}
    assert mounts["/home/steam/config"] == os.path.join(server_dir, "config"), mounts
    state = os.path.join(server_dir, "config", "state")
    assert wait_until(lambda: os.path.exists(state) and open(state).read() == "STARTED\n", 10)
    # Joinable: the agent beside the stack found the game accepting on its port (the plan's tcp probe).
    assert wait_until(lambda: deployment.request("GET", f"/api/v1/server/get/{uid}").json()["ready"], 20)
    assert os.stat(server_dir).st_uid == 1000
    r = deployment.request("PUT", f"/api/v1/server/stop/{uid}")
    assert r.status_code == 200 and r.json()["container_state"] == "exited", r.text
    assert open(state).read() == "OFFLINE\n"
    r = deployment.request("PUT", f"/api/v1/server/start/{uid}")
    assert r.status_code == 200 and r.json()["container_state"] == "running", r.text
    assert wait_until(lambda: open(state).read() == "STARTED\n", 10)
    # A console line into the game's stdin, through the agent beside the stack; the answer is what it printed.
    r = None
    for _ in range(50):
        r = deployment.request("PUT", f"/api/v1/server/console/{uid}", json={"command": "hello container"})
        if r.status_code == 200 and "peon test game got: hello container" in r.json()["output"]:
            break
        time.sleep(0.3)
    assert r.status_code == 200 and "peon test game got: hello container" in r.json()["output"], r.text
    r = deployment.request("DELETE", f"/api/v1/server/destroy/{uid}", json={"eradicate": True})
    assert r.status_code == 200, r.text
    assert container(uid).get("message", "").startswith("No such container"), container(uid)
    assert wait_until(lambda: not os.path.exists(server_dir), 20)


def test_the_agent_beside_the_stack_is_the_games_user_with_only_net_admin_ambient(deployment):
    agent = deployment.container_id("agent")
    assert agent, deployment.run("logs", "agent", check=False).stdout
    info = json.loads(subprocess.run(["docker", "inspect", agent], capture_output=True, text=True).stdout)[0]
    assert info["HostConfig"]["NetworkMode"] == "host" and info["HostConfig"]["ReadonlyRootfs"]
    pid = str(info["State"]["Pid"])
    # tini is pid 1 of the container; the agent is its child.
    children = open(f"/proc/{pid}/task/{pid}/children").read().split()
    assert children, "the agent runs"
    status = dict(line.split(":", 1) for line in open(f"/proc/{children[0]}/status").read().splitlines() if ":" in line)
    assert status["Uid"].split()[:2] == ["1000", "1000"] and status["CapEff"].strip() == "0" * 16, status
    # CAP_NET_ADMIN (bit 12) alone stays, ambient, for the iptables it runs (the games' egress rules).
    net_admin = f"{1 << 12:016x}"
    assert status["CapPrm"].strip() == net_admin and status["CapAmb"].strip() == net_admin, status
    assert status["CapInh"].strip() == net_admin, status
    # Its socket is the games' user's alone.
    sock = os.path.join(deployment.dir, "var", "run", "agent", "agent.sock")
    st = os.stat(sock)
    assert st.st_uid == 1000 and st.st_mode & 0o777 == 0o600, oct(st.st_mode)


def test_the_agent_installs_the_games_egress_rules(deployment):
    """The scheduler in its container has no say over the host's firewall: the agent beside it,
    on the host's network, installs the rules (at the scheduler's start and before each start)."""
    from conftest import remove_peon_rules
    from test_egress import ANSWER, peon_rules, reach, serve
    try:
        assert wait_until(lambda: "-A INPUT -i peon+ -j PEON-INPUT" in peon_rules(), 20), deployment.logs()
        uid = f"peontest.{RUN}x"
        r = deployment.request("PUT", f"/api/v1/server/create/{uid}", json=SETTINGS)
        assert r.status_code == 200 and r.json()["container_state"] == "running", r.text
        info = container(uid)
        network = json.loads(subprocess.run(["docker", "network", "inspect", info["HostConfig"]["NetworkMode"]], capture_output=True,
                                            text=True).stdout)[0]
        assert network["Options"]["com.docker.network.bridge.name"].startswith("peon")
        # The bridge's gateway is the host: the agent's own listeners there are out of a game's reach.
        gateway = network["IPAM"]["Config"][0]["Gateway"]
        with socket.socket() as listener:
            listener.bind((gateway, 0))
            listener.listen(4)
            threading.Thread(target=serve, args=(listener,), daemon=True).start()
            with socket.create_connection((gateway, listener.getsockname()[1]), timeout=2) as s:
                assert s.recv(100).startswith(ANSWER)
            assert reach(info["Id"], gateway, listener.getsockname()[1]) == ""
        deployment.request("DELETE", f"/api/v1/server/destroy/{uid}", json={"eradicate": True})
    finally:
        remove_peon_rules()


def test_rcon_backups_config_and_logs_work_in_the_container(deployment):
    uid = f"peonrcon.{RUN}cr"
    r = deployment.request("PUT", f"/api/v1/server/create/{uid}", json={"SERVER_NAME": "Composed"})
    assert r.status_code == 200, r.text
    try:
        # RCON: the agent on the host's network reaches the game on its own network.
        r = None
        for _ in range(100):
            r = deployment.request("PUT", f"/api/v1/server/console/{uid}", json={"command": "echo compose"})
            if r.status_code == 200:
                break
            time.sleep(0.3)
        assert r.status_code == 200 and r.json()["via"] == "rcon" and r.json()["response"] == "compose", r.text
        # Backups and restore through the agent; the archive lands in ./var/backups.
        home = os.path.join(deployment.dir, "var", "servers", "peonrcon", f"{RUN}cr")
        open(os.path.join(home, "config", "world.txt"), "w").write("before")
        r = deployment.request("POST", f"/api/v1/server/backup/{uid}")
        assert r.status_code == 201, r.text
        backup = r.json()
        assert os.path.isfile(os.path.join(deployment.dir, "var", "backups", "peonrcon", f"{RUN}cr", backup["name"]))
        open(os.path.join(home, "config", "world.txt"), "w").write("after")
        r = deployment.request("PUT", f"/api/v1/server/restore/{uid}", json={"id": backup["id"]})
        assert r.status_code == 200 and r.json()["container_state"] == "running", r.text
        assert open(os.path.join(home, "config", "world.txt")).read() == "before"
        # Config (the scheduler's snapshot, read through the agent) and logs.
        assert wait_until(lambda: deployment.request("GET", f"/api/v1/server/get/{uid}").json()["server_config"].get("world.txt")
                          == "before", 15)
        assert wait_until(lambda: deployment.request("GET", f"/api/v1/server/logs/{uid}").json()["logs"], 15)
        # The files API through the agent: an edit lands on the host's disk, a planted link is refused.
        r = deployment.request("PUT", f"/api/v1/server/file/{uid}", params={"path": "config/world.txt"}, data=b"edited")
        assert r.status_code == 200 and r.json()["size"] == 6, r.text
        assert open(os.path.join(home, "config", "world.txt")).read() == "edited"
        assert deployment.request("GET", f"/api/v1/server/file/{uid}", params={"path": "config/world.txt"}).content == b"edited"
        os.symlink("/etc/shadow", os.path.join(home, "config", "shadow"))
        r = deployment.request("GET", f"/api/v1/server/file/{uid}", params={"path": "config/shadow"})
        assert r.status_code == 409 and r.json()["code"] == "file.refused", r.text
        names = {e["name"] for e in deployment.request("GET", f"/api/v1/server/files/{uid}", params={"path": "config"}).json()["entries"]}
        assert {"world.txt", "shadow"} <= names, names
        # Rotating the agent's keys on demand: the scheduler and the agent take the new ones, RCON goes on.
        before = open(os.path.join(deployment.dir, "var", "agent", "peon-agent-cert.pem")).read()
        out = deployment.run("exec", "-T", "-u", "peon", "peon", "peon", "agent-keys", "rotate")
        assert "new node agent keys stored" in out.stdout, out.stdout + out.stderr
        assert wait_until(lambda: open(os.path.join(deployment.dir, "var", "agent", "peon-agent-cert.pem")).read() != before, 15)
        assert wait_until(lambda: deployment.request("PUT", f"/api/v1/server/console/{uid}", json={"command": "echo rotated"}).json()
                          .get("response") == "rotated", 20)
    finally:
        deployment.request("DELETE", f"/api/v1/server/eradicate/{uid}")


def test_players_are_counted_and_an_idle_server_stops_in_the_container(deployment):
    uid = f"a2sgame.{RUN}ca"
    r = deployment.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, "idle_stop": 1})
    assert r.status_code == 200, r.text
    port = r.json()["ports"][0]["port"]
    # The game publishes its port over TCP only: the UDP port on the host's loopback is the stand-in's.
    stand_in = A2S(port, players=2)
    try:
        server = lambda: deployment.request("GET", f"/api/v1/server/get/{uid}").json()
        assert wait_until(lambda: server()["players"] == 2, 20), server()
        assert server()["max_players"] == 16
        stand_in.players = 0
        assert wait_until(lambda: server()["players"] == 0, 20), server()
        assert wait_until(lambda: server()["container_state"] == "exited", 90), server()
    finally:
        stand_in.close()
        deployment.request("DELETE", f"/api/v1/server/eradicate/{uid}")


def socket_answers(port):
    try:
        a2s_info(port)
        return True
    except OSError:
        return False


def test_an_idle_server_sleeps_and_a_client_wakes_it_in_the_container(deployment):
    """Sleep and wake through the compose agent (it holds the ports on the host's network): the
    sleeping server answers A2S_INFO marked sleeping, a connect scan does not wake it, a TCP
    connection that speaks does and gets the game's answer; a UDP client's retry then gets the
    game's own echo on the same port."""
    uid = f"sleepgame.{RUN}cz"
    r = deployment.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, "idle_stop": 1, "wake_on_connect": True})
    assert r.status_code == 200 and r.json()["wake_on_connect"] is True, r.text
    server = lambda: deployment.request("GET", f"/api/v1/server/get/{uid}").json()
    try:
        tcp_port, udp_port = host_ports(server())
        assert wait_until(lambda: server()["server_state"] == "sleeping", 150, step=1), server()
        # The agent holds the ports once the container stopped (a moment after `sleeping` shows).
        assert wait_until(lambda: socket_answers(udp_port), 10), server()
        name, players = a2s_info(udp_port)
        assert name.endswith(" (sleeping)") and players == 0, name
        socket.create_connection(("127.0.0.1", tcp_port), timeout=3).close()
        time.sleep(2)
        assert server()["server_state"] == "sleeping", server()
        with socket.create_connection(("127.0.0.1", tcp_port), timeout=60) as held:
            held.sendall(b"awake in the container\n")
            assert read_line(held) == b"awake in the container\n", server()
        assert server()["server_state"] == "running" and server()["ready"], server()
        assert server()["ports"] == r.json()["ports"], "a wake keeps the server's ports"
        with udp() as client:
            assert echoed(client, udp_port, b"after the wake")
    finally:
        deployment.request("DELETE", f"/api/v1/server/eradicate/{uid}")


def test_a_client_on_the_internal_network_talks_plain_http_and_nobody_else_does(deployment):
    """compose.yaml's `clients` network: a container there (PEON's web UI or bot; a busybox
    stand-in here) reaches the API in plain HTTP, without a certificate; the published HTTP port
    still only redirects."""
    network = f"{PROJECT}_clients"
    out = subprocess.run(["docker", "run", "--rm", "--network", network, "--label", f"peon.test={RUN}", "--entrypoint", "busybox",
                          "peon-test-game:latest", "wget", "-q", "-O", "-", "--header", f"X-Api-Key: {KEY}",
                          f"http://172.31.250.2:{deployment.http_port}/api/v1/servers"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip().startswith("["), out.stdout + out.stderr
    r = requests.get(f"http://127.0.0.1:{deployment.http_port}/api/v1/servers", headers={"X-Api-Key": KEY}, allow_redirects=False, timeout=10)
    assert r.status_code == 308, r.text


def test_http_redirect_and_clean_stop(deployment):
    r = requests.put(f"http://127.0.0.1:{deployment.http_port}/api/v1/plans", headers={"X-Api-Key": KEY}, json={}, verify=os.path.join(deployment.dir, "var", "tls", "cert.pem"),
                     timeout=30)
    assert [h.status_code for h in r.history] == [308] and r.status_code == 200, r.text
    # The certificate renewal hook's reload: tini forwards SIGHUP to the stack, which reloads nginx.
    deployment.run("kill", "-s", "HUP", "peon")
    assert wait_until(lambda: "nginx reloading (SIGHUP)" in deployment.logs(), 10), deployment.logs()
    assert deployment.request("GET", "/api/v1/orchestrator").status_code == 200
    assert deployment.inspect()["State"]["Running"]
    deployment.run("stop", "--timeout", "20")
    state = deployment.inspect()["State"]
    assert state["ExitCode"] == 0, (state, deployment.logs())
    assert "peon stopped" in deployment.logs()

