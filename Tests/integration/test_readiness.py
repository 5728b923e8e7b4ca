"""Joinable, not just running (metadata.ready): a server is `starting` until its plan's probe
answers, then `ready` with `ready_at` and the webhook event `ready`; a start that outlives the
plan's start_timeout is `start_failed` (webhook `start_failed`); `peon start --wait` and `peon
create --wait` return when the game accepts players, or fail. The games are the test game with
START_SECONDS of loading (it listens on its TCP port only after), as plans of their own."""
import contextlib
import json
import os
import shutil
import tempfile
import time

import pytest

from conftest import ROOT, RUN
from test_cli import peon
from test_service import wait_until
from test_webhooks import Receiver

SLOW = os.path.join(ROOT, "Tests", "fixtures", "plans", "peonslow")


def plan(folder, game, ready):
    shutil.copytree(SLOW, os.path.join(folder, game))
    path = os.path.join(folder, game, "plan.json")
    with open(path) as f:
        doc = json.load(f)
    doc["metadata"]["game_uid"] = game
    doc["metadata"]["ready"] = ready
    with open(path, "w") as f:
        json.dump(doc, f)


@pytest.fixture(scope="module")
def ready_stack():
    from conftest import Stack
    folder = tempfile.mkdtemp(prefix="peon-it-plans-")
    # Ready when its TCP port accepts; one whose ready line never comes, with a short start_timeout.
    plan(folder, "peonready", {"probe": "tcp", "port": "PORT", "start_timeout": 60})
    plan(folder, "peonnever", {"probe": "log", "line": "a line this game never prints", "start_timeout": 5})
    s = Stack(env={"PEON_BUNDLED_PLANS": folder})
    receiver = Receiver()
    r = s.request("POST", "/api/v1/webhooks", json={"url": receiver.url, "events": ["ready", "start_failed"]})
    assert r.status_code == 201, r.text
    yield s, receiver
    receiver.close()
    s.cleanup()
    shutil.rmtree(folder, ignore_errors=True)


def server(stack, uid):
    return stack.request("GET", f"/api/v1/server/get/{uid}").json()


@contextlib.contextmanager
def erased(stack, uid):
    """The server `uid`, erased (container and files) when the test ends, whatever happened."""
    try:
        yield uid
    finally:
        stack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120)


def events(receiver, uid):
    return [json.loads(b) for _, b, _ in receiver.received if json.loads(b).get("server") == uid]


def test_a_server_is_starting_until_its_game_accepts_players(ready_stack):
    stack, receiver = ready_stack
    with erased(stack, f"peonready.{RUN}s") as uid:
        began = time.time()
        r = stack.request("PUT", f"/api/v1/server/create/{uid}", json={"SERVER_NAME": "R", "PASSWORD": "pw", "START_SECONDS": "4"},
                          timeout=120)
        assert r.status_code == 200, r.text
        created = r.json()
        # Its container runs, but the game is still loading: not joinable yet.
        assert created["container_state"] == "running", created
        assert created["server_state"] == "starting" and created["ready"] is False and created["ready_at"] is None, created
        listed = [x for x in stack.request("GET", "/api/v1/servers").json() if x["servername"] == f"{RUN}s"][0]
        assert listed["server_state"] == "starting" and listed["ready"] is False
        assert wait_until(lambda: server(stack, uid)["ready"], 30, step=0.2), server(stack, uid)
        took = time.time() - began
        now = server(stack, uid)
        assert now["server_state"] == "running" and now["ready_at"].endswith("Z"), now
        assert took >= 4, took
        assert wait_until(lambda: [e for e in events(receiver, uid) if e["event"] == "ready"], 15), receiver.received
        ready = [e for e in events(receiver, uid) if e["event"] == "ready"][0]
        assert 3.5 <= ready["detail"]["seconds"] <= took + 1, ready
        # A stop ends it; a start begins again at starting.
        r = stack.request("PUT", f"/api/v1/server/stop/{uid}", timeout=120)
        assert r.status_code == 200 and r.json()["ready"] is False and r.json()["ready_at"] is None, r.text
        r = stack.request("PUT", f"/api/v1/server/start/{uid}", timeout=120)
        assert r.status_code == 200 and r.json()["server_state"] == "starting", r.text
        assert wait_until(lambda: server(stack, uid)["ready"], 30, step=0.2)


def test_a_start_that_outlives_its_start_timeout_is_reported(ready_stack):
    stack, receiver = ready_stack
    with erased(stack, f"peonnever.{RUN}f") as uid:
        r = stack.request("PUT", f"/api/v1/server/create/{uid}", json={"SERVER_NAME": "F", "PASSWORD": "pw"}, timeout=120)
        assert r.status_code == 200 and r.json()["server_state"] == "starting", r.text
        assert wait_until(lambda: server(stack, uid)["server_state"] == "start_failed", 20, step=0.5), server(stack, uid)
        assert server(stack, uid)["container_state"] == "running" and server(stack, uid)["ready"] is False
        assert wait_until(lambda: [e for e in events(receiver, uid) if e["event"] == "start_failed"], 15), receiver.received
        failed = [e for e in events(receiver, uid) if e["event"] == "start_failed"][0]
        assert failed["detail"]["start_timeout"] == 5, failed
        assert not [e for e in events(receiver, uid) if e["event"] == "ready"]
        # The CLI's --wait says so and fails.
        out = peon(stack, "restart", uid, "--wait")
        assert out.returncode == 1 and "start_timeout" in out.stderr, (out.stdout, out.stderr)


def test_the_cli_waits_until_the_game_accepts_players(ready_stack):
    stack, _ = ready_stack
    with erased(stack, f"peonready.{RUN}w") as uid:
        began = time.time()
        out = peon(stack, "create", uid, "--set", "SERVER_NAME=W", "--set", "PASSWORD=pw", "--set", "START_SECONDS=3", "--wait")
        assert out.returncode == 0, (out.stdout, out.stderr)
        assert f"{uid}: ready" in out.stdout and time.time() - began >= 3, out.stdout
        assert server(stack, uid)["ready"] is True
        assert peon(stack, "stop", uid).returncode == 0
        began = time.time()
        out = peon(stack, "start", uid, "--wait")
        assert out.returncode == 0 and f"{uid}: ready" in out.stdout, (out.stdout, out.stderr)
        assert time.time() - began >= 3
        out = peon(stack, "start", uid, "--wait", "--json")
        assert out.returncode == 0 and json.loads(out.stdout)["ready"] is True, out.stdout
        # Refused before anything is sent.
        for bad in (["--wait-timeout", "0"], ["--wait-timeout", "x"]):
            assert peon(stack, "start", uid, "--wait", *bad).returncode == 64
        assert peon(stack, "create", f"peonready.{RUN}z", "--start-later", "--wait").returncode == 64


def stop_while_starting(stack, uid, settings):
    """Creates `uid` with `settings`, stops it while it is still `starting`; how long the stop took."""
    r = stack.request("PUT", f"/api/v1/server/create/{uid}", json={"SERVER_NAME": "S", "PASSWORD": "pw", **settings}, timeout=120)
    assert r.status_code == 200 and r.json()["server_state"] == "starting", r.text
    began = time.time()
    r = stack.request("PUT", f"/api/v1/server/stop/{uid}", timeout=120)
    assert r.status_code == 200 and r.json()["container_state"] == "exited", r.text
    return time.time() - began


def test_a_stop_while_starting_kills_only_when_the_probe_asks_as_a_client(ready_stack):
    stack, _ = ready_stack
    # A game still loading (and deaf to SIGTERM meanwhile) that answers no client: killed at once,
    # not after the plan's 20 s grace.
    with erased(stack, f"peonready.{RUN}k") as uid:
        assert stop_while_starting(stack, uid, {"START_SECONDS": "60"}) < 10
    # A log-line probe proves nothing about players: its game gets the grace and saves (3 s here).
    with erased(stack, f"peonnever.{RUN}g") as uid:
        assert stop_while_starting(stack, uid, {"STOP_SECONDS": "3"}) >= 2.5
        assert any("stopping" in line for line in stack.request("GET", f"/api/v1/server/logs/{uid}").json()["logs"])
