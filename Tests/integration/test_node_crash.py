"""The scheduler killed (SIGKILL) as it starts each node step of a job: prepare (create), archive
(backup), restore-stage and restore-swap (restore), remove (erase). scripts/stack.sh starts it
again, the job runs again from its start, and everything converges: the job succeeds, no
half-written backup stays (`.partial`), no staged or set-aside folder stays on the node, and the
server's files are the backup's. PEON_TEST_CRASH_ON_NODE_OP kills it the first time only."""
import glob
import os

import pytest

from conftest import RUN
from test_service import wait_until

SETTINGS = {"SERVER_NAME": "Crash", "PASSWORD": "pw"}


def home(stack, uid):
    return os.path.join(stack.data, "servers", *uid.split("."))


def leftovers(stack, uid):
    return [n for n in os.listdir(home(stack, uid)) if n.startswith((".restore-", ".old-"))] + \
        glob.glob(os.path.join(stack.data, "backups", "*", "*", ".*.partial"))


def eventually(predicate, timeout=20):
    return wait_until(predicate, timeout, step=0.2) or predicate()


@pytest.mark.parametrize("step", ["prepare", "archive", "restore-stage", "restore-swap", "remove"])
def test_the_scheduler_killed_at_a_node_step_converges(make_stack, step):
    s = make_stack(env={"PEON_TEST_CRASH_ON_NODE_OP": step})
    uid = f"peontest.{RUN}k{step.replace('-', '')[:8]}"
    r = s.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, "start_later": True}, timeout=120)
    assert r.status_code == 200, r.text
    world = os.path.join(home(s, uid), "user", "world.txt")
    with open(world, "w") as f:
        f.write("saved")
    r = s.request("POST", f"/api/v1/server/backup/{uid}", timeout=120)
    assert r.status_code == 201, r.text
    backup = r.json()["id"]
    with open(world, "w") as f:
        f.write("changed after the backup")
    r = s.request("PUT", f"/api/v1/server/restore/{uid}", json={"id": backup}, timeout=120)
    assert r.status_code == 200, r.text
    assert open(world).read() == "saved"
    assert eventually(lambda: leftovers(s, uid) == []), leftovers(s, uid)
    listed = s.request("GET", f"/api/v1/server/backups/{uid}").json()
    assert [b["id"] for b in listed] == [backup]
    r = s.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120)
    assert r.status_code == 200, r.text
    assert eventually(lambda: not os.path.exists(home(s, uid)))
    # The step did kill the scheduler once, and it came back.
    assert os.path.exists(os.path.join(s.data, "test-crashed-on-node-op"))
    assert s.output().count("peon-scheduler exited unexpectedly (killed by signal 9") == 1, s.output()[-2000:]
