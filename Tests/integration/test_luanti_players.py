"""The real Luanti server (plans/luanti, Debian's minetest-server) counted by its log: players and
max_players on the server object. No Luanti client can join here, so a join and a leave are lines
appended to the server's own log, in the words Luanti writes them. With zero players for a
minute, a wake_on_connect server sleeps, and a Luanti client's first datagram wakes it."""
import json
import os
import socket
import subprocess
import time

import pytest

from conftest import ROOT, RUN, Stack, docker
from test_games import HANDSHAKE, directory, handshake, host_port, images, wait_for, wait_job
from test_webhooks import Receiver


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


def test_luanti_sleeps_and_a_clients_hello_wakes_it(luanti):
    """A Luanti server with `idle_stop` 1 and `wake_on_connect`, ready and with no players (counted
    from its log), sleeps within 150 s (`server_state` sleeping, container exited). A single stray
    datagram (eight zero bytes) does not wake it: 6 s later it still sleeps and no `wake` webhook
    came. One datagram, a Luanti client's connection hello (HANDSHAKE) sent more than 5 s after the
    stray one, wakes it: the `wake` webhook (transport udp, the port) within 10 s. The client keeps
    sending its hello every 0.5 s from the same socket, as Luanti retries, and the game itself
    answers it (the protocol id) within 60 s; the server is then `running` and ready. A user's stop
    afterwards leaves it plainly `exited`, not sleeping."""
    uid = f"luanti.{RUN}zz"
    receiver = Receiver()
    try:
        # Every event: `wake` is a new name, which an older list would refuse.
        assert luanti.request("POST", "/api/v1/webhooks", json={"url": receiver.url}).status_code == 201
        r = luanti.request("PUT", f"/api/v1/server/create/{uid}?async=true",
                           json={"SERVER_NAME": "Peon sleeper", "idle_stop": 1, "wake_on_connect": True})
        assert r.status_code == 202, r.text
        job, _ = wait_job(luanti, r.json()["id"])
        assert job["state"] == "succeeded", job

        def server():
            return luanti.request("GET", f"/api/v1/server/get/{uid}").json()

        def wakes():
            return [e for e in (json.loads(b) for _, b, _ in receiver.received) if e.get("server") == uid and e["event"] == "wake"]

        assert server()["wake_on_connect"] is True
        assert wait_for(lambda: server()["ready"], 120), server()
        port = next(p["port"] for p in server()["ports"] if p["name"] == "PORT")

        # Zero players for a minute (the log has no joins): asleep.
        assert wait_for(lambda: server()["server_state"] == "sleeping", 150), server()
        assert server()["container_state"] == "exited"

        # A single datagram that is not Luanti's hello does not wake it.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stray:
            stray.sendto(b"\x00" * 8, ("127.0.0.1", port))
        time.sleep(6)
        assert server()["server_state"] == "sleeping" and not wakes(), (server(), receiver.received)

        # The client's hello, once, wakes it...
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.sendto(HANDSHAKE, ("127.0.0.1", port))
            assert wait_for(wakes, 10), receiver.received
            detail = wakes()[0]["detail"]
            assert detail["transport"] == "udp" and detail["port"] == port, detail
            # ...and the game answers the client's retries, from the same socket, every 0.5 s.
            reply, deadline = None, time.time() + 60
            client.settimeout(0.5)
            while reply is None and time.time() < deadline:
                client.sendto(HANDSHAKE, ("127.0.0.1", port))
                try:
                    data, peer = client.recvfrom(1024)
                except OSError:
                    continue
                if data[:4] == HANDSHAKE[:4] and peer == ("127.0.0.1", port):
                    reply = data
            assert reply is not None, (server(), luanti.output()[-3000:])
        assert wait_for(lambda: server()["server_state"] == "running" and server()["ready"], 30), server()
        assert server()["container_state"] == "running"
        assert len(wakes()) == 1, receiver.received

        # A user's stop: plainly exited, not asleep.
        assert luanti.request("PUT", f"/api/v1/server/stop/{uid}", timeout=120).status_code == 200
        assert wait_for(lambda: server()["server_state"] == "exited", 15), server()
        assert server()["container_state"] == "exited"
    finally:
        assert luanti.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120).status_code == 200
        receiver.close()
