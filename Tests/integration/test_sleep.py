"""Sleep and wake (`wake_on_connect`): a server stopped for being idle sleeps; Peon holds its
published ports (on PEON_GAME_BIND), answers A2S_INFO for it without waking it, and wakes it for
a real client: two datagrams from one address within 5 s, or a TCP connection that sends (a
connect scan, a stray datagram and PEON_WAKE_IGNORE's addresses never wake). The game is the test
game with its UDP stand-in (udp.c: A2S_INFO with PLAYERS=0, anything else echoed) on UDP_PORT."""
import json
import os
import shutil
import socket
import tempfile
import time

from conftest import ROOT, RUN
from test_servers import SETTINGS
from test_service import wait_until
from test_webhooks import Receiver

QUERY = b"\xff\xff\xff\xffTSource Engine Query\x00"


def sleep_plan(folder, game="sleepgame"):
    """The test game as `game`: its TCP echo on PORT, the UDP stand-in on UDP_PORT, players and
    readiness over A2S there, and 3 s of loading at every start (so `starting` shows)."""
    shutil.copytree(os.path.join(ROOT, "plans", "peontest"), os.path.join(folder, game))
    path = os.path.join(folder, game, "plan.json")
    with open(path) as f:
        plan = json.load(f)
    plan["metadata"].update({"game_uid": game, "players": {"query": "a2s", "port": "UDP_PORT"},
                             "ready": {"probe": "a2s", "port": "UDP_PORT", "start_timeout": 60}})
    plan["ports"] = [[{"PORT": ["27960", "tcp"]}, {"UDP_PORT": ["27961", "udp"]}]]
    plan["environment"]["START_SECONDS"] = "3"
    with open(path, "w") as f:
        json.dump(plan, f)


def host_ports(server):
    """The server object's published (TCP, UDP) ports (the plan's numbers, shifted when taken)."""
    ports = {p["name"]: p["port"] for p in server["ports"]}
    return ports["PORT"], ports["UDP_PORT"]


def udp(source="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((source, 0))
    s.settimeout(3)
    return s


def a2s_info(port, host="127.0.0.1"):
    """(name, players) as A2S_INFO answers on `port`, asked as a client does (challenge answered)."""
    with udp("0.0.0.0" if host != "127.0.0.1" else "127.0.0.1") as s:
        s.sendto(QUERY, (host, port))
        reply = s.recv(1400)
        if reply[:5] == b"\xff\xff\xff\xffA":
            s.sendto(QUERY + reply[5:9], (host, port))
            reply = s.recv(1400)
    assert reply[:5] == b"\xff\xff\xff\xffI", reply
    name, _map, _folder, _game, rest = reply[6:].split(b"\x00", 4)
    return name.decode(), rest[2]


def echoed(sock, port, payload, seconds=20, host="127.0.0.1"):
    """Whether the game at `host`:`port` echoes `payload` to `sock`, sent again every second as
    a client retries (answers to earlier datagrams are skipped)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        sock.sendto(payload, (host, port))
        until = time.time() + 1
        while time.time() < until:
            sock.settimeout(max(0.05, until - time.time()))
            try:
                data, peer = sock.recvfrom(2048)
            except OSError:
                continue
            if data == b"echo:" + payload and peer == (host, port):
                return True
    return False


def read_line(sock):
    """What `sock` receives up to a newline (less when the other side closes first)."""
    got = b""
    while not got.endswith(b"\n"):
        chunk = sock.recv(100)
        if not chunk:
            break
        got += chunk
    return got


def free(tcp_port, udp_port):
    """Whether this test can bind both host ports (nothing holds them any more)."""
    try:
        with socket.socket() as t, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            t.bind(("127.0.0.1", tcp_port))
            t.listen(1)
            u.bind(("127.0.0.1", udp_port))
        return True
    except OSError:
        return False


def test_an_idle_server_sleeps_and_a_client_wakes_it(make_stack):
    """Five servers idle for the same minute (one wait for all). With wake_on_connect they sleep
    (`idle_stop` webhook, container exited); without, it is plainly `exited`. Asleep: a user's stop
    ends sleeping and frees the ports; a user's start wakes at once; on UDP, A2S_INFO is answered
    as "<name> (sleeping)", and neither it, a stray datagram nor an ignored address wakes, but a
    second datagram within 5 s does; on TCP, neither an ignored address nor a connect scan wakes,
    a connection that sends does and gets the game's answer to its bytes. A wake is a webhook
    `wake` (transport, port), then `starting`, then `running` and ready; the game answers."""
    folder = tempfile.mkdtemp(prefix="peon-it-plans-")
    receiver = Receiver()
    uids = {key: f"sleepgame.{RUN}z{key}" for key in ("udp", "tcp", "start", "stop", "plain")}
    s = None
    try:
        sleep_plan(folder)
        # An idle_stop minute of 15 s: the sleep comes without a minute's wait.
        s = make_stack(env={"PEON_BUNDLED_PLANS": folder, "PEON_PLAYER_POLL_SECONDS": "1", "PEON_WAKE_IGNORE": "127.0.0.2/32",
                            "PEON_IDLE_MINUTE_SECONDS": "15"})
        # Every event: `wake` is a new name, which an older list would refuse.
        assert s.request("POST", "/api/v1/webhooks", json={"url": receiver.url}).status_code == 201

        def server(uid):
            return s.request("GET", f"/api/v1/server/get/{uid}").json()

        def events(uid, kind):
            return [e for e in (json.loads(b) for _, b, _ in receiver.received) if e.get("server") == uid and e["event"] == kind]

        def woken(uid):
            """Asserts that `uid` goes `starting`, then `running` and ready (container running) within 30 s."""
            seen, deadline = [], time.time() + 30
            while time.time() < deadline:
                now = server(uid)
                if not seen or seen[-1] != now["server_state"]:
                    seen.append(now["server_state"])
                if now["server_state"] == "running" and now["ready"]:
                    break
                time.sleep(0.2)
            assert "starting" in seen and seen[-1] == "running" and now["container_state"] == "running", (seen, now)

        def wake_event(uid, transport, port):
            assert wait_until(lambda: events(uid, "wake"), 15), receiver.received
            detail = events(uid, "wake")[0]["detail"]
            assert detail["transport"] == transport and detail["port"] == port, detail

        for key, uid in uids.items():
            wake = key != "plain"
            r = s.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, "idle_stop": 1, "wake_on_connect": wake})
            assert r.status_code == 200 and r.json()["wake_on_connect"] is wake, r.text
        ports = {key: host_ports(server(uid)) for key, uid in uids.items()}
        listed = {x["servername"]: x for x in s.request("GET", "/api/v1/servers").json()}
        assert listed[f"{RUN}zudp"]["wake_on_connect"] is True and listed[f"{RUN}zplain"]["wake_on_connect"] is False
        assert wait_until(lambda: all(server(u)["ready"] for u in uids.values()), 60, step=0.5), [server(u) for u in uids.values()]

        # Zero players for a minute: asleep with wake_on_connect, stopped without.
        sleepers = [uids[key] for key in ("udp", "tcp", "start", "stop")]
        assert wait_until(lambda: all(server(u)["server_state"] == "sleeping" for u in sleepers), 150, step=1), \
            [server(u) for u in sleepers]
        assert all(server(u)["container_state"] == "exited" for u in sleepers)
        # Not sleeping: `server_state` is then Docker's word, as `container_state`.
        assert wait_until(lambda: server(uids["plain"])["server_state"] == "exited", 30), server(uids["plain"])
        assert wait_until(lambda: all(events(u, "idle_stop") for u in uids.values()), 15), receiver.received
        assert [x for x in s.request("GET", "/api/v1/servers").json() if x["servername"] == f"{RUN}zudp"][0]["server_state"] == "sleeping"

        # A user's stop ends sleeping (plainly exited), and the host ports are free again.
        uid = uids["stop"]
        assert s.request("PUT", f"/api/v1/server/stop/{uid}", timeout=120).status_code == 200
        assert wait_until(lambda: server(uid)["server_state"] == "exited", 15), server(uid)
        assert wait_until(lambda: free(*ports["stop"]), 10), ports["stop"]

        # A user's start wakes at once, and the game has its ports.
        uid = uids["start"]
        assert s.request("PUT", f"/api/v1/server/start/{uid}", timeout=120).status_code == 200
        woken(uid)
        with udp() as client:
            assert echoed(client, ports["start"][1], b"started")

        # UDP: a stray datagram, an ignored address's two, and A2S_INFO (answered) do not wake...
        uid, port = uids["udp"], ports["udp"][1]
        client = udp()
        client.sendto(b"stray", ("127.0.0.1", port))
        time.sleep(6)
        with udp("127.0.0.2") as ignored:
            for _ in range(2):
                ignored.sendto(b"ignored", ("127.0.0.1", port))
                time.sleep(0.5)
        name, players = a2s_info(port)
        assert name.endswith(" (sleeping)") and players == 0, (name, players)
        time.sleep(3)
        assert server(uid)["server_state"] == "sleeping" and not events(uid, "wake"), server(uid)
        # ...a second datagram within 5 s does; the client's retry then gets the game's answer.
        client.sendto(b"knock 1", ("127.0.0.1", port))
        time.sleep(1)
        client.sendto(b"knock 2", ("127.0.0.1", port))
        woken(uid)
        wake_event(uid, "udp", port)
        assert echoed(client, port, b"knock 3")
        client.close()

        # TCP: an ignored address (even sending) and a connect scan do not wake...
        uid, port = uids["tcp"], ports["tcp"][0]
        ignored = socket.socket()
        ignored.bind(("127.0.0.2", 0))
        ignored.settimeout(3)
        try:
            ignored.connect(("127.0.0.1", port))
            ignored.sendall(b"ignored\n")
        except OSError:
            pass  # refused or cut: as good as ignored
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
        time.sleep(6)
        ignored.close()
        assert server(uid)["server_state"] == "sleeping" and not events(uid, "wake"), server(uid)
        # ...a connection that sends does, and is relayed to the game once it is ready.
        with socket.create_connection(("127.0.0.1", port), timeout=60) as held:
            held.sendall(b"hello through the wake\n")
            woken(uid)
            wake_event(uid, "tcp", port)
            assert read_line(held) == b"hello through the wake\n", server(uid)
    finally:
        for uid in uids.values():
            if s:
                s.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120)
        receiver.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_wake_on_connect_takes_a_boolean_only(stack):
    """`wake_on_connect` on create and modify: anything but a JSON boolean is a 400 error that
    creates or changes nothing; the server object and the list show it, false unless set."""
    uid = f"peontest.{RUN}wk"
    try:
        for bad in ("true", 1, 0, None, [], {}, "x" * 10000):
            r = stack.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, "start_later": True, "wake_on_connect": bad})
            assert r.status_code == 400 and r.json()["status"] == "error", (repr(bad)[:20], r.text)
        assert stack.request("GET", f"/api/v1/server/get/{uid}").status_code == 404
        r = stack.request("PUT", f"/api/v1/server/create/{uid}", json={**SETTINGS, "start_later": True})
        assert r.status_code == 200, r.text
        assert stack.request("GET", f"/api/v1/server/get/{uid}").json()["wake_on_connect"] is False
        r = stack.request("PUT", f"/api/v1/server/modify/{uid}", json={"wake_on_connect": True})
        assert r.status_code == 200 and r.json()["wake_on_connect"] is True, r.text
        for bad in ("true", 1, 0, None, [], {}, "x" * 10000):
            r = stack.request("PUT", f"/api/v1/server/modify/{uid}", json={"wake_on_connect": bad})
            assert r.status_code == 400 and r.json()["status"] == "error", (repr(bad)[:20], r.text)
        assert stack.request("GET", f"/api/v1/server/get/{uid}").json()["wake_on_connect"] is True
        listed = [x for x in stack.request("GET", "/api/v1/servers").json() if x["servername"] == f"{RUN}wk"]
        assert listed and listed[0]["wake_on_connect"] is True
        r = stack.request("PUT", f"/api/v1/server/modify/{uid}", json={"wake_on_connect": False})
        assert r.status_code == 200 and r.json()["wake_on_connect"] is False, r.text
    finally:
        stack.request("DELETE", f"/api/v1/server/eradicate/{uid}", timeout=120)
