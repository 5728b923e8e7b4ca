"""Hold under load and hostile input: what a game container writes, numbers a client sends, keys and
hygiene. Each test is a failure measured on an earlier build."""
import fcntl
import json
import fcntl
import os
import sqlite3
import subprocess
import time

import pytest

from conftest import BIN, RUN

SETTINGS = {"SERVER_NAME": "Harden", "PASSWORD": "pw"}


def db(stack):
    return sqlite3.connect(f"file:{stack.data}/peon.db?mode=ro", uri=True)


def server_dir(stack, uid):
    game, name = uid.split(".", 1)
    return os.path.join(stack.data, "servers", game, name)


def test_fifo_in_config_dir_stalls_nothing(stack):
    uid = f"peontest.{RUN}ff"
    r = stack.request("PUT", f"/api/v1/server/create/{uid}", json=SETTINGS)
    assert r.status_code == 200, r.text
    config = os.path.join(server_dir(stack, uid), "config")
    os.mkfifo(os.path.join(config, "hang"))
    os.symlink("/etc/shadow", os.path.join(config, "leak"))
    made = time.time()
    try:
        # More requests than workers: one stalled worker each would leave none.
        for _ in range(4):
            started = time.time()
            r = stack.session.get(stack.url(f"/api/v1/server/get/{uid}"), headers={"X-Api-Key": stack.api_key}, verify=False,
                                  timeout=3)
            assert r.status_code == 200 and time.time() - started < 1, r.text
            config_seen = r.json()["server_config"]
            assert "hang" not in config_seen and "leak" not in config_seen
            started = time.time()
            r = stack.session.get(stack.url("/api/v1/servers"), headers={"X-Api-Key": stack.api_key}, verify=False, timeout=3)
            assert r.status_code == 200 and time.time() - started < 1
        # The scheduler's stats sampler reads the same folder: it keeps sampling.
        deadline = time.time() + 15
        sampled = 0
        while time.time() < deadline and sampled <= made:
            sampled = stack.request("GET", f"/api/v1/server/stats/{uid}").json().get("stats", {}).get("sampled_at", 0)
            time.sleep(0.5)
        assert sampled > made, "the scheduler's housekeeping is not stalled"
    finally:
        r = stack.request("DELETE", f"/api/v1/server/eradicate/{uid}")
    assert r.status_code == 200 and not os.path.exists(server_dir(stack, uid))
    assert os.path.exists("/etc/shadow")


HUGE = ["1e19", "1.5e300", "-1e19", "9223372036854775808", "-9223372036854775809", "18446744073709551616", '"NaN"',
        '"Infinity"', '"-Infinity"', '"1e19"', '"nan"', '"99999999999999999999"', "1e-300", "-0.0", "0.5"]


def test_huge_numbers_are_json_400_and_kill_no_worker(stack):
    uid = f"peontest.{RUN}nn"
    r = stack.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, "start_later": True})
    assert r.status_code == 200, r.text
    workers = stack.worker_pids()
    headers = {"Content-Type": "application/json"}
    try:
        for n in HUGE:
            for body in ('{"interval": %s}' % n, '{"epoch_time": %s}' % n):
                r = stack.request("PUT", f"/api/v1/server/stop/{uid}", data=body, headers=dict(headers))
                assert r.status_code == 400 and r.json()["code"] == "request.invalid", (body, r.status_code, r.text[:200])
            if n in ("-0.0", "0.5"):
                continue  # valid for some of the fields below (max_restarts 0, cpus 0.5)
            for body in ('{"limits": {"memory_mb": %s}}' % n, '{"limits": {"cpus": %s}}' % n, '{"limits": {"pids": %s}}' % n,
                         '{"crash_policy": {"max_restarts": %s}}' % n, '{"crash_policy": {"window_seconds": %s}}' % n):
                r = stack.request("PUT", f"/api/v1/server/modify/{uid}", data=body, headers=dict(headers))
                assert r.status_code == 400, (body, r.status_code, r.text[:200])
            r = stack.request("GET", f"/api/v1/jobs/{n.strip(chr(34))}")
            assert r.status_code in (400, 404), (n, r.status_code)
        for body in ('{"interval": NaN}', '{"interval": Infinity}', '{"epoch_time": -Infinity}', '{"interval": 1e999}'):
            r = stack.request("PUT", f"/api/v1/server/stop/{uid}", data=body, headers=dict(headers))
            assert r.status_code == 400 and r.json()["code"] == "json.invalid", body
    finally:
        stack.request("DELETE", f"/api/v1/server/eradicate/{uid}")
    assert stack.worker_pids() == workers, "no worker died"


def test_imported_manifest_with_bad_ports_is_refused_and_the_scheduler_lives(make_stack):
    s = make_stack()
    good, bad = f"peontest.{RUN}ig", f"peontest.{RUN}ib"
    for uid, ports in ((bad, [{"name": "PORT", "port": 1e19, "proto": "tcp"}]), (good, [{"name": "PORT", "port": 27990, "proto": "tcp"}])):
        os.makedirs(server_dir(s, uid))
        manifest = {"uid": uid, "description": "imported", "settings": SETTINGS, "limits": {}, "ports": ports}
        with open(os.path.join(server_dir(s, uid), "peon-server.json"), "w") as f:
            json.dump(manifest, f)
    r = s.request("PUT", "/api/v1/servers?async=true")
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    deadline = time.time() + 15
    state = "queued"
    while time.time() < deadline and state in ("queued", "running"):
        state = s.request("GET", f"/api/v1/jobs/{job}").json()["state"]
        time.sleep(0.2)
    assert state == "succeeded", state
    listed = {x["servername"] for x in s.request("GET", "/api/v1/servers").json()}
    assert good.split(".")[1] in listed and bad.split(".")[1] not in listed
    assert s.request("GET", "/api/v1/orchestrator").json()["scheduler"]["running"]


def test_plan_mounting_the_whole_server_folder_is_refused(stack):
    plans = os.path.join(stack.data, "plans")
    made = []
    docs = {
        "wholedir": {"~!": "/home/steam"},
        "nestedmount": {"~!/data": "/data", "~!/data/saves": "/saves"},
    }
    try:
        for game, volumes in docs.items():
            os.makedirs(os.path.join(plans, game))
            made.append(game)
            with open(os.path.join(plans, game, "plan.json"), "w") as f:
                json.dump({"metadata": {"game_uid": game, "image": "peon-test-game:latest"}, "volumes": volumes}, f)
        r = stack.request("PUT", "/api/v1/plans")
        assert r.status_code == 200, r.text
        failed = {f["game_uid"]: f["error"] for f in r.json()["failed"]}
        assert "wholedir" in failed and "nestedmount" in failed, failed
        assert stack.request("GET", "/api/v1/plan/wholedir").status_code == 404
    finally:
        for game in made:
            os.remove(os.path.join(plans, game, "plan.json"))
            os.rmdir(os.path.join(plans, game))
        stack.request("PUT", "/api/v1/plans")


def test_requests_without_a_key_write_no_audit_row(stack):
    before = db(stack).execute("SELECT count(*) FROM audit").fetchone()[0]
    for method, path in (("PUT", "/api/v1/plans"), ("DELETE", "/api/v1/server/destroy/a.b"), ("PUT", "/api/v1/servers"),
                         ("POST", "/api/v1/server/create")):
        for key in (None, "wrong-key-wrong-key"):
            assert stack.request(method, path, key=key).status_code == 401
    assert db(stack).execute("SELECT count(*) FROM audit").fetchone()[0] == before


@pytest.mark.parametrize("key", ["Zu88Zu88", "short-key", "fifteen-chars-1", "Zu88Zu88Zu88Zu88", "my-zu88zu88-key-2026", " Zu88Zu88 "])
def test_weak_or_published_configured_keys_are_refused(key, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PEON_API_KEY", "API_KEY")}
    for variable in ("PEON_API_KEY", "API_KEY"):
        for binary in ("peon-api", "peon-scheduler"):
            out = subprocess.run([os.path.join(BIN, binary)], env={**env, "PEON_DATA_DIR": str(tmp_path / "var"), variable: key},
                                 capture_output=True, text=True, timeout=30)
            assert out.returncode == 2 and "PEON_API_KEY" in out.stderr, (binary, variable, out.returncode, out.stderr[-300:])
    assert not (tmp_path / "var" / "peon.db").exists(), "refused before anything was made"


def test_changing_the_configured_key_revokes_the_old_one(make_stack):
    first = make_stack(api_key="first-admin-key-0123456789")
    assert first.request("GET", "/api/v1/orchestrator").status_code == 200
    first.stop()
    second = make_stack(api_key="second-admin-key-0123456789", env={"PEON_DATA_DIR": first.data})
    second.data = first.data
    kw = {}
    assert second.request("GET", "/api/v1/orchestrator", **kw).status_code == 200
    r = second.request("GET", "/api/v1/orchestrator", key="first-admin-key-0123456789", **kw)
    assert r.status_code == 401 and r.json()["code"] == "auth.revoked_key"
    listing = second.peon("key", "list").stdout
    assert listing.count("PEON_API_KEY") == 2 and "revoked" in listing


def test_the_last_admin_key_cannot_be_revoked(make_stack):
    s = make_stack()
    admin = db(s).execute("SELECT id FROM api_keys WHERE scope = 'admin'").fetchone()[0]
    out = s.peon("key", "revoke", admin)
    assert out.returncode != 0 and "last admin key" in out.stderr
    assert s.request("GET", "/api/v1/orchestrator").status_code == 200
    second = s.peon("key", "create", "--scope", "admin", "--label", "second admin")
    assert second.returncode == 0
    assert s.peon("key", "revoke", admin).returncode == 0
    assert s.request("GET", "/api/v1/orchestrator").status_code == 401


def test_last_used_at_is_written_at_most_once_a_minute(make_stack):
    s = make_stack()  # its start-up probe already used the key
    for _ in range(5):
        assert s.request("GET", "/api/v1/orchestrator").status_code == 200
    used = db(s).execute("SELECT last_used_at FROM api_keys").fetchone()[0]
    assert used and abs(used - time.time()) < 10
    time.sleep(1.1)
    assert s.request("GET", "/api/v1/orchestrator").status_code == 200
    assert db(s).execute("SELECT last_used_at FROM api_keys").fetchone()[0] == used, "written again within the minute"
    assert "LAST USED" in s.peon("key", "list").stdout


def test_pending_jobs_are_capped_per_server_and_in_total(make_stack):
    s = make_stack(env={"PEON_START_SCHEDULER": "0", "PEON_MAX_PENDING_JOBS": "3", "PEON_MAX_PENDING_JOBS_TOTAL": "5"})
    # No scheduler runs, so nothing drains the queue; a fresh heartbeat and the scheduler's lock,
    # held here as a live scheduler holds it, let actions be queued.
    os.makedirs(f"{s.data}/run/scheduler", exist_ok=True)
    lock = open(f"{s.data}/run/scheduler/scheduler.lock", "a")
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    rw = sqlite3.connect(f"{s.data}/peon.db")
    rw.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('scheduler.heartbeat', ?)", (str(int(time.time()) + 3600),))
    rw.commit()
    a, b = f"peontest.{RUN}qa", f"peontest.{RUN}qb"
    for uid in (a, b):
        r = s.request("PUT", f"/api/v1/server/create/{uid}?async=true", json={**SETTINGS, "start_later": True})
        assert r.status_code == 202, r.text
    codes = []
    for kind in ("start", "stop", "start", "restart"):
        codes.append(s.request("PUT", f"/api/v1/server/{kind}/{a}?async=true").status_code)
    assert codes == [202, 202, 429, 429], codes  # create + 2 = 3 for a
    r = s.request("PUT", f"/api/v1/server/start/{a}?async=true")
    assert r.status_code == 429 and r.json()["code"] == "jobs.too_many" and r.headers.get("Retry-After")
    assert s.request("PUT", f"/api/v1/server/start/{b}?async=true").status_code == 202  # 5 in total
    r = s.request("PUT", f"/api/v1/server/stop/{b}?async=true")
    assert r.status_code == 429 and r.json()["code"] == "jobs.too_many"


def test_a_planted_symlink_is_never_a_bind_source(stack):
    """A folder a container could once write (a plan mounting ~!) holds a link to a host path: the
    next start refuses it instead of letting Docker mount /etc into the game container."""
    uid = f"peontest.{RUN}sl"
    r = stack.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, "start_later": True})
    assert r.status_code == 200, r.text
    user = os.path.join(server_dir(stack, uid), "user")
    if os.path.isdir(user):
        os.rmdir(user)
    os.symlink("/etc", user)
    try:
        r = stack.request("PUT", f"/api/v1/server/start/{uid}")
        assert r.status_code == 502 and r.json()["code"] == "job.failed" and "unsafe mount source" in r.json()["info"], r.text
        from conftest import docker
        info = docker("GET", f"/containers/peon.warcamp.{uid}/json") or {}
        assert not (info.get("State") or {}).get("Running")
        assert all(m.get("Source") != "/etc" for m in info.get("Mounts") or [])
        os.remove(user)  # the operator removes the link: the next start makes the folder again
        r = stack.request("PUT", f"/api/v1/server/start/{uid}")
        assert r.status_code == 200 and r.json()["container_state"] == "running", r.text
        assert os.path.isdir(user) and not os.path.islink(user)
    finally:
        stack.request("DELETE", f"/api/v1/server/eradicate/{uid}")
    assert os.path.exists("/etc/hostname")


def test_the_scheduler_prunes_old_history_at_start(make_stack):
    s = make_stack(env={"PEON_START_SCHEDULER": "0", "PEON_RETAIN_DAYS": "7"})
    old, recent = int(time.time()) - 30 * 86400, int(time.time()) - 3600
    rw = sqlite3.connect(f"{s.data}/peon.db", timeout=10)
    for at in (old, recent):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
        rw.execute("INSERT INTO audit (at, key_id, client_ip, method, path, status, result) VALUES (?, 'key_x', '127.0.0.1', 'PUT', '/x', 200, 'ok')",
                   (stamp,))
        rw.execute("INSERT INTO jobs (server_uid, kind, state, created_at, finished_at) VALUES ('g.a', 'start', 'succeeded', ?, ?)",
                   (at, at))
        rw.execute("INSERT INTO crashes (server_uid, at, exit_code, oom_killed) VALUES ('g.a', ?, 1, 0)", (at,))
    # Old but not yet due: still work, never history.
    rw.execute("INSERT INTO jobs (server_uid, kind, state, created_at, not_before) VALUES ('g.a', 'start', 'queued', ?, ?)",
               (old, int(time.time()) + 86400))
    rw.commit()
    scheduler = s.start_scheduler()
    try:
        def counts():
            return [rw.execute(q).fetchone()[0] for q in (
                "SELECT count(*) FROM audit", "SELECT count(*) FROM jobs WHERE state = 'succeeded'", "SELECT count(*) FROM crashes",
                "SELECT count(*) FROM jobs WHERE state = 'queued'")]
        deadline = time.time() + 10
        while time.time() < deadline and counts() != [1, 1, 1, 1]:
            time.sleep(0.2)
        assert counts() == [1, 1, 1, 1], "old history went, recent history and queued work stayed"
    finally:
        scheduler.terminate()
        scheduler.wait(timeout=10)
