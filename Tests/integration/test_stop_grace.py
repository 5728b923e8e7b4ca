"""A plan's stop: its own grace (metadata.stop.grace_seconds) and its ready line
(metadata.stop.ready_line). Tests/fixtures/plans/peonslow is the test game with a 20 s grace whose
ready line is "peon test game listening"; START_SECONDS makes it load first, deaf to SIGTERM, as
Luanti is (a restart right after a start used to wait the whole grace)."""
import os
import time

import pytest

from conftest import ROOT, RUN, Stack
from test_service import wait_until

PLANS = os.path.join(ROOT, "Tests", "fixtures", "plans")


@pytest.fixture(scope="module")
def slow_stack():
    s = Stack(env={"PEON_BUNDLED_PLANS": PLANS})
    yield s
    s.cleanup()


def timed(fn):
    started = time.time()
    r = fn()
    return r, time.time() - started


def logs(stack, uid):
    return stack.request("GET", f"/api/v1/server/logs/{uid}").json().get("logs", [])


def create(stack, uid, **settings):
    r = stack.request("PUT", f"/api/v1/server/create/{uid}", json={"SERVER_NAME": "Slow", "PASSWORD": "pw", **settings}, timeout=120)
    assert r.status_code == 200, r.text


def test_a_server_still_loading_is_stopped_without_waiting(slow_stack):
    uid = f"peonslow.{RUN}load"
    try:
        create(slow_stack, uid, START_SECONDS="60")
        # Still loading (it ignores SIGTERM): a restart kills it at once instead of waiting 20 s.
        r, took = timed(lambda: slow_stack.request("PUT", f"/api/v1/server/restart/{uid}", timeout=120))
        assert r.status_code == 200, r.text
        assert took < 15, took
        assert not any("listening" in line for line in logs(slow_stack, uid))
    finally:
        slow_stack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120)


def test_a_ready_server_gets_its_plans_grace(slow_stack):
    uid = f"peonslow.{RUN}save"
    try:
        create(slow_stack, uid, STOP_SECONDS="60")
        # Ready (its ready line, the log probe of a plan without metadata.ready, was seen).
        assert wait_until(lambda: slow_stack.request("GET", f"/api/v1/server/get/{uid}").json()["ready"], 20, step=0.2)
        assert any("listening" in line for line in logs(slow_stack, uid))
        # It takes 60 s to save: the plan's 20 s grace (not the default 30 s) ends the stop.
        r, took = timed(lambda: slow_stack.request("PUT", f"/api/v1/server/stop/{uid}", timeout=120))
        assert r.status_code == 200, r.text
        assert 15 < took < 28, took
        assert any("stopping" in line for line in logs(slow_stack, uid))
    finally:
        slow_stack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120)
