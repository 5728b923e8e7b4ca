"""The console over Source RCON: a plan declaring metadata.rcon (Tests/fixtures/plans/peonrcon)
sends console commands to the game's RCON (the test game's rcon.c), which the scheduler reaches
over the server's own network; the answer carries RCON's response. A wrong password, silence,
an endless answer and garbage end in clear answers, and the stack stays healthy."""
import json
import os
import time

import pytest

from conftest import ROOT, RUN, Stack, docker

PLANS = os.path.join(ROOT, "Tests", "fixtures", "plans")


@pytest.fixture(scope="module")
def rcon_stack():
    labels = (docker("GET", "/images/peon-test-game:rcon/json") or {}).get("Config", {}).get("Labels") or {}
    assert labels.get("peon.test.rcon") == "1", "no peon-test-game:rcon with the RCON stand-in: run bash scripts/docker.sh image"
    s = Stack(env={"PEON_BUNDLED_PLANS": PLANS})
    yield s
    s.cleanup()


def console(stack, uid, command):
    return stack.request("PUT", f"/api/v1/server/console/{uid}", json={"command": command})


def create(stack, uid, **settings):
    r = stack.request("PUT", f"/api/v1/server/create/{uid}", json={"SERVER_NAME": "RCON", **settings})
    assert r.status_code == 200, r.text


def wait_until_listening(stack, uid):
    """The game's RCON opens a moment after its container runs: until then, rcon.unreachable."""
    deadline = time.time() + 30
    while time.time() < deadline:
        r = console(stack, uid, "echo ready")
        if not (r.status_code == 409 and r.json()["code"] == "rcon.unreachable"):
            return r
        time.sleep(0.2)
    raise AssertionError(f"RCON never listened: {r.text}")


def test_console_commands_go_over_rcon(rcon_stack):
    stack = rcon_stack
    uid = f"peonrcon.{RUN}rcon"
    create(stack, uid)  # no RCON_PASSWORD: Peon generates one
    try:
        r = wait_until_listening(stack, uid)
        assert r.status_code == 200, r.text
        assert r.json()["via"] == "rcon" and r.json()["output"] == ["ready"] and r.json()["response"] == "ready"

        # The generated password reached the game; the RCON port is not published.
        container = docker("GET", f"/containers/peon.warcamp.{uid}/json")
        password = [e.split("=", 1)[1] for e in container["Config"]["Env"] if e.startswith("RCON_PASSWORD=")]
        assert len(password) == 1 and len(password[0]) == 24 and password[0].isalnum()
        assert not any(key.startswith("27015/") for key in container["HostConfig"]["PortBindings"] or {})

        # Text is data for the game, passed through as it is.
        marker = "peon-" + os.urandom(4).hex()
        hostile = f"echo {marker} $(id) `id`; rm -rf / && 'x' \"y\" sägen 🎮"
        r = console(stack, uid, hostile)
        assert r.status_code == 200 and r.json()["command"] == hostile, r.text
        assert r.json()["response"] == hostile[len("echo "):] and r.json()["truncated"] is False
        r = console(stack, uid, "status")
        assert r.status_code == 200 and r.json()["output"] == ["unknown command: status"], r.text

        # A multi-packet answer (3 packets, each counting from 0) comes whole.
        r = console(stack, uid, "long 10000")
        chunk = ("0123456789" * 410)[:4096]
        assert r.status_code == 200 and r.json()["response"] == chunk * 2 + chunk[:1808] and r.json()["truncated"] is False

        # An answer without end is cut at 64 KiB, with a note.
        r = console(stack, uid, "flood")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["truncated"] is True and body["response"] == "f" * 65536 and "truncated" in body["output"][-1]

        # Garbage and silence: clear 409s, and RCON works again afterwards.
        r = console(stack, uid, "garbage")
        assert r.status_code == 409 and r.json()["code"] == "rcon.protocol", r.text
        r = console(stack, uid, "silent")
        assert r.status_code == 409 and r.json()["code"] == "rcon.timeout", r.text
        assert "RCON" in r.json()["info"] or "RCON" in r.json()["error"], r.text
        assert console(stack, uid, "echo still here").json()["response"] == "still here"

        # Bad requests never reach the game.
        for bad in [{"command": "a\nb"}, {"command": ""}, {"command": "x" * 1025}, {"command": 5}, {}, {"command": "\u0000"}]:
            r = stack.request("PUT", f"/api/v1/server/console/{uid}", json=bad)
            assert r.status_code == 400 and r.json()["code"] == "request.invalid", (bad, r.text)

        # The request is audited, the answer is not.
        audit = stack.request("GET", f"/api/v1/audit?server={uid}&limit=100")
        assert audit.status_code == 200, audit.text
        entries = audit.json()["entries"]
        assert any(e["method"] == "PUT" and e["path"] == f"/api/v1/server/console/{uid}" and e["status"] == 200 for e in entries)
        assert marker not in json.dumps(audit.json()) and "0123456789" * 10 not in json.dumps(audit.json())

        assert stack.request("PUT", f"/api/v1/server/stop/{uid}").status_code == 200
        r = console(stack, uid, "echo x")
        assert r.status_code == 409 and r.json()["code"] == "server.not_running"
        assert stack.request("GET", "/api/v1/orchestrator").status_code == 200
    finally:
        stack.request("DELETE", f"/api/v1/server/eradicate/{uid}")


def test_a_wrong_rcon_password_is_a_clear_error(rcon_stack):
    stack = rcon_stack
    uid = f"peonrcon.{RUN}rconpw"
    # The game expects another password than the server's setting.
    create(stack, uid, RCON_PASSWORD="peon-sends-this", RCON_ACCEPT="the-game-wants-that")
    try:
        r = wait_until_listening(stack, uid)
        assert r.status_code == 409 and r.json()["code"] == "rcon.auth_failed", r.text
        assert "password" in r.json()["error"] and "peon-sends-this" not in r.text
        # The fixed password works.
        r = stack.request("PUT", f"/api/v1/server/modify/{uid}", json={"RCON_PASSWORD": "the-game-wants-that"})
        assert r.status_code == 200, r.text
        assert stack.request("PUT", f"/api/v1/server/restart/{uid}").status_code == 200
        r = wait_until_listening(stack, uid)
        assert r.status_code == 200 and r.json()["response"] == "ready", r.text
    finally:
        stack.request("DELETE", f"/api/v1/server/eradicate/{uid}")
