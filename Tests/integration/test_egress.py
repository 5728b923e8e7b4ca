"""Games' egress (issue 16, item 1): a game reaches the internet and its own server's peers, but not
the host (any of its addresses, the bridge's gateway included) nor link-local addresses such as a
cloud's metadata service, unless PEON_GAME_EGRESS_ALLOW lists them.

The metadata service is played by a network namespace of this test holding 169.254.169.254 (and
198.18.N.2, a peer that is not the host), reached through a veth and a /32 route on the host, so
nothing this test sends leaves the machine. Every namespace, interface, route and rule it makes is
removed at the end, Peon's rules by Peon itself (PEON_GAME_EGRESS=open) and then by hand if left.
"""
import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse

import pytest

from conftest import RUN, docker, remove_peon_rules
from test_servers import create

NS = f"peg{RUN[2:]}"
HOST_IF, NS_IF = f"pe{RUN[2:]}h", f"pe{RUN[2:]}n"
OCTET = int(RUN[2:4], 16)
HOST_SIDE, PEER = f"198.18.{OCTET}.1", f"198.18.{OCTET}.2"
METADATA = "169.254.169.254"
ANSWER = b"peon-egress-reached"


def sh(*args, check=True):
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=check)


def peon_rules(tool="iptables"):
    return [line for line in sh(tool, "-w", "-S").stdout.splitlines() if "PEON-" in line]


def serve(sock):
    """Answers every connection with ANSWER (a listener on the host, or in the namespace)."""
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        with conn:
            try:
                conn.sendall(ANSWER + b"\n")
            except OSError:
                pass


LISTENER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept(); c.sendall(b"peon-egress-reached\\n"); c.close()
"""


@pytest.fixture(scope="module")
def outside():
    """The stand-in metadata service and a peer, in a namespace of their own; a listener on the host."""
    sh("ip", "netns", "del", NS, check=False)
    sh("ip", "netns", "add", NS)
    listener = None
    host = socket.socket()
    try:
        sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF, "netns", NS)
        sh("ip", "addr", "add", f"{HOST_SIDE}/24", "dev", HOST_IF)
        sh("ip", "link", "set", HOST_IF, "up")
        sh("ip", "-n", NS, "link", "set", "lo", "up")
        sh("ip", "-n", NS, "addr", "add", f"{PEER}/24", "dev", NS_IF)
        sh("ip", "-n", NS, "addr", "add", f"{METADATA}/32", "dev", NS_IF)
        sh("ip", "-n", NS, "link", "set", NS_IF, "up")
        sh("ip", "-n", NS, "route", "add", "default", "via", HOST_SIDE)
        # The metadata address is this namespace's while the test runs: nothing goes to the real one.
        sh("ip", "route", "add", f"{METADATA}/32", "via", PEER, "dev", HOST_IF)
        assert f"dev {HOST_IF}" in sh("ip", "route", "get", METADATA).stdout
        port = 18000 + OCTET
        listener = subprocess.Popen(["ip", "netns", "exec", NS, "python3", "-c", LISTENER, str(port)], stdout=subprocess.PIPE,
                                    text=True)
        assert listener.stdout.readline().strip() == "ready"
        host.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        host.bind(("0.0.0.0", 0))
        host.listen(16)
        threading.Thread(target=serve, args=(host,), daemon=True).start()
        yield {"port": port, "host_port": host.getsockname()[1]}
    finally:
        host.close()
        if listener:
            listener.kill()
            listener.wait()
        sh("ip", "route", "del", f"{METADATA}/32", "dev", HOST_IF, check=False)
        sh("ip", "netns", "del", NS, check=False)
        sh("ip", "link", "del", HOST_IF, check=False)
        remove_peon_rules()


def reach(container, address, port):
    """Whether a game's container gets an answer from address:port (busybox nc, 2 s to connect)."""
    out = subprocess.run(["docker", "exec", container, "sh", "-c", f"echo hello | nc -w 2 {address} {port}"],
                         capture_output=True, text=True, timeout=30)
    return out.stdout.strip()


def host_address():
    """This host's own address on its default route's interface (not a bridge's)."""
    dev = sh("ip", "route", "show", "default").stdout.split(" dev ")[1].split()[0]
    return sh("ip", "-4", "-o", "addr", "show", "dev", dev).stdout.split(" inet ")[1].split("/")[0]


def game(stack, name):
    uid = f"peontest.{RUN}{name}"
    r = create(stack, uid)
    assert r.status_code == 200 and r.json()["container_state"] == "running", r.text
    info = docker("GET", f"/containers/peon.warcamp.{uid}/json")
    network = docker("GET", f"/networks/{urllib.parse.quote(info['HostConfig']['NetworkMode'])}")
    return uid, info["Id"], network


def test_games_reach_neither_the_host_nor_link_local_addresses(make_stack, outside):
    port, host_port = outside["port"], outside["host_port"]
    # The listeners answer whoever may reach them: the host itself reaches both.
    with socket.create_connection((METADATA, port), timeout=2) as s:
        assert s.recv(100).startswith(ANSWER)
    with socket.create_connection((host_address(), host_port), timeout=2) as s:
        assert s.recv(100).startswith(ANSWER)

    stack = make_stack(env={"PEON_GAME_EGRESS": "restricted"})
    uid, cid, network = game(stack, "eg")
    gateway = network["IPAM"]["Config"][0]["Gateway"]

    # (a) the host: its own address and the bridge's gateway; (b) the metadata service.
    assert reach(cid, host_address(), host_port) == ""
    assert reach(cid, gateway, host_port) == ""
    assert reach(cid, METADATA, port) == ""
    # (d) a peer that is not the host, and a peer on the server's own network.
    assert reach(cid, PEER, port) == ANSWER.decode()
    peer = docker("POST", f"/containers/create?name=peon-egress-peer-{RUN}", {
        "Image": "peon-test-game:latest", "Labels": {"peon.test": RUN}, "Env": ["PORT=7000"], "User": "1000:1000",
        "HostConfig": {"NetworkMode": network["Name"]}})
    docker("POST", f"/containers/{peer['Id']}/start")
    peer_ip = docker("GET", f"/containers/{peer['Id']}/json")["NetworkSettings"]["Networks"][network["Name"]]["IPAddress"]
    deadline = time.time() + 10
    while reach(cid, peer_ip, 7000) != "hello" and time.time() < deadline:
        time.sleep(0.2)
    assert reach(cid, peer_ip, 7000) == "hello"

    # Every game bridge has Peon's name, which the rules match by one wildcard.
    bridge = network["Options"].get("com.docker.network.bridge.name", "")
    assert bridge.startswith("peon") and len(bridge) == 15, network["Options"]
    # One rule set, whatever the number of starts: a restart changes nothing.
    rules = peon_rules()
    assert "-A DOCKER-USER -i peon+ -j PEON-EGRESS" in rules and "-A INPUT -i peon+ -j PEON-INPUT" in rules, rules
    assert "-A PEON-EGRESS -d 169.254.0.0/16 -j DROP" in rules and "-A PEON-INPUT -j DROP" in rules, rules
    if os.path.exists("/proc/net/if_inet6"):
        assert "-A PEON-EGRESS -d fe80::/10 -j DROP" in peon_rules("ip6tables")
    assert stack.request("PUT", f"/api/v1/server/restart/{uid}").json()["container_state"] == "running"
    assert peon_rules() == rules
    stack.stop()

    # (c) an operator opens the metadata range: the rules are rewritten in place at the scheduler's start.
    allowed = make_stack(env={"PEON_GAME_EGRESS": "restricted", "PEON_GAME_EGRESS_ALLOW": f"{METADATA}/32"})
    _, cid2, _ = game(allowed, "eh")
    assert reach(cid2, METADATA, port) == ANSWER.decode()
    assert reach(cid2, host_address(), host_port) == ""
    after = peon_rules()
    assert f"-A PEON-EGRESS -d {METADATA}/32 -j RETURN" in after
    assert sum(1 for line in after if line.startswith("-A DOCKER-USER")) == 1, after
    allowed.stop()

    # The way out: PEON_GAME_EGRESS=open removes Peon's rules (and nothing else) at the scheduler's start.
    opened = make_stack(env={"PEON_GAME_EGRESS": "open"})
    deadline = time.time() + 15
    while (peon_rules() or peon_rules("ip6tables")) and time.time() < deadline:
        time.sleep(0.2)
    assert peon_rules() == [] and peon_rules("ip6tables") == []
    assert reach(cid2, host_address(), host_port) == ANSWER.decode()
    opened.stop()
