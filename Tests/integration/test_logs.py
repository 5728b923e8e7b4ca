"""Game output: the scheduler copies it into SQLite, GET /server/logs answers PEON's FastAPI form,
and ?follow=true streams new lines as Server-Sent Events with Last-Event-ID resume."""
import time

import pytest

from conftest import RUN

SETTINGS = {"SERVER_NAME": "Logs", "PASSWORD": "pw"}


def wait_for_line(stack, uid, text, timeout=20, **params):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = stack.request("GET", f"/api/v1/server/logs/{uid}", params=params)
        assert r.status_code == 200, r.text
        if any(text in line for line in r.json()["logs"]):
            return r.json()
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never reached the logs: {r.json()}")


def events(response):
    """(id, data) pairs of an SSE stream, as they arrive."""
    event = {}
    for raw in response.iter_lines(decode_unicode=True):
        if raw == "":
            if "data" in event:
                yield int(event.get("id", 0)), event["data"]
            event = {}
        elif not raw.startswith(":"):
            name, _, value = raw.partition(": ")
            event[name] = value


def test_logs_lines_sessions_and_follow(stack):
    uid = f"peontest.{RUN}logs"
    assert stack.request("PUT", f"/api/v1/server/create/{uid}", json=SETTINGS).status_code == 200
    try:
        body = wait_for_line(stack, uid, "peon test game listening")
        assert list(body) == ["server_uid", "container_state", "session_only", "lines", "logs"]
        assert body["server_uid"] == uid and body["container_state"] == "running" and body["session_only"] is True
        assert body["lines"] == 200

        # A stream from now on: the stop's own output arrives as an event.
        with stack.request("GET", f"/api/v1/server/logs/{uid}", params={"follow": "true", "lines": "1"}, stream=True,
                           timeout=30) as r:
            assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
            stream = events(r)
            first_id, first = next(stream)
            assert "listening" in first
            stack.request("PUT", f"/api/v1/server/stop/{uid}?async=true")
            seen = []
            for event_id, data in stream:
                seen.append((event_id, data))
                if "stopping" in data:
                    break
            assert all(i > first_id for i, _ in seen)
        stop_id = seen[-1][0]

        # A new run is a new session: session_only shows it alone, session_only=false both runs.
        assert stack.request("PUT", f"/api/v1/server/start/{uid}").status_code == 200
        deadline = time.time() + 20
        while time.time() < deadline:
            current = stack.request("GET", f"/api/v1/server/logs/{uid}").json()["logs"]
            if current and not any("stopping" in l for l in current):
                break
            time.sleep(0.2)
        assert current and not any("stopping" in l for l in current)
        both = stack.request("GET", f"/api/v1/server/logs/{uid}", params={"session_only": "false"}).json()["logs"]
        assert sum("listening" in l for l in both) == 2 and any("stopping" in l for l in both)
        assert len(stack.request("GET", f"/api/v1/server/logs/{uid}", params={"lines": "1", "session_only": "0"}).json()["logs"]) == 1

        # Resume: only lines after the given id.
        with stack.request("GET", f"/api/v1/server/logs/{uid}", params={"follow": "true"},
                           headers={"Last-Event-ID": str(stop_id)}, stream=True, timeout=30) as r:
            event_id, data = next(events(r))
            assert event_id == stop_id + 1 and "listening" in data
    finally:
        stack.request("DELETE", f"/api/v1/server/destroy/{uid}", json={"eradicate": True})


@pytest.mark.parametrize("query", ["lines=0", "lines=10001", "lines=1e3", "lines=-5", "lines=%00", "session_only=maybe",
                                   "follow=2", "follow=true&last_event_id=-1", "follow=true&last_event_id=1e400"])
def test_hostile_log_queries_are_400(stack, query):
    uid = f"peontest.{RUN}nolog"
    r = stack.request("GET", f"/api/v1/server/logs/{uid}?{query}")
    assert r.status_code in (400, 404), r.text
    if r.status_code == 404:  # unknown server: checked after the query
        pytest.fail(f"the query was not validated first: {r.text}")


def test_logs_of_an_unknown_server_are_404(stack):
    r = stack.request("GET", f"/api/v1/server/logs/peontest.{RUN}nosuch")
    assert r.status_code == 404 and r.json()["code"] == "server.not_found"


def test_console_types_a_line_and_answers_the_output(stack):
    uid = f"peontest.{RUN}console"
    assert stack.request("PUT", f"/api/v1/server/create/{uid}", json=SETTINGS).status_code == 200
    try:
        wait_for_line(stack, uid, "peon test game listening")
        for command in ["status", "say $(id) `id`; rm -rf / && echo 'x' \"y\"", "sägen 🎮 " + "x" * 900]:
            r = stack.request("PUT", f"/api/v1/server/console/{uid}", json={"command": command})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["command"] == command and f"peon test game got: {command}" in body["output"], body
        audit = stack.request("GET", "/api/v1/orchestrator")  # the stack is still healthy
        assert audit.status_code == 200
        for bad in [{"command": "a\nb"}, {"command": ""}, {"command": "x" * 1025}, {"command": 5}, {},
                    {"command": "\u0000"}, {"command": "\u001b[31m"}]:
            r = stack.request("PUT", f"/api/v1/server/console/{uid}", json=bad)
            assert r.status_code == 400 and r.json()["code"] == "request.invalid", (bad, r.text)
        assert stack.request("PUT", f"/api/v1/server/stop/{uid}").status_code == 200
        r = stack.request("PUT", f"/api/v1/server/console/{uid}", json={"command": "status"})
        assert r.status_code == 409 and r.json()["code"] == "server.not_running"
        r = stack.request("PUT", f"/api/v1/server/console/peontest.{RUN}nosuch", json={"command": "status"})
        assert r.status_code == 404
    finally:
        stack.request("DELETE", f"/api/v1/server/destroy/{uid}", json={"eradicate": True})


def open_follow(stack, uid, key):
    r = stack.request("GET", f"/api/v1/server/logs/{uid}", key=key, params={"follow": "true"}, stream=True, timeout=30)
    if r.status_code == 200:
        # The stream's first comment: it holds its slot now. The line iterator is kept with the
        # response: dropped, it would close the connection (and free the slot at the next write).
        r.lines = r.iter_lines()
        next(r.lines)
    return r


def test_follows_are_capped_per_key_and_per_server(stack):
    uid = f"peontest.{RUN}follows"
    assert stack.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, "start_later": True}).status_code == 200
    keys = [stack.request("POST", "/api/v1/keys", json={"scope": "read"}).json()["key"] for _ in range(3)]
    opened = []
    try:
        for _ in range(4):
            opened.append(open_follow(stack, uid, keys[0]))
            assert opened[-1].status_code == 200
        r = open_follow(stack, uid, keys[0])
        assert r.status_code == 429 and r.json()["code"] == "logs.follow_limit" and r.headers["Retry-After"], r.text
        for _ in range(4):
            opened.append(open_follow(stack, uid, keys[1]))
            assert opened[-1].status_code == 200
        r = open_follow(stack, uid, keys[2])  # a fresh key, but the server holds 8
        assert r.status_code == 429 and r.json()["code"] == "logs.follow_limit", r.text
    finally:
        for r in opened:
            r.close()
        stack.request("DELETE", f"/api/v1/server/destroy/{uid}", json={"eradicate": True})


def test_follows_leave_wait_slots_to_actions(make_stack):
    """One worker of 8 threads: 6 may wait, follows take at most 3; an action still waits for its job."""
    s = make_stack(env={"PEON_WORKERS": "1", "PEON_WORKER_THREADS": "8"})
    uid = f"peontest.{RUN}slots"
    assert s.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, "start_later": True}).status_code == 200
    opened = []
    try:
        for _ in range(3):
            opened.append(open_follow(s, uid, "default"))
            assert opened[-1].status_code == 200
        r = open_follow(s, uid, "default")
        assert r.status_code == 503 and r.json()["code"] == "stream.busy", r.text
        r = s.request("PUT", f"/api/v1/server/start/{uid}", timeout=120)
        assert r.status_code == 200, r.text  # waited for its job, not 202
    finally:
        for r in opened:
            r.close()
        s.request("DELETE", f"/api/v1/server/destroy/{uid}", json={"eradicate": True})
