"""The worker pool: a killed worker is replaced, SIGTERM drains in-flight requests."""
import os
import signal
import threading
import time


def test_killed_worker_is_replaced(make_stack):
    s = make_stack()
    before = s.worker_pids()
    assert len(before) == 2
    os.kill(before[0], signal.SIGKILL)
    codes = [s.request("GET", "/api/v1/plans").status_code for _ in range(60)]
    assert codes.count(200) == 60
    deadline = time.time() + 5
    while time.time() < deadline and len(s.worker_pids()) < 2:
        time.sleep(0.1)
    after = s.worker_pids()
    assert len(after) == 2 and before[0] not in after
    assert "worker exited, respawning" in s.output()


def test_sigterm_drains_in_flight_request(make_stack, plan_server):
    s = make_stack(env={"PEON_PLANS_URL": plan_server.url + "/slow"})
    result = {}

    def slow():
        result["r"] = s.request("PUT", "/api/v1/plans")

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(1.0)  # the index answers after 3 s: the request is in a worker now
    started = time.time()
    s.proc.send_signal(signal.SIGTERM)
    t.join(15)
    assert s.proc.wait(15) == 0
    took = time.time() - started
    assert result["r"].status_code == 200, result["r"].text
    assert "slowgame" in result["r"].json()["new_recipies"]
    assert took < 8
    assert not os.path.exists(os.path.join(s.data, "run", "api.sock"))
    assert "worker pool stopped" in s.output()


def test_ctrl_c_stops_everything(make_stack):
    s = make_stack()
    pids = [s.api_pid(), *s.worker_pids()]
    os.killpg(s.proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    assert s.proc.wait(10) == 0
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert not os.path.exists(os.path.join(s.data, "run", "api.sock"))
    assert not os.path.exists(os.path.join(s.data, "nginx", "nginx.pid"))
    assert "peon stopped" in s.output()
