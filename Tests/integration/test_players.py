"""Players and idle auto-stop: a plan that counts players with A2S, answered by a stand-in UDP
server on loopback (the game publishes its port over TCP only, so the UDP port is the test's)."""
import json
import os
import shutil
import socket
import struct
import tempfile
import threading
import time

from conftest import ROOT, RUN, docker
from test_webhooks import Receiver, wait_for


class A2S:
    """Answers A2S_INFO on 127.0.0.1:port with a challenge first, as current Source servers do."""

    def __init__(self, port, players=0, maximum=16):
        self.players, self.maximum, self.queries = players, maximum, 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.running = True
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while self.running:
            try:
                data, peer = self.sock.recvfrom(1400)
            except OSError:
                continue
            self.queries += 1
            if not data.startswith(b"\xff\xff\xff\xffTSource Engine Query\x00"):
                continue
            if len(data) == 25:
                self.sock.sendto(b"\xff\xff\xff\xffA" + struct.pack("<I", 0x1234ABCD), peer)
                continue
            reply = b"\xff\xff\xff\xffI\x11Peon\x00map\x00test\x00Test\x00\x00\x00" + bytes([self.players, self.maximum, 0])
            self.sock.sendto(reply + b"dl\x00\x01", peer)

    def close(self):
        self.running = False
        self.sock.close()


def a2s_plan(plans, game="a2sgame"):
    """The test game as `game`, its players counted over A2S on its TCP-only port's number."""
    shutil.copytree(os.path.join(ROOT, "plans", "peontest"), os.path.join(plans, game))
    with open(os.path.join(ROOT, "plans", "peontest", "plan.json")) as f:
        plan = json.load(f)
    plan["metadata"].update({"game_uid": game, "players": {"query": "a2s", "port": "PORT"}})
    plan["ports"] = [[{"PORT": ["27990", "tcp"]}]]
    with open(os.path.join(plans, game, "plan.json"), "w") as f:
        json.dump(plan, f)


def test_players_are_counted_and_an_idle_server_stops(make_stack):
    plans = tempfile.mkdtemp(prefix="peon-it-plans-")
    receiver = Receiver()
    stand_in = None
    try:
        a2s_plan(plans)
        s = make_stack(env={"PEON_BUNDLED_PLANS": plans, "PEON_PLAYER_POLL_SECONDS": "1"})
        assert s.request("POST", "/api/v1/webhooks", json={"url": receiver.url, "events": ["idle_stop"]}).status_code == 201
        uid = f"a2sgame.{RUN}i"
        for bad in (-1, 10081, 1.5, "x", [], 1e300):
            r = s.request("PUT", f"/api/v1/server/create/{uid}", json={"SERVER_NAME": "x", "PASSWORD": "p", "idle_stop": bad})
            assert r.status_code == 400 and r.json()["status"] == "error", (bad, r.text)
        r = s.request("PUT", f"/api/v1/server/create/{uid}", json={"SERVER_NAME": "x", "PASSWORD": "p", "idle_stop": 1})
        assert r.status_code == 200, r.text
        assert r.json()["idle_stop"] == 1 and r.json()["players"] is None
        port = int(docker("GET", f"/containers/peon.warcamp.{uid}/json")["HostConfig"]["PortBindings"]["27990/tcp"][0]["HostPort"])
        stand_in = A2S(port, players=2)

        def server():
            return s.request("GET", f"/api/v1/server/get/{uid}").json()
        assert wait_for(lambda: server()["players"] == 2, 10), server()
        assert server()["max_players"] == 16
        listed = [x for x in s.request("GET", "/api/v1/servers").json() if x["servername"] == f"{RUN}i"][0]
        assert listed["players"] == 2 and listed["max_players"] == 16
        # /metrics (loopback, no key) shows them too.
        metrics = s.request("GET", "/metrics", key=None).text
        assert f'peon_server_players{{server="{uid}"}} 2' in metrics and f'peon_server_max_players{{server="{uid}"}} 16' in metrics, \
            [l for l in metrics.splitlines() if "players" in l]
        # Nobody left: stopped after one minute at zero players, and the webhook told.
        stand_in.players = 0
        zero = time.time()
        assert wait_for(lambda: server()["players"] == 0, 10)
        assert wait_for(lambda: server()["container_state"] == "exited", 90), server()
        assert time.time() - zero >= 55
        assert wait_for(lambda: any(json.loads(b)["event"] == "idle_stop" for _, b, _ in receiver.received), 10)
        # modify turns it off; players are unknown while stopped.
        r = s.request("PUT", f"/api/v1/server/modify/{uid}", json={"idle_stop": None})
        assert r.status_code == 200 and r.json()["idle_stop"] is None and r.json()["players"] is None
        assert s.request("DELETE", f"/api/v1/server/eradicate/{uid}").status_code == 200
    finally:
        if stand_in:
            stand_in.close()
        receiver.close()
        shutil.rmtree(plans, ignore_errors=True)
