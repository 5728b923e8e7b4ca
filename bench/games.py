"""Real game benchmark: Luanti (Debian's minetest-server on Peon's Debian runtime image).

- create-to-playable: from the API call (PUT /server/create, through nginx over HTTPS) until the
  server answers a Luanti client's handshake over UDP, against `docker run` of the same built image
  (same entry, mounts, user and init) until the same handshake, in the same run, rounds interleaved:
  on Docker's default bridge, and after `docker network create` (Peon gives each server its own
  network, which costs the engine 70-100 ms here);
- create-to-ready and start-to-ready: until the API says `ready` (Peon's own Luanti probe,
  metadata.ready), polled every 20 ms, beside the client's own handshake;
- the image step of a create, cold (the image is built: apt installs minetest-server) and cached
  (the tag, a hash of the inputs, exists: one inspect), both from the create call until the job's
  progress enters `starting`;
- wake-to-joinable (sleep and wake), WAKE_ROUNDS rounds: a server made with `idle_stop` 1 and
  `wake_on_connect` is left to fall asleep (zero players for a minute, counted from its log every
  second: the stack runs with PEON_PLAYER_POLL_SECONDS=1), then, once Peon holds its port, the
  client sends its handshake every 50 ms from one socket: from the first datagram (the hello that
  wakes it) until the game answers. In the same round, against a container of the same image made
  as the `docker run` baseline is (on a network of its own, as Peon's), answered once, stopped
  through the Engine API, then `POST /containers/<id>/start` over the engine's socket and the same
  handshake loop: from the start call until the answer.

Run: bench/games.sh (ROUNDS=5, WAKE_ROUNDS=3 by default; WAKE_ROUNDS=0 skips the wake section,
about 75 s a round). STACK_LOG=<path> keeps the stack's log (the scheduler's `job.ms` and "a client
woke" lines). Only images made by Peon's tests and benchmarks (label peon.test) are removed to make
the cold build cold."""
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

import requests
import urllib3
from benchlib import docker, free_port, remove_labelled

urllib3.disable_warnings()
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
RUN = "bench" + os.urandom(3).hex()
KEY = "bench-key-" + os.urandom(6).hex()
ROUNDS = int(os.environ.get("ROUNDS", "5"))
WAKE_ROUNDS = int(os.environ.get("WAKE_ROUNDS", "3"))
HANDSHAKE = bytes.fromhex("4f4574030000" "00" "03" "ffdc" "01" "0000")


def direct_home(home):
    """A server's four folders for a container made outside Peon, as Peon lays them out."""
    for sub in ("actions", "config", "data", "user"):
        os.makedirs(f"{home}/{sub}")
    shutil.copy(f"{ROOT}/plans/luanti/actions/server_start", f"{home}/actions/server_start")
    subprocess.run(["chown", "-R", "1000:1000", home], check=True)
    return home


def docker_run(name, home, image, game_port, network=()):
    """`docker run` of the Luanti image with Peon's entry, mounts, user, init and port."""
    return subprocess.run(["docker", "run", "-d", "--name", name, "--label", f"peon.test={RUN}", "--init", *network,
                           "--user", "1000:1000", "-p", f"127.0.0.1:{game_port}:{game_port}/udp", "-e", f"PORT={game_port}",
                           "-e", "SERVER_NAME=Bench", "-v", f"{home}/actions:/actions",
                           "-v", f"{home}/data:/home/steam/steamcmd/data", "-v", f"{home}/config:/home/steam/config",
                           "-v", f"{home}/user:/home/steam/user", image], capture_output=True, text=True)


def engine_post(path):
    """A POST to the Docker Engine API on its socket, as Peon makes it (no client process in
    between); returns the status."""
    with socket.socket(socket.AF_UNIX) as u:
        u.connect("/var/run/docker.sock")
        u.sendall(f"POST /v1.41{path} HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := u.recv(4096):
            reply += chunk
    return int(reply.split(b" ", 2)[1])


def engine_steps(container, since):
    """What the engine did to `container` (name) after `since` (wall clock, s), from its events:
    seconds after `since` of the container's network `connect` (the start has begun: its endpoint
    is made) and of its `start` event (sent once the process runs)."""
    cid = docker("GET", f"/containers/{container}/json")["Id"]
    query = urllib.parse.urlencode({"since": int(since) - 1, "until": int(time.time()) + 1})
    out = subprocess.run(["curl", "-s", "--unix-socket", "/var/run/docker.sock", f"http://docker/v1.41/events?{query}"],
                         capture_output=True, text=True).stdout
    steps = {}
    for event in (json.loads(line) for line in out.splitlines() if line.strip()):
        at = event["timeNano"] / 1e9 - since
        ours = event["Actor"]["ID"] == cid or event["Actor"].get("Attributes", {}).get("container") == cid
        if ours and at >= 0 and event["Action"] in ("connect", "start"):
            steps.setdefault(event["Action"], at)
    return steps


def held(port):
    """Whether something holds UDP `port` on 127.0.0.1 (a sleeping server's: Peon)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        try:
            u.bind(("127.0.0.1", port))
            return False
        except OSError:
            return True


def playable(port, timeout=120.0):
    """Sends the handshake every 50 ms until the server answers; the time it answered."""
    deadline = time.perf_counter() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.05)
        while time.perf_counter() < deadline:
            s.sendto(HANDSHAKE, ("127.0.0.1", port))
            try:
                if s.recvfrom(1024)[0][:4] == HANDSHAKE[:4]:
                    return time.perf_counter()
            except OSError:
                pass
    raise RuntimeError(f"no handshake answer on {port}")


def main():
    tmp = tempfile.mkdtemp(prefix="peon-bench-")
    os.chmod(tmp, 0o755)
    port = free_port()
    binaries = os.environ.get("PEON_BIN") or f"{ROOT}/.build/release"
    env = {**os.environ, "PEON_DATA_DIR": f"{tmp}/var", "PEON_HTTPS_PORT": str(port), "PEON_HTTP_PORT": str(free_port()),
           "PEON_API_KEY": KEY, "PEON_WORKERS": "2", "PEON_BIN": binaries, "PEON_RATE_LIMIT": "1000000",
           "PEON_RATE_BURST": "1000000", "PEON_LABELS": f"peon.test={RUN}", "PEON_GAME_BIND": "127.0.0.1",
           "PEON_PORT_RANGE": "43000-43999"}
    if WAKE_ROUNDS > 0:
        env["PEON_PLAYER_POLL_SECONDS"] = "1"  # the zero players of an idle minute, seen within a second
        env["PEON_IDLE_MINUTE_SECONDS"] = "10"  # and that minute 10 s long: the bench measures the wake, not the wait
    log = open(f"{tmp}/stack.log", "w")
    stack = subprocess.Popen([f"{ROOT}/scripts/stack.sh"], env=env, stdout=log, stderr=log, start_new_session=True)
    base = f"https://127.0.0.1:{port}"
    s = requests.Session()
    s.verify = False
    s.trust_env = False
    s.headers["X-Api-Key"] = KEY
    try:
        for _ in range(100):
            try:
                if s.get(base + "/api/v1/orchestrator", timeout=1).json()["scheduler"]["running"]:
                    break
            except Exception:
                pass
            time.sleep(0.1)

        def image_step(name):
            """Create (async) and time the call until the job's progress enters `starting`; then wait for it."""
            started = time.perf_counter()
            r = s.put(f"{base}/api/v1/server/create/luanti.{name}?async=true", json={"SERVER_NAME": "Bench"})
            assert r.status_code == 202, r.text
            job = r.json()["id"]
            step = None
            while True:
                j = s.get(f"{base}/api/v1/jobs/{job}").json()
                if step is None and (j.get("progress") or {}).get("phase") == "starting":
                    step = time.perf_counter() - started
                if j["state"] in ("succeeded", "failed"):
                    assert j["state"] == "succeeded", j
                    return step if step is not None else time.perf_counter() - started
                time.sleep(0.01)

        # Cold: no luanti runtime image made by tests or benchmarks is left, so the engine builds it all.
        selector = urllib.parse.quote(json.dumps({"label": ["peon.runtime=debian", "peon.test"]}))
        for image in docker("GET", f"/images/json?filters={selector}") or []:
            if any(t.startswith("peon/runtime-debian-luanti:") for t in image.get("RepoTags") or []):
                docker("DELETE", f"/images/{image['Id']}?force=1")
        # The first server stays (stopped) for the whole run: Peon prunes runtime images no server uses.
        cold = image_step(f"{RUN}c")
        s.put(f"{base}/api/v1/server/stop/luanti.{RUN}c").raise_for_status()
        cached = []
        for i in range(ROUNDS):
            cached.append(image_step(f"{RUN}k{i}"))
            s.delete(f"{base}/api/v1/server/eradicate/luanti.{RUN}k{i}").raise_for_status()
        image = next(t for i in docker("GET", f"/images/json?filters={selector}") or [] for t in i.get("RepoTags") or []
                     if t.startswith("peon/runtime-debian-luanti:"))

        peon, direct, direct_net = [], [], []
        # Joinable as Peon's probe reports it (`ready` in the API), against the client's handshake.
        ready, start_playable, start_ready = [], [], []

        def ready_at(uid, timeout=120.0):
            """Polls the server object every 20 ms until `ready`; the time it said so."""
            deadline = time.perf_counter() + timeout
            while time.perf_counter() < deadline:
                if s.get(f"{base}/api/v1/server/get/{uid}").json().get("ready"):
                    return time.perf_counter()
                time.sleep(0.02)
            raise RuntimeError(f"{uid} never ready")

        for i in range(ROUNDS):
            # Peon: the API call until the handshake is answered.
            name = f"{RUN}p{i}"
            started = time.perf_counter()
            r = s.put(f"{base}/api/v1/server/create/luanti.{name}", json={"SERVER_NAME": "Bench"})
            r.raise_for_status()
            info = docker("GET", f"/containers/peon.warcamp.luanti.{name}/json")
            game_port = int(next(iter(info["HostConfig"]["PortBindings"].values()))[0]["HostPort"])
            peon.append(playable(game_port) - started)
            ready.append(ready_at(f"luanti.{name}") - started)
            # A start of the stopped server: until the client's handshake, and until Peon says ready.
            s.put(f"{base}/api/v1/server/stop/luanti.{name}").raise_for_status()
            started = time.perf_counter()
            s.put(f"{base}/api/v1/server/start/luanti.{name}").raise_for_status()
            start_playable.append(playable(game_port) - started)
            start_ready.append(ready_at(f"luanti.{name}") - started)
            s.delete(f"{base}/api/v1/server/eradicate/luanti.{name}").raise_for_status()

            # Docker: `docker run` of the same image, same entry, mounts, user and init, until the same
            # handshake; once on the default bridge, once on a network of its own as Peon gives each server.
            for variant, results in (("bridge", direct), ("own network", direct_net)):
                home = direct_home(f"{tmp}/direct{i}{len(results)}{variant[0]}")
                game_port = free_port(socket.SOCK_DGRAM)
                name = f"{RUN}-direct{i}{variant[0]}"
                started = time.perf_counter()
                network = []
                if variant == "own network":
                    subprocess.run(["docker", "network", "create", "--label", f"peon.test={RUN}", name], check=True, capture_output=True)
                    network = ["--network", name]
                run = docker_run(name, home, image, game_port, network)
                if run.returncode == 0:
                    results.append(playable(game_port) - started)
                elif variant == "bridge":  # an engine without docker0 (--bridge=none, or lost): that baseline is skipped
                    print(f"docker run on the default bridge failed: {run.stderr.strip()[:200]}")
                else:
                    raise RuntimeError(run.stderr)
                subprocess.run(["docker", "rm", "-f", name], capture_output=True)
                if network:
                    subprocess.run(["docker", "network", "rm", name], capture_output=True)

        # Sleep and wake: Peon's woken server against the engine's start of a stopped container.
        wake_peon, wake_ready, wake_direct = [], [], []
        # Where the time goes, from the engine's events: until its network connect, until its `start`.
        steps_peon, steps_direct = [], []
        for i in range(WAKE_ROUNDS):
            uid = f"luanti.{RUN}w{i}"
            s.put(f"{base}/api/v1/server/create/{uid}", json={"SERVER_NAME": "Bench", "idle_stop": 1,
                                                               "wake_on_connect": True}).raise_for_status()
            server = s.get(f"{base}/api/v1/server/get/{uid}").json()
            game_port = next(p["port"] for p in server["ports"] if p["name"] == "PORT")
            deadline = time.time() + 240
            while s.get(f"{base}/api/v1/server/get/{uid}").json()["server_state"] != "sleeping" or not held(game_port):
                if time.time() > deadline:
                    raise RuntimeError(f"{uid} never slept: {s.get(f'{base}/api/v1/server/get/{uid}').json()}")
                time.sleep(0.2)
            time.sleep(1)
            wall, started = time.time(), time.perf_counter()  # the loop's first datagram is the hello that wakes it
            wake_peon.append(playable(game_port) - started)
            wake_ready.append(ready_at(uid) - started)
            steps_peon.append(engine_steps(f"peon.warcamp.{uid}", wall))
            s.delete(f"{base}/api/v1/server/eradicate/{uid}").raise_for_status()

            # The engine alone: the same image's container (its own network, as Peon's), once up, stopped, started.
            home = direct_home(f"{tmp}/wake{i}")
            game_port = free_port(socket.SOCK_DGRAM)
            name = f"{RUN}-wake{i}"
            subprocess.run(["docker", "network", "create", "--label", f"peon.test={RUN}", name], check=True, capture_output=True)
            run = docker_run(name, home, image, game_port, ["--network", name])
            if run.returncode != 0:
                raise RuntimeError(run.stderr)
            try:
                playable(game_port)
            except RuntimeError as error:
                logs = subprocess.run(["docker", "logs", "--tail", "30", name], capture_output=True, text=True)
                raise RuntimeError(f"{error}: {docker('GET', f'/containers/{name}/json')['State']}\n{logs.stdout}{logs.stderr}") from None
            assert engine_post(f"/containers/{name}/stop?t=30") == 204
            time.sleep(1)
            wall, started = time.time(), time.perf_counter()
            assert engine_post(f"/containers/{name}/start") == 204
            wake_direct.append(playable(game_port) - started)
            steps_direct.append(engine_steps(name, wall))
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)
            subprocess.run(["docker", "network", "rm", name], capture_output=True)

        def ms(values):
            return statistics.median(values) * 1000 if values else float("nan")

        print(f"luanti, {ROUNDS} rounds, medians in ms ({binaries.rsplit('/', 1)[-1]} binaries)")
        print(f"create-to-playable  Peon {ms(peon):6.0f}   docker run {ms(direct):6.0f} (ratio {ms(peon) / ms(direct):.2f}x)"
              f"   docker network create + run {ms(direct_net):6.0f} (ratio {ms(peon) / ms(direct_net):.2f}x)")
        print(f"  Peon rounds           {[round(v * 1000) for v in peon]}")
        print(f"create-to-ready (the API's `ready`, Peon's Luanti probe) {ms(ready):6.0f}, {ms(ready) - ms(peon):+.0f} after the client's handshake")
        print(f"start-to-playable (a stopped server, the client's handshake) {ms(start_playable):6.0f}, start-to-ready {ms(start_ready):6.0f}")
        print(f"  ready rounds {[round(v * 1000) for v in ready]}, start-to-playable {[round(v * 1000) for v in start_playable]}, "
              f"start-to-ready {[round(v * 1000) for v in start_ready]}")
        print(f"  docker run rounds     {[round(v * 1000) for v in direct]}")
        print(f"  own network rounds    {[round(v * 1000) for v in direct_net]}")
        print(f"image step of a create  cold {cold * 1000:8.0f}   cached {ms(cached):8.0f}   ratio {cold / statistics.median(cached):.0f}x")
        print(f"  cached rounds {[round(v * 1000) for v in cached]}")
        if WAKE_ROUNDS > 0:
            print(f"wake-to-joinable ({WAKE_ROUNDS} rounds)  Peon (the hello wakes it) {ms(wake_peon):6.0f}   "
                  f"Engine API start of a stopped container {ms(wake_direct):6.0f} (ratio {ms(wake_peon) / ms(wake_direct):.2f}x)"
                  f"   wake-to-ready (the API's `ready`) {ms(wake_ready):6.0f}")
            print(f"  Peon rounds {[round(v * 1000) for v in wake_peon]}, engine start rounds {[round(v * 1000) for v in wake_direct]}, "
                  f"wake-to-ready rounds {[round(v * 1000) for v in wake_ready]}")
            for label, steps, totals in (("Peon", steps_peon, wake_peon), ("engine start", steps_direct, wake_direct)):
                print(f"  {label}: the engine's network connect, its `start` event, the answer (ms after the first datagram "
                      f"or the start call): {[tuple(round(x * 1000) if x is not None else None for x in (st.get('connect'), st.get('start'), t)) for st, t in zip(steps, totals)]}")
    except Exception:
        print(open(f"{tmp}/stack.log").read()[-4000:])
        raise
    finally:
        try:
            os.killpg(stack.pid, signal.SIGTERM)
            stack.wait(120)
        except Exception as error:  # cleanup below must run whatever happened
            print(f"stack did not stop cleanly: {error}")
            os.killpg(stack.pid, signal.SIGKILL)
        remove_labelled(RUN)
        if os.environ.get("STACK_LOG"):
            shutil.copy(f"{tmp}/stack.log", os.environ["STACK_LOG"])
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
