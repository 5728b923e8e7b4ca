"""Peon as a service: the stack restarts what dies, a poison job cannot keep the scheduler down,
workers do not run as root, and faults (scheduler killed mid-crash, full disk) heal."""
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import RUN
from test_servers import SETTINGS, container

# Mounting a tmpfs, a network namespace and the `peon` user need root.
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def child_pid(stack, name):
    """The pid of a direct child of the stack script (peon-api, peon-scheduler, nginx)."""
    for _ in range(100):
        out = subprocess.run(["pgrep", "-P", str(stack.proc.pid), "-x", name], capture_output=True, text=True).stdout.split()
        if out:
            return int(out[0])
        time.sleep(0.05)
    raise AssertionError(f"no {name} under the stack: " + stack.output())


def scheduler_running(stack):
    return stack.request("GET", "/api/v1/orchestrator").json()["scheduler"]["running"]


def wait_until(predicate, timeout, step=0.05):
    """The predicate's first true value within `timeout` seconds, else False."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return False


def wait_job(stack, job_id, timeout=60):
    assert wait_until(lambda: stack.request("GET", f"/api/v1/jobs/{job_id}").json()["state"] in ("succeeded", "failed"), timeout)
    return stack.request("GET", f"/api/v1/jobs/{job_id}").json()


class Reader(threading.Thread):
    """GETs at about 20 requests per second until stopped; keeps every failure."""

    def __init__(self, stack, path="/api/v1/servers"):
        super().__init__(daemon=True)
        self.stack, self.path, self.done, self.count, self.failures = stack, path, threading.Event(), 0, []

    def run(self):
        import requests
        session = requests.Session()
        cert = os.path.join(self.stack.data, "tls", "cert.pem")
        while not self.done.is_set():
            started = time.time()
            try:
                r = session.get(self.stack.url(self.path), headers={"X-Api-Key": self.stack.api_key}, verify=cert, timeout=5)
                if r.status_code != 200:
                    self.failures.append(r.status_code)
            except Exception as e:  # noqa: BLE001 - any failure counts
                self.failures.append(repr(e))
            self.count += 1
            time.sleep(max(0.0, 0.05 - (time.time() - started)))

    def stop(self):
        self.done.set()
        self.join(10)


def test_sigkill_of_the_scheduler_is_survived_and_reads_never_fail(make_stack):
    s = make_stack()
    assert wait_until(lambda: scheduler_running(s), 10)
    reader = Reader(s)
    reader.start()
    time.sleep(1)
    old = child_pid(s, "peon-scheduler")
    os.kill(old, signal.SIGKILL)
    killed = time.time()
    seen_down = wait_until(lambda: not scheduler_running(s), 3, step=0.02)
    down_at = time.time()
    assert seen_down, "the orchestrator shows the scheduler down at once"
    uid = f"peontest.{RUN}sv"
    r = s.request("PUT", f"/api/v1/server/create/{uid}", json=SETTINGS)
    assert r.status_code == 503 and r.json()["code"] == "scheduler.down", r.text
    assert wait_until(lambda: scheduler_running(s), 5, step=0.05), s.output()
    up_after = time.time() - killed
    assert up_after <= 5, up_after
    assert child_pid(s, "peon-scheduler") != old
    r = s.request("PUT", f"/api/v1/server/create/{uid}", json=SETTINGS)
    assert r.status_code == 200 and r.json()["container_state"] == "running", r.text
    time.sleep(0.5)
    reader.stop()
    assert reader.failures == [] and reader.count >= 40, (reader.failures, reader.count)
    assert "peon-scheduler exited unexpectedly (killed by signal 9" in s.output()
    assert s.request("DELETE", f"/api/v1/server/eradicate/{uid}").status_code == 200
    print(f"scheduler down seen after {down_at - killed:.2f} s, up after {up_after:.2f} s, {reader.count} reads, 0 failed")


def alive(pid):
    """Running, not a zombie waiting to be reaped."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def answers(stack):
    try:
        return stack.request("GET", "/api/v1/orchestrator").status_code == 200
    except Exception:  # noqa: BLE001 - not up yet
        return False


def test_nginx_and_the_api_pool_are_restarted_and_sigterm_still_stops_all(make_stack):
    s = make_stack()
    for name in ("nginx", "peon-api"):
        old = child_pid(s, name)
        os.kill(old, signal.SIGKILL)
        assert wait_until(lambda: child_pid(s, name) != old and answers(s), 10), s.output()
        assert f"{name} exited unexpectedly (killed by signal 9" in s.output()
        if name == "nginx":
            # The dead master's orphaned workers (holding the ports) went with it.
            left = subprocess.run(["pgrep", "-g", str(old)], capture_output=True, text=True).stdout.split()
            assert all(not alive(pid) for pid in left), left
    assert s.stop() == 0
    assert "peon stopped" in s.output()


def test_a_job_that_kills_the_scheduler_twice_fails_and_the_scheduler_stays_up(make_stack):
    s = make_stack(env={"PEON_TEST_CRASH_ON_JOB": "restart"})
    uid = f"peontest.{RUN}pj"
    assert s.request("PUT", f"/api/v1/server/create/{uid}", json=SETTINGS).status_code == 200
    r = s.request("PUT", f"/api/v1/server/restart/{uid}?async=true")
    assert r.status_code == 202, r.text
    job = wait_job(s, r.json()["id"], timeout=30)
    assert job["state"] == "failed" and job["attempts"] == 2, job
    assert "died while running this job 2 times" in job["error"]
    assert s.output().count("peon-scheduler exited unexpectedly (killed by signal 9") == 2
    assert "restarting in 1 s" in s.output() and "restarting in 2 s" in s.output(), "the back-off doubles"
    assert wait_until(lambda: scheduler_running(s), 5)
    # The queue moves on: the server's next job runs.
    r = s.request("PUT", f"/api/v1/server/stop/{uid}")
    assert r.status_code == 200 and r.json()["container_state"] == "exited", r.text
    assert s.request("DELETE", f"/api/v1/server/eradicate/{uid}").status_code == 200


def status_ids(pid):
    fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status").read().splitlines() if ":" in line)
    return int(fields["Uid"].split()[1]), int(fields["Gid"].split()[1])


@needs_root
def test_api_workers_drop_root(make_stack):
    s = make_stack()
    peon = subprocess.run(["id", "-u", "peon"], capture_output=True, text=True)
    assert peon.returncode == 0, "stack.sh created the peon user"
    uid = int(peon.stdout)
    assert status_ids(s.api_pid())[0] == uid
    for pid in s.worker_pids():
        assert status_ids(pid)[0] == uid != 0
    # Both the workers (peon) and the scheduler (root) write the database and its WAL files.
    server = f"peontest.{RUN}dr"
    assert s.request("PUT", f"/api/v1/server/create/{server}", json=SETTINGS).status_code == 200
    for suffix in ("", "-wal", "-shm"):
        st = os.stat(os.path.join(s.data, "peon.db" + suffix))
        assert st.st_uid == uid and st.st_mode & 0o777 == 0o660, (suffix, st)
    obj = s.request("GET", f"/api/v1/server/get/{server}").json()
    assert wait_until(lambda: s.request("GET", f"/api/v1/server/get/{server}").json()["server_config"].get("state") == "STARTED", 15), \
        "workers read a server's config directory"
    assert obj["container_state"] == "running"
    assert s.request("DELETE", f"/api/v1/server/eradicate/{server}").status_code == 200
    assert s.stop() == 0
    assert not os.path.exists(os.path.join(s.data, "run", "api.sock")), "the pool removed its socket without root"


def state(uid):
    """The container's State, {} while it does not exist."""
    return (container(uid) or {}).get("State", {})


def test_a_game_that_crashes_while_the_scheduler_is_dead_is_restarted(make_stack):
    s = make_stack(env={"PEON_START_SCHEDULER": "0"})
    scheduler = s.start_scheduler()
    try:
        assert wait_until(lambda: scheduler_running(s), 10)
        uid = f"peontest.{RUN}kc"
        r = s.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, "MODE": "crash", "CRASH_AFTER": "3"})
        assert r.status_code == 200 and r.json()["container_state"] == "running", r.text
        first = container(uid)["State"]["StartedAt"]
        scheduler.send_signal(signal.SIGKILL)
        scheduler.wait(10)
        assert wait_until(lambda: state(uid).get("Running") is False, 15), "the game crashed while nobody watched"
        assert state(uid)["ExitCode"] == 3
        scheduler = s.start_scheduler()
        # (A start may re-create the container when another test took its ports meanwhile.)
        assert wait_until(lambda: state(uid).get("StartedAt") not in (None, first), 20, step=0.2), "reconcile applied the crash policy"
        import sqlite3
        db = sqlite3.connect(os.path.join(s.data, "peon.db"))
        rows = db.execute("SELECT exit_code FROM crashes WHERE server_uid = ?", (uid,)).fetchall()
        assert rows and rows[0][0] == 3, rows
        assert s.request("DELETE", f"/api/v1/server/eradicate/{uid}").status_code == 200
    finally:
        scheduler.send_signal(signal.SIGTERM)
        scheduler.wait(15)


def fill(path):
    """Fills the file system holding `path` to the last byte."""
    for n, block in enumerate(("1M", "4k", "512")):
        subprocess.run(["dd", "if=/dev/zero", f"of={path}/filler{n}", f"bs={block}"], capture_output=True)


@needs_root
def test_a_full_disk_answers_507_loses_nothing_and_recovers(make_stack):
    import tempfile
    mount = tempfile.mkdtemp(prefix="peon-disk-")  # reachable by nginx's workers and the peon user
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", mount], check=True)
    try:
        data = mount + "/var"
        s = make_stack(env={"PEON_DATA_DIR": data})
        s.data = data
        assert wait_until(lambda: scheduler_running(s), 10)
        assert s.request("PUT", "/api/v1/plans").status_code == 200
        made = s.peon("key", "create", "--scope", "read", "--label", "before the disk filled")
        assert made.returncode == 0, made.stderr
        key = [line.split()[-1] for line in made.stdout.splitlines() if line.startswith("key:")][0]

        fill(mount)
        # Give the WAL's space back to the disk, then take it too: every write now needs a new page.
        import sqlite3
        db = sqlite3.connect(os.path.join(data, "peon.db"))
        wal = os.path.join(data, "peon.db-wal")
        # TRUNCATE needs a moment with no reader in the WAL (the scheduler reads four times a second).
        assert wait_until(lambda: db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall() and os.path.getsize(wal) == 0, 10)
        db.close()
        fill(mount)
        # A write needs a page: 507 (503 once the scheduler, which cannot beat either, counts as down).
        uid = f"peontest.{RUN}df"
        r = s.request("PUT", f"/api/v1/server/create/{uid}", json=SETTINGS)
        statuses = [r.status_code]
        assert r.status_code == 507 and r.json()["code"] == "store.full" and r.headers["Retry-After"], r.text
        for _ in range(3):
            r = s.request("PUT", f"/api/v1/server/create/{uid}", json=SETTINGS)
            statuses.append(r.status_code)
            assert r.status_code in (503, 507) and r.json()["code"] in ("store.full", "scheduler.down"), r.text
        # A refresh that changes nothing writes nothing; one that does cannot.
        assert s.request("PUT", "/api/v1/plans").status_code in (200, 507)
        # Reads work, and what was committed is there.
        assert s.request("GET", "/api/v1/plans").status_code == 200
        assert s.request("GET", "/api/v1/orchestrator", key=key).status_code == 200
        assert "internal" not in s.output() and " 500 " not in open(os.path.join(data, "log", "access.log")).read()

        for name in os.listdir(mount):
            if name.startswith("filler"):
                os.remove(os.path.join(mount, name))
        assert wait_until(lambda: scheduler_running(s), 5), "the scheduler beats again"
        r = s.request("PUT", f"/api/v1/server/create/{uid}", json=SETTINGS)
        assert r.status_code == 200 and r.json()["container_state"] == "running", r.text
        assert s.request("DELETE", f"/api/v1/server/eradicate/{uid}").status_code == 200
        assert s.request("GET", "/api/v1/orchestrator", key=key).status_code == 200
        assert "before the disk filled" in s.peon("key", "list").stdout
        print(f"full disk: {statuses}")
        s.stop()
    finally:
        subprocess.run(["umount", "-l", mount])
        os.rmdir(mount)


class PrivateDocker:
    """A Docker engine of this test's own (its own data root and socket), so it can be restarted
    without touching the machine's shared engine. It runs in a network namespace of its own: a
    dockerd restarted with a saved network store deletes the host's `docker0` (the shared engine's
    bridge), and so does `--bridge=none`."""

    def __init__(self):
        import tempfile
        self.dir = tempfile.mkdtemp(prefix="pdk-")
        os.chmod(self.dir, 0o755)
        self.sock = f"{self.dir}/docker.sock"
        self.proc = None
        self.netns = "pdk" + os.urandom(4).hex()
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        subprocess.run(["ip", "netns", "exec", self.netns, "ip", "link", "set", "lo", "up"], check=True)
        with open(f"{self.dir}/daemon.json", "w") as f:
            f.write("{}")  # not the machine's /etc/docker/daemon.json

    def setup(self):
        self.start()
        env = dict(os.environ, PEON_DOCKER_SOCKET=self.sock)
        built = subprocess.run([os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "docker.sh"), "image"], env=env,
                               capture_output=True, text=True, timeout=120)
        assert built.returncode == 0, built.stderr

    def start(self):
        log = open(f"{self.dir}/dockerd.log", "a")
        self.proc = subprocess.Popen(
            # nsenter, not `ip netns exec`: that also remounts /sys, hiding the cgroup mounts.
            ["nsenter", f"--net=/run/netns/{self.netns}", "dockerd", "--data-root", f"{self.dir}/data", "--exec-root", f"{self.dir}/exec",
             "--pidfile", f"{self.dir}/docker.pid", "-H", f"unix://{self.sock}", "--config-file", f"{self.dir}/daemon.json",
             "--iptables=false", "--ip-masq=false", "--default-address-pool", "base=10.231.0.0/16,size=24"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        assert wait_until(self.ping, 30, step=0.2), open(log.name).read()[-2000:]

    def ping(self):
        return subprocess.run(["curl", "-sf", "--max-time", "2", "--unix-socket", self.sock, "http://d/_ping"],
                              capture_output=True).returncode == 0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)

    def api(self, method, path):
        import json
        out = subprocess.run(["curl", "-s", "--unix-socket", self.sock, "-X", method, f"http://d{path}"], capture_output=True,
                             timeout=60).stdout
        return json.loads(out) if out.strip() else None

    def containers(self, uid):
        import json
        import urllib.parse
        selector = urllib.parse.quote(json.dumps({"label": [f"peon.server={uid}"]}))
        return self.api("GET", f"/containers/json?all=1&filters={selector}")

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            for c in self.api("GET", "/containers/json?all=1") or []:
                self.api("DELETE", f"/containers/{c['Id']}?force=1&v=1")
            for n in self.api("GET", "/networks") or []:
                if n["Name"].startswith("peon."):
                    self.api("DELETE", f"/networks/{n['Id']}")
            self.stop()
        subprocess.run(["ip", "netns", "del", self.netns])
        subprocess.run(["rm", "-rf", self.dir])


@needs_root
def test_a_restarted_docker_engine_is_followed_again_without_duplicates_or_lost_jobs(make_stack):
    engine = PrivateDocker()
    try:
        engine.setup()
        s = make_stack(env={"PEON_DOCKER_SOCKET": engine.sock, "PEON_PORT_RANGE": "43000-43999"})
        assert wait_until(lambda: scheduler_running(s), 10)
        a, b = f"peontest.{RUN}ea", f"peontest.{RUN}eb"
        for uid in (a, b):
            r = s.request("PUT", f"/api/v1/server/create/{uid}", json=SETTINGS)
            assert r.status_code == 200 and r.json()["container_state"] == "running", r.text

        engine.stop()  # stops the containers too (no live-restore)
        # Jobs asked for while the engine is away wait for it.
        r = s.request("PUT", f"/api/v1/server/restart/{a}?async=true")
        assert r.status_code == 202, r.text
        job = r.json()["id"]
        time.sleep(3)
        assert s.request("GET", f"/api/v1/jobs/{job}").json()["state"] in ("queued", "running")
        engine.start()

        final = wait_job(s, job, timeout=60)
        assert final["state"] == "succeeded", final
        assert wait_until(lambda: s.request("GET", f"/api/v1/server/get/{a}").json()["container_state"] == "running", 10)
        # The reconcile caught up with b (stopped with the engine) and the event stream follows the new engine.
        assert wait_until(lambda: s.request("GET", f"/api/v1/server/get/{b}").json()["container_state"] == "exited", 15)
        r = s.request("PUT", f"/api/v1/server/start/{b}")
        assert r.status_code == 200 and r.json()["container_state"] == "running", r.text
        engine.api("POST", f"/containers/peon.warcamp.{b}/stop?t=5")
        # Within the reconcile's 10 s: only the event stream can have seen it.
        assert wait_until(lambda: s.request("GET", f"/api/v1/server/get/{b}").json()["container_state"] == "exited", 6), \
            "a hand stop on the new engine is seen through events"
        for uid in (a, b):
            assert len(engine.containers(uid)) == 1, engine.containers(uid)
        assert "event stream interrupted, reconnecting" in s.output()
        assert subprocess.run(["ip", "link", "show", "docker0"], capture_output=True).returncode == 0, "the shared engine's bridge"
        for uid in (a, b):
            assert s.request("DELETE", f"/api/v1/server/eradicate/{uid}").status_code == 200
        s.stop()
    finally:
        engine.cleanup()
