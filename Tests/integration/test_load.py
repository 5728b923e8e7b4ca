"""Long requests never hold the API: actions that wait for slow game servers occupy a thread, not a
worker process; a process keeps threads for reads; a client that goes away frees its thread; one
client cannot take every thread (limit_conn)."""
import concurrent.futures
import time

import requests

from conftest import RUN

SLOW = {"SERVER_NAME": "Slow", "PASSWORD": "pw", "STOP_SECONDS": "8"}


def make_servers(stack, prefix, count):
    """Running and ready: a stop gets the plan's grace (a server still starting is killed at once)."""
    uids = [f"peontest.{RUN}{prefix}{i}" for i in range(count)]
    for uid in uids:
        r = stack.request("PUT", f"/api/v1/server/create/{uid}", json=SLOW)
        assert r.status_code == 200, r.text
    # Setup, not a measure: eight creates on two shared cores in a full suite may take a while.
    deadline = time.monotonic() + 90
    while not all(stack.request("GET", f"/api/v1/server/get/{uid}").json()["ready"] for uid in uids):
        servers = [stack.request("GET", f"/api/v1/server/get/{uid}").json() for uid in uids]
        assert time.monotonic() < deadline, ("not ready", [(s["servername"], s["server_state"]) for s in servers if not s["ready"]])
        time.sleep(0.2)
    return uids


def destroy(stack, uids):
    for uid in uids:
        stack.request("DELETE", f"/api/v1/server/destroy/{uid}?async=true", json={"eradicate": True})


def timed(stack, path, timeout=5):
    started = time.monotonic()
    r = stack.request("GET", path, timeout=timeout)
    return r.status_code, time.monotonic() - started


def test_slow_stops_do_not_freeze_reads(make_stack):
    # Two worker processes (the default here) and four 8 s stops in flight: before threads, two
    # stops held both workers and GET /orchestrator waited for them.
    stack = make_stack()
    uids = make_servers(stack, "slow", 4)
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            stops = [pool.submit(stack.request, "PUT", f"/api/v1/server/stop/{uid}") for uid in uids]
            time.sleep(1.0)
            assert not any(f.done() for f in stops), "the stops should still be saving"
            for path in ["/api/v1/orchestrator", "/api/v1/servers", f"/api/v1/server/get/{uids[0]}"] * 3:
                status, _ = timed(stack, path)  # a stalled API would time out here (5 s < 8 s)
                assert status == 200
            assert not any(f.done() for f in stops)
            results = [f.result() for f in stops]
        assert all(r.status_code == 200 and r.json()["container_state"] == "exited" for r in results), [r.text for r in results]
    finally:
        destroy(stack, uids)


def test_waiting_beyond_the_budget_answers_with_the_job(make_stack):
    # 4 threads per process, 3 may wait: 2 processes hold 6 waiters, so of 8 stops at least 2
    # come back at once with their job (202), and reads are still served.
    stack = make_stack(env={"PEON_WORKER_THREADS": "4"})
    uids = make_servers(stack, "budget", 8)
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            stops = [pool.submit(stack.request, "PUT", f"/api/v1/server/stop/{uid}") for uid in uids]
            deadline = time.monotonic() + 6  # well before the 8 s stops end
            while sum(f.done() for f in stops) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            early = [f.result() for f in stops if f.done()]
            assert len(early) >= 2 and all(r.status_code == 202 and r.json()["kind"] == "stop" for r in early), \
                [r.text for r in early]
            assert timed(stack, "/api/v1/orchestrator")[0] == 200
            results = [f.result() for f in stops]
        assert {r.status_code for r in results} <= {200, 202}
        for r in results:
            if r.status_code == 202:  # the job still runs to its end
                job = r.json()["id"]
                deadline = time.time() + 30
                while stack.request("GET", f"/api/v1/jobs/{job}").json()["state"] not in ("succeeded", "failed"):
                    assert time.time() < deadline
                    time.sleep(0.2)
                assert stack.request("GET", f"/api/v1/jobs/{job}").json()["state"] == "succeeded"
    finally:
        destroy(stack, uids)


def test_a_client_that_goes_away_frees_its_thread(make_stack):
    # One process with one thread: while it waits for an 8 s stop nothing else is answered, until
    # the waiting client hangs up; then the thread stops waiting (the job still finishes).
    stack = make_stack(env={"PEON_WORKERS": "1", "PEON_WORKER_THREADS": "1"})
    [uid] = make_servers(stack, "gone", 1)
    try:
        try:
            stack.request("PUT", f"/api/v1/server/stop/{uid}", timeout=1)
            assert False, "the stop should take 8 s"
        except requests.exceptions.ReadTimeout:
            pass
        status, took = timed(stack, "/api/v1/orchestrator", timeout=6)
        assert status == 200 and took < 4, took
        deadline = time.time() + 30
        while stack.request("GET", f"/api/v1/server/get/{uid}").json()["container_state"] != "exited":
            assert time.time() < deadline
            time.sleep(0.2)
    finally:
        destroy(stack, [uid])


def test_one_client_cannot_take_every_thread(make_stack):
    stack = make_stack(env={"PEON_CONN_LIMIT": "2"})
    uids = make_servers(stack, "conn", 2)
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            stops = [pool.submit(stack.request, "PUT", f"/api/v1/server/stop/{uid}") for uid in uids]
            time.sleep(1.0)
            r = stack.request("GET", "/api/v1/orchestrator")
            assert r.status_code == 429 and r.json()["code"] == "rate_limited" and r.headers["Retry-After"] == "1"
            assert all(f.result().status_code == 200 for f in stops)
        assert stack.request("GET", "/api/v1/orchestrator").status_code == 200
    finally:
        destroy(stack, uids)
