"""Real games on Peon's runtime images: Luanti (Debian's minetest-server) on the Debian runtime,
answering a Luanti client's handshake over UDP, and the steamcmd runtime with a stand-in steamcmd
(no Steam download is possible here) driven through PEON's update modes."""
import json
import os
import socket
import subprocess
import time
import urllib.parse

import pytest

from conftest import RUN, ROOT, Stack, docker

# A Luanti client's first datagram: protocol id, peer id 0, channel 0, reliable, seqnum 65500, original, 2-byte payload.
HANDSHAKE = bytes.fromhex("4f457403" "0000" "00" "03" "ffdc" "01" "0000")


def handshake(port, timeout=60.0):
    """Sends the handshake until the server answers; returns the reply (or None)."""
    deadline = time.time() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        while time.time() < deadline:
            s.sendto(HANDSHAKE, ("127.0.0.1", port))
            try:
                reply, _ = s.recvfrom(1024)
                return reply
            except OSError:
                time.sleep(0.2)
    return None


def wait_job(stack, job_id, timeout=900):
    """Polls a job to its end; returns the final job and every progress seen on the way."""
    seen = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = stack.request("GET", f"/api/v1/jobs/{job_id}").json()
        if job.get("progress") and job["progress"] not in seen:
            seen.append(job["progress"])
        if job["state"] in ("succeeded", "failed"):
            return job, seen
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def action(stack, verb, uid, body=None, timeout=900):
    r = stack.request("PUT", f"/api/v1/server/{verb}/{uid}?async=true", json=body or {})
    assert r.status_code == 202, r.text
    job, seen = wait_job(stack, r.json()["id"], timeout)
    assert job["state"] == "succeeded", job
    return job, seen


def container(uid):
    return docker("GET", f"/containers/peon.warcamp.{uid}/json")


def host_port(uid, key):
    return int(container(uid)["HostConfig"]["PortBindings"][key][0]["HostPort"])


def directory(stack, uid):
    game, name = uid.split(".")
    return os.path.join(stack.data, "servers", game, name)


def wait_for(predicate, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def images(labels):
    selector = urllib.parse.quote(json.dumps({"label": labels}))
    return docker("GET", f"/images/json?filters={selector}") or []


@pytest.fixture(scope="module")
def games():
    # The runtime images' base, made from Debian's archive when the engine lacks it (~20 s once).
    subprocess.run([os.path.join(ROOT, "scripts", "base-image.sh")], check=True, timeout=600)
    # The run id as a build argument gives this run's runtime images tags of their own, so each run
    # builds (and reports building) and removes only what it built.
    s = Stack(env={"PEON_IMAGE_BUILD_ARGS": f"STEAMCMD=standin,PEON_TEST_RUN={RUN}"})
    yield s
    s.cleanup()
    for image in images(["peon.runtime", f"peon.test={RUN}"]):
        docker("DELETE", f"/images/{image['Id']}?force=1")


def test_luanti_plays_saves_keeps_its_world_and_goes_away(games):
    uid = f"luanti.{RUN}l"
    r = games.request("PUT", f"/api/v1/server/create/{uid}?async=true", json={"SERVER_NAME": "Peon IT\nport = 1", "MOTD": "hi"})
    assert r.status_code == 202, r.text
    job, seen = wait_job(games, r.json()["id"])
    assert job["state"] == "succeeded", job
    assert [p["phase"] for p in seen if p["phase"] in ("building", "starting")][-1] == "starting", seen
    assert any(p["phase"] == "building" and "percent" in p and p["lines"] for p in seen), seen

    info = container(uid)
    image = info["Config"]["Image"]
    assert image.startswith("peon/runtime-debian-luanti:")
    assert info["Config"]["User"] == "1000:1000"
    assert info["HostConfig"]["CapDrop"] == ["ALL"] and info["HostConfig"]["SecurityOpt"] == ["no-new-privileges:true"]
    assert info["HostConfig"]["Memory"] == 2048 << 20 and info["HostConfig"]["PidsLimit"] == 4096
    assert "GAME_DIR=/home/steam/steamcmd/data" in info["Config"]["Env"]
    labels = docker("GET", f"/images/{image}/json")["Config"]["Labels"]
    assert labels["peon.managed"] == "true" and labels["peon.runtime"] == "debian"

    port = host_port(uid, "30000/udp") if "30000/udp" in info["HostConfig"]["PortBindings"] else \
        int(next(iter(info["HostConfig"]["PortBindings"].values()))[0]["HostPort"])
    reply = handshake(port)
    assert reply is not None and reply[:4] == HANDSHAKE[:4], reply
    # The plan's Luanti probe found it joinable as well (and left no peer behind).
    deadline = time.time() + 30
    while time.time() < deadline and not games.request("GET", f"/api/v1/server/get/{uid}").json()["ready"]:
        time.sleep(0.25)
    obj = games.request("GET", f"/api/v1/server/get/{uid}").json()
    assert obj["ready"] and obj["server_state"] == "running" and obj["ready_at"], obj
    home = directory(games, uid)
    assert read(os.path.join(home, "config", "state")) == "STARTED\n"
    conf = read(os.path.join(home, "config", "minetest.conf"))
    # A newline in a setting cannot smuggle a second config line in.
    assert "server_name = Peon ITport = 1\n" in conf and "\nport = 1\n" not in conf

    # Stop: SIGTERM reaches the game through docker-init and the entry script; it saves and exits 0.
    world = os.path.join(home, "user", "world")
    before = {n: os.stat(os.path.join(world, n)).st_mtime for n in os.listdir(world)}
    stopped_at = time.time()
    action(games, "stop", uid)
    after = {n: os.stat(os.path.join(world, n)).st_mtime for n in os.listdir(world)}
    assert container(uid)["State"]["ExitCode"] == 0
    assert read(os.path.join(home, "config", "state")) == "OFFLINE\n"
    assert {"world.mt", "env_meta.txt", "map_meta.txt"} <= set(after), sorted(after)
    assert any(after[n] >= stopped_at - 1 and after[n] != before.get(n) for n in after), (before, after, stopped_at)
    world_mt = read(os.path.join(world, "world.mt"))

    # Start again: the same world, playable again.
    action(games, "start", uid)
    assert handshake(port) is not None
    assert read(os.path.join(world, "world.mt")) == world_mt

    # Update with an unchanged plan: no build, same image.
    started = time.time()
    job, seen = action(games, "update", uid, {"mode": "image"})
    assert container(uid)["Config"]["Image"] == image
    assert not any(p["phase"] == "building" for p in seen) and time.time() - started < 30
    assert handshake(port) is not None

    # Backup (the plan stops the game around the copy, so the world on disk is whole), a changed
    # world, a restore: the backup's world is back and the server answers again.
    r = games.request("POST", f"/api/v1/server/backup/{uid}")
    assert r.status_code == 201, r.text
    backup = r.json()
    assert handshake(port) is not None
    saved = read(os.path.join(world, "world.mt"))
    action(games, "stop", uid)
    with open(os.path.join(world, "world.mt"), "a") as f:
        f.write("peon_changed_after_backup = true\n")
    open(os.path.join(world, "extra.txt"), "w").write("not in the backup")
    action(games, "start", uid)
    action(games, "restore", uid, {"id": backup["id"]})
    assert read(os.path.join(world, "world.mt")) == saved and not os.path.exists(os.path.join(world, "extra.txt"))
    assert handshake(port) is not None

    # Destroy with eradicate: container, network and files go.
    r = games.request("DELETE", f"/api/v1/server/destroy/{uid}", json={"eradicate": True})
    assert r.status_code == 200, r.text
    assert docker("GET", f"/containers/peon.warcamp.{uid}/json").get("message")
    selector = urllib.parse.quote(json.dumps({"label": [f"peon.server={uid}"]}))
    assert docker("GET", f"/networks?filters={selector}") == []
    assert not os.path.exists(home)


STEAMTEST_PLAN = {
    "metadata": {"game_uid": "steamtest", "description": "steamcmd runtime test", "image": "umlatt/steamcmd:latest"},
    "ports": [[{"PORT": ["27015", "tcp"]}]],
    "environment": {"STEAM_ID": "1234567", "SERVER_NAME": "steam test"},
    "volumes": {"~!/actions": "/actions", "~!/data": "/home/steam/steamcmd/data", "~!/config": "/home/steam/config",
                "~!/user": "/home/steam/user"},
}
STEAMTEST_START = """#!/bin/bash
# A game that saves on SIGTERM: writes user/saved, then exits 0.
trap 'echo saved >/home/steam/user/saved; exit 0' TERM
echo "running in $PWD" >/home/steam/user/running
while true; do sleep 1 & wait $!; done
"""


def install_plan(stack, plan):
    folder = os.path.join(stack.data, "plans", plan["metadata"]["game_uid"])
    os.makedirs(os.path.join(folder, "actions"), exist_ok=True)
    with open(os.path.join(folder, "plan.json"), "w") as f:
        json.dump(plan, f)
    with open(os.path.join(folder, "actions", "server_start"), "w") as f:
        f.write(STEAMTEST_START)
    r = stack.request("PUT", "/api/v1/plans")
    assert r.status_code == 200, r.text


def test_steamcmd_runtime_installs_then_follows_peons_update_modes(games):
    install_plan(games, STEAMTEST_PLAN)
    uid = f"steamtest.{RUN}s"
    r = games.request("PUT", f"/api/v1/server/create/{uid}?async=true", json={})
    assert r.status_code == 202, r.text
    job, _ = wait_job(games, r.json()["id"])
    assert job["state"] == "succeeded", job
    home = directory(games, uid)
    calls_file = os.path.join(home, "config", "steamcmd-calls")

    def calls():
        return (read(calls_file) or "").splitlines()

    def settled(count):
        """The runtime ran steamcmd `count` times in all and then started the game."""
        return wait_for(lambda: len(calls()) == count and read(os.path.join(home, "config", "state")) == "STARTED\n"
                        and os.path.exists(os.path.join(home, "user", "running")))

    first = "+force_install_dir /home/steam/steamcmd/data +login anonymous +app_update 1234567 +quit"
    assert settled(1) and calls() == [first]
    assert os.path.exists(os.path.join(home, "actions", ".update"))
    assert os.path.exists(os.path.join(home, "data", "installed-by-standin"))
    assert read(os.path.join(home, "user", "running")) == "running in /home/steam/steamcmd/data\n"
    image = container(uid)["Config"]["Image"]
    assert image.startswith("peon/runtime-steamcmd:") and container(uid)["Config"]["User"] == "1000:1000"

    # A restart keeps the game: no steamcmd run.
    os.remove(os.path.join(home, "user", "running"))
    action(games, "restart", uid)
    assert settled(1)
    assert read(os.path.join(home, "user", "saved")) == "saved\n"  # SIGTERM reached the game

    # PEON's modes: which download the game again, which validate, which leave it alone.
    expected = 1
    for mode, downloads, validates in [("quick", False, False), ("image", False, False), ("server", True, False),
                                       ("validate", True, True), ("game", True, False), ("full", True, False),
                                       ("reinit", True, False)]:
        os.remove(os.path.join(home, "user", "running"))
        marker = os.path.join(home, "data", "kept")
        open(marker, "w").close()
        action(games, "update", uid, {"mode": mode})
        expected += downloads
        assert settled(expected), (mode, calls())
        if downloads:
            assert calls()[-1] == (first.replace(" +quit", " validate +quit") if validates else first), (mode, calls())
        assert os.path.exists(os.path.join(home, "actions", ".update"))
        assert not os.path.exists(os.path.join(home, "actions", ".validate"))
        assert os.path.exists(marker) == (mode != "reinit"), mode  # reinit empties data/
        assert container(uid)["Config"]["Image"] == image, mode  # unchanged inputs: the same image

    # The plan asks for a Debian package: `update image` builds a new image and prunes the old one.
    plan = json.loads(json.dumps(STEAMTEST_PLAN))
    plan["metadata"]["packages"] = ["less"]
    install_plan(games, plan)
    job, seen = action(games, "update", uid, {"mode": "image"})
    new_image = container(uid)["Config"]["Image"]
    assert new_image.startswith("peon/runtime-steamcmd-steamtest:") and new_image != image
    assert any(p["phase"] == "building" and p["lines"] for p in seen), seen
    assert any("percent" in p for p in seen), seen
    tags = [t for i in images(["peon.runtime", f"peon.test={RUN}"]) for t in i.get("RepoTags") or []]
    assert new_image in tags and image not in tags
    assert settled(expected)

    action(games, "stop", uid)
    assert container(uid)["State"]["ExitCode"] == 0
    assert games.request("DELETE", f"/api/v1/server/eradicate/{uid}").status_code == 200
