"""The real Luanti server (plans/luanti, Debian's minetest-server) counted by its log: players and
max_players on the server object. No Luanti client can join here, so a join and a leave are lines
appended to the server's own log, in the words Luanti writes them."""
import os
import subprocess

import pytest

from conftest import ROOT, RUN, Stack, docker
from test_games import directory, handshake, host_port, images, wait_for, wait_job


@pytest.fixture(scope="module")
def luanti():
    subprocess.run([os.path.join(ROOT, "scripts", "base-image.sh")], check=True, timeout=600)
    s = Stack(env={"PEON_IMAGE_BUILD_ARGS": f"STEAMCMD=standin,PEON_TEST_RUN={RUN}", "PEON_PLAYER_POLL_SECONDS": "1"})
    yield s
    s.cleanup()
    for image in images(["peon.runtime", f"peon.test={RUN}"]):
        docker("DELETE", f"/images/{image['Id']}?force=1")


def test_luanti_players_come_from_its_log(luanti):
    uid = f"luanti.{RUN}pl"
    r = luanti.request("PUT", f"/api/v1/server/create/{uid}?async=true", json={"SERVER_NAME": "Peon players", "MAX_PLAYERS": "7"})
    assert r.status_code == 202, r.text
    job, _ = wait_job(luanti, r.json()["id"])
    assert job["state"] == "succeeded", job
    try:
        bindings = docker("GET", f"/containers/peon.warcamp.{uid}/json")["HostConfig"]["PortBindings"]
        port = host_port(uid, "30000/udp") if "30000/udp" in bindings else int(next(iter(bindings.values()))[0]["HostPort"])
        assert handshake(port) is not None
        log = os.path.join(directory(luanti, uid), "config", "debug.txt")

        def server():
            return luanti.request("GET", f"/api/v1/server/get/{uid}").json()
        assert wait_for(lambda: server()["players"] == 0, 15), (server(), open(log).read()[-2000:])
        assert server()["max_players"] == 7
        with open(log, "a") as f:
            f.write("2026-01-01 10:00:00: ACTION[Server]: alice [127.0.0.1] joins game. List of players: alice\n")
            f.write("2026-01-01 10:00:01: ACTION[Server]: bob [127.0.0.1] joins game. List of players: alice bob\n")
        assert wait_for(lambda: server()["players"] == 2, 10), server()
        listed = [x for x in luanti.request("GET", "/api/v1/servers").json() if x["servername"] == f"{RUN}pl"][0]
        assert listed["players"] == 2 and listed["max_players"] == 7
        with open(log, "a") as f:
            f.write("2026-01-01 10:00:02: ACTION[Server]: alice leaves game. List of players: bob\n")
        assert wait_for(lambda: server()["players"] == 1, 10), server()
        # A log swapped for a symlink is not followed: the count becomes unknown, never a host file's.
        os.remove(log)
        os.symlink("/etc/passwd", log)
        assert wait_for(lambda: server()["players"] is None, 10), server()
    finally:
        assert luanti.request("DELETE", f"/api/v1/server/eradicate/{uid}").status_code == 200
