"""Game servers end to end: nginx → API → SQLite jobs → scheduler → the real Docker engine."""
import json
import os
import socket
import time
import urllib.parse

from conftest import RUN, docker

# The game port range of this checkout (conftest: PEON_TEST_PORT_RANGE).
LOW, HIGH = (int(p) for p in os.environ.get("PEON_TEST_PORT_RANGE", "41000-41999").split("-"))

SETTINGS = {"SERVER_NAME": "Integration", "PASSWORD": "pw"}


def container(uid):
    return docker("GET", f"/containers/peon.warcamp.{uid}/json")


def echo(port, text=b"ping\n"):
    for _ in range(50):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(text)
                return s.recv(100)
        except OSError:
            time.sleep(0.1)
    return None


def create(stack, uid, body=None, **kw):
    return stack.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, **(body or {})}, **kw)


def test_lifecycle_through_nginx(stack):
    uid = f"peontest.{RUN}a"
    r = create(stack, uid, {"description": "Integration test"})
    assert r.status_code == 200, r.text
    obj = r.json()
    # PEON's keys in PEON's order, then Peon's additive ones.
    assert list(obj) == ["game_uid", "servername", "container_type", "build_version", "container_state", "server_state",
                         "server_config", "description", "time", "players", "max_players", "idle_stop", "wake_on_connect", "node",
                         "address", "ports", "ready", "ready_at"]
    assert obj["container_state"] == "running" and obj["servername"] == f"{RUN}a"
    assert obj["container_type"] == "peon-test-game" and obj["build_version"] == "1.0.0"

    info = container(uid)
    assert info["State"]["Running"] and info["Config"]["User"] == "1000:1000" and info["HostConfig"]["Init"]
    assert info["Config"]["Labels"]["peon.server"] == uid and info["Config"]["Labels"]["peon.test"] == RUN
    assert info["HostConfig"]["NetworkMode"] == f"peon.warcamp.{uid}"
    port = int(info["HostConfig"]["PortBindings"][next(iter(info["HostConfig"]["PortBindings"]))][0]["HostPort"])
    assert 27960 == port or 27970 == port or LOW <= port <= HIGH
    assert info["Config"]["Env"][0] == f"PORT={port}"
    assert echo(port) == b"ping\n"

    # Where to connect: the test stack publishes game ports on 127.0.0.1 (PEON_GAME_BIND) and sets no
    # PEON_PUBLIC_ADDRESS; the ports are listed.
    assert obj["node"] is None and obj["address"] == "127.0.0.1"
    assert obj["ports"] and all(p["name"] and 1 <= p["port"] <= 65535 and p["protocol"] in ("tcp", "udp", "both") for p in obj["ports"])
    # The server's config files show up (the scheduler's snapshot, refreshed every 5 s), secrets do not.
    deadline = time.time() + 15
    while time.time() < deadline and "state" not in stack.request("GET", f"/api/v1/server/get/{uid}").json()["server_config"]:
        time.sleep(0.1)
    config = stack.request("GET", f"/api/v1/server/get/{uid}").json()["server_config"]
    assert config.get("state") == "STARTED" and config.get("server_name") == "Integration"

    listed = stack.request("GET", "/api/v1/servers").json()
    assert [(s["game_uid"], s["servername"]) for s in listed] == sorted((s["game_uid"], s["servername"]) for s in listed)
    assert any(s["servername"] == f"{RUN}a" for s in listed)

    r = stack.request("PUT", f"/api/v1/server/stop/{uid}")
    assert r.status_code == 200 and r.json()["container_state"] == "exited"
    assert container(uid)["State"]["ExitCode"] == 0
    r = stack.request("PUT", f"/api/v1/server/start/{uid}")
    assert r.json()["container_state"] == "running"
    started = container(uid)["State"]["StartedAt"]
    r = stack.request("PUT", f"/api/v1/server/restart/{uid}")
    assert r.json()["container_state"] == "running"
    # A restart is a new start of the game, not the same one reported again.
    assert container(uid)["State"]["StartedAt"] != started
    r = stack.request("PUT", f"/api/v1/server/description/{uid}", json={"description": "New words"})
    assert r.json()["description"] == "New words"

    r = stack.request("DELETE", f"/api/v1/server/destroy/{uid}")
    assert r.status_code == 200 and r.json()["status"] == "success"
    assert container(uid).get("message", "").startswith("No such container")
    assert os.path.isdir(os.path.join(stack.data, "servers", "peontest", f"{RUN}a")), "destroy keeps files"
    assert stack.request("GET", f"/api/v1/server/get/{uid}").status_code == 404


def test_timed_stop_fires_on_time(stack):
    uid = f"peontest.{RUN}t"
    assert create(stack, uid).status_code == 200
    r = stack.request("PUT", f"/api/v1/server/stop/{uid}", json={"interval": "2s"})
    due = r.json()["time"]
    assert isinstance(due, int) and r.json()["container_state"] == "running"
    while time.time() < due + 1.5 and container(uid)["State"]["Running"]:
        time.sleep(0.1)
    finished = container(uid)["State"]
    assert not finished["Running"]
    stopped_at = time.mktime(time.strptime(finished["FinishedAt"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert stopped_at - due <= 1.5, (stopped_at, due)
    when = str(int(time.time()) + 3600)
    r = stack.request("PUT", f"/api/v1/server/stop/{uid}", json={"epoch_time": when})
    # PEON answers the client's own string back.
    assert r.json()["time"] == when, r.text
    assert stack.request("DELETE", f"/api/v1/server/eradicate/{uid}").status_code == 200
    assert not os.path.exists(os.path.join(stack.data, "servers", "peontest", f"{RUN}t"))


def test_two_servers_of_one_game_get_distinct_ports(stack):
    ports = []
    for suffix in ("p1", "p2"):
        uid = f"peontest.{RUN}{suffix}"
        assert create(stack, uid).status_code == 200
        bindings = container(uid)["HostConfig"]["PortBindings"]
        ports.append({k: v[0]["HostPort"] for k, v in bindings.items()})
    assert set(ports[0].values()).isdisjoint(ports[1].values())
    for suffix in ("p1", "p2"):
        stack.request("DELETE", f"/api/v1/server/eradicate/peontest.{RUN}{suffix}")


def test_crashed_server_is_restarted(stack):
    uid = f"peontest.{RUN}c"
    assert create(stack, uid, {"MODE": "crash", "CRASH_AFTER": "1"}).status_code == 200
    first = container(uid)["State"]["StartedAt"]
    deadline = time.time() + 15
    while time.time() < deadline and container(uid)["State"]["StartedAt"] == first:
        time.sleep(0.2)
    assert container(uid)["State"]["StartedAt"] != first, "the crash policy restarted it"
    stack.request("DELETE", f"/api/v1/server/eradicate/{uid}")


def test_missing_settings_and_hostile_names_leave_no_trace(stack):
    r = stack.request("PUT", f"/api/v1/server/create/peontest.{RUN}m", json={"SERVER_NAME": "x"})
    assert r.status_code == 400 and r.json()["code"] == "settings.missing" and r.json()["missing"] == ["PASSWORD"]
    assert stack.request("GET", f"/api/v1/server/get/peontest.{RUN}m").status_code == 404
    for name in ("..", "a;id", "$(id)", "x%20y", "A", "x" * 40, "%2e%2e", "a.b.c", "%C3%A9"):
        code, body = stack.curl("-X", "PUT", "-H", f"X-Api-Key: {stack.api_key}", "-H", "Content-Type: application/json",
                                "-d", json.dumps(SETTINGS), stack.url(f"/api/v1/server/create/peontest.{name}"))
        assert code in (400, 404), (name, code, body[:200])
    selector = urllib.parse.quote(json.dumps({"label": [f"peon.test={RUN}"]}))
    names = [c["Names"][0] for c in docker("GET", f"/containers/json?all=1&filters={selector}")]
    assert not any(n.startswith("/peon.warcamp.peontest.$") or ";" in n or ".." in n for n in names)
    assert sorted(os.listdir(os.path.join(stack.data, "servers", "peontest"))) == sorted(
        d for d in os.listdir(os.path.join(stack.data, "servers", "peontest")) if d.startswith(RUN))


def test_modify_applies_at_next_start_and_limits_reach_docker(stack):
    uid = f"peontest.{RUN}l"
    assert create(stack, uid, {"limits": {"memory_mb": 64, "pids": 100}}).status_code == 200
    host = container(uid)["HostConfig"]
    assert host["Memory"] == 64 << 20 and host["PidsLimit"] == 100
    r = stack.request("PUT", f"/api/v1/server/modify/{uid}", json={"SERVER_NAME": "Renamed", "limits": {"memory_mb": 96}})
    assert r.status_code == 200
    assert "SERVER_NAME=Integration" in container(uid)["Config"]["Env"], "modify waits for the next start"
    assert stack.request("PUT", f"/api/v1/server/restart/{uid}").status_code == 200
    info = container(uid)
    assert "SERVER_NAME=Renamed" in info["Config"]["Env"] and "PASSWORD=pw" in info["Config"]["Env"]
    assert info["HostConfig"]["Memory"] == 96 << 20
    for bad in ({"limits": {"memory_mb": 1}}, {"limits": {"swap": 1}}, {"limits": "lots"}, {"SERVER_NAME": ["x"]}):
        r = stack.request("PUT", f"/api/v1/server/modify/{uid}", json=bad)
        assert r.status_code == 400, bad
    stack.request("DELETE", f"/api/v1/server/eradicate/{uid}")


def test_memory_exhaustion_is_recorded_as_an_oom_crash(stack):
    import sqlite3
    uid = f"peontest.{RUN}o"
    assert create(stack, uid, {"MODE": "oom", "limits": {"memory_mb": 32}}).status_code == 200
    db = sqlite3.connect(f"file:{stack.data}/peon.db?mode=ro", uri=True)
    deadline = time.time() + 20
    rows = []
    while time.time() < deadline and not rows:
        rows = db.execute("SELECT exit_code, oom_killed FROM crashes WHERE server_uid = ?", (uid,)).fetchall()
        time.sleep(0.2)
    assert rows and rows[0][1] == 1, rows
    stack.request("DELETE", f"/api/v1/server/eradicate/{uid}")


def test_stats_and_update_modes(stack):
    uid = f"peontest.{RUN}u"
    assert create(stack, uid).status_code == 200
    deadline = time.time() + 15
    stats = {}
    while time.time() < deadline and not stats.get("stats"):
        stats = stack.request("GET", f"/api/v1/server/stats/{uid}").json()
        time.sleep(0.5)
    assert stats["stats"]["memory_bytes"] > 0 and stats["stats"]["memory_limit_bytes"] > 0 and stats["uptime"] >= 0
    assert 0 <= stats["memory_percent"] <= 100
    assert isinstance(stats["cpu_percent"], (int, float)) and stats["container_state"] == "running"

    data = os.path.join(stack.data, "servers", "peontest", f"{RUN}u", "data")
    open(os.path.join(data, "world.db"), "w").write("save")
    for mode in ("server", "quick", "validate", "image", "full"):
        r = stack.request("PUT", f"/api/v1/server/update/{uid}", json={"mode": mode})
        assert r.status_code == 200 and r.json() == {"status": "success", "info": uid, "stdout": "[]"}, (mode, r.text)
        assert os.path.exists(os.path.join(data, "world.db")), mode
    r = stack.request("PUT", f"/api/v1/server/update/{uid}", json={"mode": "reinit"})
    assert r.status_code == 200 and os.listdir(data) == []
    assert stack.request("GET", f"/api/v1/server/get/{uid}").json()["container_state"] == "running"
    assert stack.request("PUT", f"/api/v1/server/update/{uid}", json={"mode": "$(id)"}).status_code == 400
    stack.request("DELETE", f"/api/v1/server/eradicate/{uid}")


def test_ports_taken_by_a_foreign_process_or_container_are_avoided(stack):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("0.0.0.0", 27960))
        listener.listen(1)
    except OSError:
        pass  # something else holds it already: also foreign
    foreign = docker("POST", f"/containers/create?name=peon-foreign-{RUN}", {
        "Image": "peon-test-game:latest", "Labels": {"peon.test": RUN}, "ExposedPorts": {"27970/udp": {}},
        "HostConfig": {"PortBindings": {"27970/udp": [{"HostIp": "127.0.0.1", "HostPort": "27970"}]}}})
    docker("POST", f"/containers/{foreign['Id']}/start")
    try:
        uid = f"peontest.{RUN}f"
        assert create(stack, uid).status_code == 200, "created despite both plan groups being taken"
        bindings = container(uid)["HostConfig"]["PortBindings"]
        used = {int(v[0]["HostPort"]) for v in bindings.values()}
        assert used.isdisjoint({27960, 27970}) and all(LOW <= p <= HIGH for p in used), used
        stack.request("DELETE", f"/api/v1/server/eradicate/{uid}")
    finally:
        listener.close()
        docker("DELETE", f"/containers/{foreign['Id']}?force=1")


def test_import_adopts_directories_and_containers_it_does_not_know(stack):
    import sqlite3
    kept = f"peontest.{RUN}i"
    assert create(stack, kept, {"SERVER_NAME": "Kept files"}).status_code == 200
    assert stack.request("DELETE", f"/api/v1/server/destroy/{kept}").status_code == 200  # files stay
    orphan = f"peontest.{RUN}j"
    assert create(stack, orphan).status_code == 200
    db = sqlite3.connect(f"{stack.data}/peon.db", timeout=10)
    db.execute("DELETE FROM servers WHERE uid = ?", (orphan,))  # the store forgets; the container runs on
    db.commit()
    db.close()

    r = stack.request("PUT", "/api/v1/servers")
    assert r.status_code == 200, r.text
    listed = {f"{s['game_uid']}.{s['servername']}": s for s in r.json()}
    assert listed[kept]["container_state"] == "exited" and listed[orphan]["container_state"] == "running"
    r = stack.request("PUT", f"/api/v1/server/start/{kept}")
    assert r.json().get("container_state") == "running", r.text
    assert "SERVER_NAME=Kept files" in container(kept)["Config"]["Env"]
    for uid in (kept, orphan):
        stack.request("DELETE", f"/api/v1/server/eradicate/{uid}")


def test_crash_restarts_can_be_switched_off_per_server(stack):
    uid = f"peontest.{RUN}n"
    assert create(stack, uid, {"MODE": "crash", "CRASH_AFTER": "1", "crash_policy": {"enabled": False}}).status_code == 200
    first = container(uid)["State"]["StartedAt"]
    # Longer than the crash and the policy's first restart take (test_crashed_server_is_restarted).
    time.sleep(6)
    state = container(uid)["State"]
    assert not state["Running"] and state["ExitCode"] == 3, state
    assert state["StartedAt"] == first, "started again although the crash policy is off"
    assert stack.request("GET", f"/api/v1/server/get/{uid}").json()["container_state"] == "exited"
    assert stack.request("PUT", f"/api/v1/server/modify/{uid}", json={"crash_policy": {"max_restarts": "x"}}).status_code == 400
    stack.request("DELETE", f"/api/v1/server/eradicate/{uid}")


def test_failed_create_leaves_nothing_unless_noclean(stack):
    # A plan whose image is not on this engine, and no registry is reachable: the create fails.
    folder = os.path.join(stack.data, "plans", "nosuchimage")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "plan.json"), "w") as f:
        json.dump({"metadata": {"game_uid": "nosuchimage", "image": f"peon/no-such-image:{RUN}"},
                   "ports": [[{"PORT": ["7777", "udp"]}]], "environment": {"SERVER_NAME": None},
                   "volumes": {"~!/data": "/data"}}, f)
    assert stack.request("PUT", "/api/v1/plans").status_code == 200
    for noclean in (False, True):
        uid = f"nosuchimage.{RUN}x{int(noclean)}"
        r = stack.request("PUT", f"/api/v1/server/create/{uid}", json={"SERVER_NAME": "a", "noclean": noclean})
        assert r.status_code == 502 and r.json()["code"] == "job.failed", r.text
        exists = stack.request("GET", f"/api/v1/server/get/{uid}").status_code == 200
        directory = os.path.isdir(os.path.join(stack.data, "servers", "nosuchimage", f"{RUN}x{int(noclean)}"))
        assert exists == noclean and directory == noclean
        assert container(uid).get("message", "").startswith("No such container")
        if noclean:
            stack.request("DELETE", f"/api/v1/server/eradicate/{uid}")


def test_no_free_ports_is_409(make_stack):
    s = make_stack(env={"PEON_PORT_RANGE": f"{HIGH}-{HIGH}"})
    held = []
    for port in (27960, 27970, HIGH):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
            sock.listen(1)
        except OSError:
            pass  # already taken by something else: just as good
        held.append(sock)
    try:
        r = s.request("PUT", f"/api/v1/server/create/peontest.{RUN}z", json=SETTINGS)
        assert r.status_code == 409 and r.json()["code"] == "ports.exhausted", r.text
        assert s.request("GET", f"/api/v1/server/get/peontest.{RUN}z").status_code == 404
    finally:
        for sock in held:
            sock.close()


def test_plain_stop_clears_timed_stops_and_string_booleans_are_refused(stack):
    uid = f"peontest.{RUN}q"
    assert create(stack, uid).status_code == 200
    due = str(int(time.time()) + 3600)
    assert stack.request("PUT", f"/api/v1/server/stop/{uid}", json={"epoch_time": due}).json()["time"] == due
    assert stack.request("PUT", f"/api/v1/server/start/{uid}").json()["time"] == due, "start keeps the pending stop"
    assert stack.request("PUT", f"/api/v1/server/stop/{uid}").json()["time"] is None
    r = stack.request("DELETE", f"/api/v1/server/destroy/{uid}", json={"eradicate": "False"})
    assert r.status_code == 400, 'PEON erased on the string "False"'
    assert os.path.isdir(os.path.join(stack.data, "servers", "peontest", f"{RUN}q"))
    assert stack.request("PUT", f"/api/v1/server/stop/{uid}", json={"epoch_time": "12345"}).status_code == 400
    stack.request("DELETE", f"/api/v1/server/eradicate/{uid}")
    # Flags are true or false: anything else is refused, never read as false (and started anyway).
    for bad in ("yes", 1, [], {"a": 1}):
        for flag in ("start_later", "noclean"):
            r = create(stack, f"peontest.{RUN}qf", {flag: bad})
            assert r.status_code == 400 and r.json()["code"] == "request.invalid", (flag, bad, r.text)
    assert stack.request("GET", f"/api/v1/server/get/peontest.{RUN}qf").status_code == 404


def test_concurrent_actions_on_one_server_are_serialized(stack):
    import concurrent.futures
    uid = f"peontest.{RUN}v"
    assert create(stack, uid, {"start_later": True}).json()["status"] == "success"
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: stack.request("PUT", f"/api/v1/server/start/{uid}"), range(4)))
    assert all(a.status_code == 200 and a.json()["container_state"] == "running" for a in answers)
    import json as _json, urllib.parse
    selector = urllib.parse.quote(_json.dumps({"label": [f"peon.server={uid}"]}))
    assert len(docker("GET", f"/containers/json?all=1&filters={selector}")) == 1
    stack.request("DELETE", f"/api/v1/server/eradicate/{uid}")


def test_destroy_then_eradicate_erases_what_is_left(stack):
    # PEON's web UI deletes with a bare destroy (files kept); erasing later, by the uid alone, must
    # find the folder the destroyed server left on its node and remove it, as PEON did (200).
    uid = f"peontest.{RUN}de"
    folder = os.path.join(stack.data, "servers", "peontest", f"{RUN}de")
    purge = f"All files for {uid} will be purged from the server. This may take a few moments."
    for erase in ({"method": "DELETE", "path": f"/api/v1/server/destroy/{uid}", "json": {"eradicate": True}},
                  {"method": "DELETE", "path": f"/api/v1/server/eradicate/{uid}"}):
        assert create(stack, uid).status_code == 200
        r = stack.request("DELETE", f"/api/v1/server/destroy/{uid}")
        assert r.status_code == 200 and r.json() == {"status": "success", "info": f"Server {uid} was removed. "}, r.text
        assert os.path.isdir(os.path.join(folder, "actions")), "destroy keeps the files"
        assert stack.request("GET", f"/api/v1/server/get/{uid}").status_code == 404
        r = stack.request(erase.pop("method"), erase.pop("path"), **erase)
        assert r.status_code == 200 and r.json() == {"status": "success", "info": purge}, r.text
        assert not os.path.exists(folder)
    # Nothing of it is left: 404, as for a name that never was; a bare destroy of it too.
    for action, body in (("eradicate", None), ("destroy", {"eradicate": True}), ("destroy", None)):
        r = stack.request("DELETE", f"/api/v1/server/{action}/{uid}", json=body)
        assert r.status_code == 404 and r.json()["code"] == "server.not_found", (action, r.text)
    # Hostile uids and bodies: a JSON 4xx, never a 500, and nothing outside the servers folder is touched.
    os.makedirs(os.path.join(stack.data, "servers", "peontest", f"{RUN}keep"), exist_ok=True)
    for hostile in ["..", "..%2F..", "%2e%2e.x", f"peontest.{RUN}keep%2F..", "a.$(id)", "a.b;rm", "a.b%20c", "a.%00",
                    "%C3%A9.x", "a." + "x" * 10000, "peontest", "peontest."]:
        r = stack.request("DELETE", f"/api/v1/server/eradicate/{hostile}", json={"eradicate": True, "delete_backups": True})
        assert 400 <= r.status_code < 500 and r.json()["status"] == "error", (hostile[:40], r.status_code, r.text[:200])
    for body in [{"eradicate": "yes"}, {"eradicate": None}, {"eradicate": True, "delete_backups": "true"}, {"delete_backups": True},
                 [True], "eradicate"]:
        r = stack.request("DELETE", f"/api/v1/server/destroy/{uid}", json=body)
        assert r.status_code == 400 and r.json()["code"] in ("request.invalid", "json.invalid"), (body, r.text)
    assert os.path.isdir(os.path.join(stack.data, "servers", "peontest", f"{RUN}keep"))
    os.rmdir(os.path.join(stack.data, "servers", "peontest", f"{RUN}keep"))
