"""Cron schedules: stored, listed, fired by the scheduler within a second of their run, and the
missed-run rule when the scheduler was down (late by less than one interval: run once; more: skipped)."""
import sqlite3
import time

from conftest import RUN
from test_servers import SETTINGS


def wait_for(predicate, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


def set_next_run(stack, schedule_id, when):
    db = sqlite3.connect(f"{stack.data}/peon.db", timeout=10)
    with db:
        db.execute("UPDATE cron_schedules SET next_run = ? WHERE id = ?", (when, schedule_id))
    db.close()


def test_cron_schedule_fires_within_a_second(stack):
    uid = f"peontest.{RUN}cs"
    assert stack.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, "start_later": True}).status_code == 200
    r = stack.request("PUT", f"/api/v1/server/schedule/{uid}", json={"cron": "0 4 * * *", "tz": "Europe/Berlin", "action": "start"})
    assert r.status_code == 200, r.text
    sched = r.json()
    assert sched["next_run"] > time.time() and sched["action"] == "start" and sched["tz"] == "Europe/Berlin"
    assert stack.request("PUT", f"/api/v1/server/schedule/{uid}", json={"cron": "0 4 * * *", "tz": "Mars/Base"}).status_code == 400
    r = stack.request("PUT", f"/api/v1/server/schedule/{uid}", json={"cron": "0 4 * * *", "tz": "Nowhere/Land", "action": "stop"})
    assert r.status_code == 400 and "Nowhere/Land" in r.json()["info"]
    # Due in a second: the scheduler enqueues a start, as PUT /server/start does.
    due = int(time.time()) + 1
    set_next_run(stack, sched["id"], due)
    fired = wait_for(lambda: [s for s in stack.request("GET", f"/api/v1/server/schedule/{uid}").json() if s["last_run"]], 5)
    assert fired and fired[0]["last_run"] - due <= 1, fired
    assert fired[0]["last_job"] and fired[0]["next_run"] > time.time()
    done = wait_for(lambda: stack.request("GET", f"/api/v1/server/schedule/{uid}").json()[0]["last_result"] == "succeeded", 30)
    assert done, stack.request("GET", f"/api/v1/server/schedule/{uid}").json()
    assert stack.request("GET", f"/api/v1/server/get/{uid}").json()["container_state"] == "running"
    # A command schedule types its line into the game's console.
    r = stack.request("PUT", f"/api/v1/server/schedule/{uid}", json={"cron": "*/5 * * * *", "action": "command", "command": "say hi"})
    assert r.status_code == 200
    set_next_run(stack, r.json()["id"], int(time.time()))
    ran = wait_for(lambda: [s for s in stack.request("GET", f"/api/v1/server/schedule/{uid}").json()
                            if s["action"] == "command" and s["last_result"] == "succeeded"], 30)
    assert ran, stack.request("GET", f"/api/v1/server/schedule/{uid}").json()
    assert wait_for(lambda: "peon test game got: say hi" in stack.request(
        "GET", f"/api/v1/server/logs/{uid}").json()["logs"], 10)
    assert stack.request("DELETE", f"/api/v1/server/schedule/{uid}", json={"id": sched["id"]}).status_code == 200
    assert len(stack.request("GET", f"/api/v1/server/schedule/{uid}").json()) == 1
    assert stack.request("DELETE", f"/api/v1/server/eradicate/{uid}").status_code == 200


def test_missed_runs_while_the_scheduler_was_down(make_stack):
    s = make_stack(env={"PEON_START_SCHEDULER": "0"})
    scheduler = s.start_scheduler()
    try:
        assert wait_for(lambda: s.request("GET", "/api/v1/orchestrator").json()["scheduler"]["running"], 10)
        uid = f"peontest.{RUN}m"
        assert s.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, "start_later": True}).status_code == 200
        recent = s.request("PUT", f"/api/v1/server/schedule/{uid}", json={"cron": "0 * * * *", "action": "start"}).json()
        old = s.request("PUT", f"/api/v1/server/schedule/{uid}", json={"cron": "0 * * * *", "action": "stop"}).json()
        scheduler.terminate()
        scheduler.wait(15)
        now = int(time.time())
        hour = now - now % 3600
        set_next_run(s, recent["id"], hour)  # this hour's run, missed by less than the hour: runs once at start-up
        set_next_run(s, old["id"], hour - 3600)  # the previous hour's, missed by more than the hour: skipped and recorded
        scheduler = s.start_scheduler()
        got = wait_for(lambda: all(x["last_run"] for x in s.request("GET", f"/api/v1/server/schedule/{uid}").json()), 10)
        assert got
        by_action = {x["action"]: x for x in s.request("GET", f"/api/v1/server/schedule/{uid}").json()}
        assert by_action["start"]["last_job"] and by_action["start"]["last_result"] in ("queued", "running", "succeeded")
        assert by_action["stop"]["last_result"] == "skipped" and by_action["stop"]["last_job"] is None
        assert "scheduler was down" in by_action["stop"]["last_error"]
        for x in by_action.values():
            assert x["next_run"] > now and x["next_run"] % 3600 == 0
        assert s.request("DELETE", f"/api/v1/server/eradicate/{uid}").status_code == 200
    finally:
        scheduler.terminate()
        scheduler.wait(15)
