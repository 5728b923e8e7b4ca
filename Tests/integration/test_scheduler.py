"""The scheduler as a process: down means 503, a SIGKILL mid-create loses nothing, jobs are visible."""
import os
import signal
import time

from conftest import RUN, docker
from test_servers import SETTINGS, container


def test_actions_answer_503_while_the_scheduler_is_down(make_stack):
    s = make_stack(env={"PEON_START_SCHEDULER": "0"})
    r = s.request("PUT", f"/api/v1/server/create/peontest.{RUN}d", json=SETTINGS)
    assert r.status_code == 503 and r.json()["code"] == "scheduler.down" and r.headers["Retry-After"] == "5"
    assert s.request("GET", "/api/v1/orchestrator").json()["scheduler"]["running"] is False
    assert s.request("GET", f"/api/v1/server/get/peontest.{RUN}d").status_code == 404


def test_sigkill_mid_create_then_restart_gives_exactly_one_container(make_stack):
    s = make_stack(env={"PEON_START_SCHEDULER": "0"})
    scheduler = s.start_scheduler()
    try:
        deadline = time.time() + 10
        while time.time() < deadline and not s.request("GET", "/api/v1/orchestrator").json()["scheduler"]["running"]:
            time.sleep(0.1)
        uid = f"peontest.{RUN}k"
        r = s.request("PUT", f"/api/v1/server/create/{uid}?async=true", json=SETTINGS)
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["kind"] == "create" and job["state"] in ("queued", "running")
        # Kill it while the create is in flight (the container may or may not exist yet).
        deadline = time.time() + 10
        while time.time() < deadline and s.request("GET", f"/api/v1/jobs/{job['id']}").json()["state"] == "queued":
            time.sleep(0.005)
        scheduler.send_signal(signal.SIGKILL)
        scheduler.wait(10)
        scheduler = s.start_scheduler()
        deadline = time.time() + 30
        while time.time() < deadline and s.request("GET", f"/api/v1/jobs/{job['id']}").json()["state"] not in ("succeeded", "failed"):
            time.sleep(0.1)
        final = s.request("GET", f"/api/v1/jobs/{job['id']}").json()
        assert final["state"] == "succeeded", final
        import json, urllib.parse
        selector = urllib.parse.quote(json.dumps({"label": [f"peon.server={uid}"]}))
        assert len(docker("GET", f"/containers/json?all=1&filters={selector}")) == 1
        assert container(uid)["State"]["Running"]
        assert s.request("DELETE", f"/api/v1/server/eradicate/{uid}").status_code == 200
    finally:
        scheduler.send_signal(signal.SIGTERM)
        scheduler.wait(15)


def test_web_ui_post_create_and_job_lookup(stack):
    r = stack.request("POST", "/api/v1/server/create?async=true", json={"game_uid": "peontest", "servername": f"{RUN}w", **SETTINGS})
    assert r.status_code == 202
    job = r.json()
    deadline = time.time() + 30
    while time.time() < deadline and stack.request("GET", f"/api/v1/jobs/{job['id']}").json()["state"] != "succeeded":
        time.sleep(0.1)
    assert stack.request("GET", f"/api/v1/server/get/peontest.{RUN}w").json()["container_state"] == "running"
    assert stack.request("GET", "/api/v1/jobs/999999999").status_code == 404
    assert stack.request("GET", "/api/v1/jobs/abc").status_code == 404
    assert stack.request("DELETE", f"/api/v1/server/eradicate/peontest.{RUN}w").status_code == 200


def test_hand_stopped_container_is_observed_within_a_second(stack):
    uid = f"peontest.{RUN}h"
    assert stack.request("PUT", f"/api/v1/server/create/{uid}", json=SETTINGS).status_code == 200
    docker("POST", f"/containers/peon.warcamp.{uid}/stop?t=5")
    stopped = time.time()
    while time.time() < stopped + 3 and stack.request("GET", f"/api/v1/server/get/{uid}").json()["container_state"] == "running":
        time.sleep(0.05)
    assert stack.request("GET", f"/api/v1/server/get/{uid}").json()["container_state"] == "exited"
    assert time.time() - stopped <= 1.0
    time.sleep(3)  # a clean exit is a stop, not a crash: no restart
    assert stack.request("GET", f"/api/v1/server/get/{uid}").json()["container_state"] == "exited"
    assert stack.request("DELETE", f"/api/v1/server/eradicate/{uid}").status_code == 200


def test_stopping_peon_leaves_game_servers_running(make_stack):
    s = make_stack()
    uid = f"peontest.{RUN}s"
    assert s.request("PUT", f"/api/v1/server/create/{uid}", json=SETTINGS).status_code == 200
    assert s.stop() == 0
    assert container(uid)["State"]["Running"], "SIGTERM to Peon must not touch game servers"
    docker("DELETE", f"/containers/peon.warcamp.{uid}?force=1")
    docker("DELETE", f"/networks/peon.warcamp.{uid}")
