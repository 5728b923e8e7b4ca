"""Log follow: a game writing about 1,000 lines a second (each line carries the game's own clock,
bash's $EPOCHREALTIME) reaches 16 Server-Sent Events clients; prints the delay from the game's
echo to each client's receipt (p50, p99, max), lines received, and GET /servers at 32
connections with and without the streams, in the same run.

Run: bench/logs.sh (builds release binaries, starts dockerd, makes the Debian base image)."""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import requests
import urllib3

urllib3.disable_warnings()
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
RUN = "bench" + os.urandom(3).hex()
KEY = "bench-key-" + os.urandom(6).hex()
CLIENTS = 16
SECONDS = 10

PLAN = {"metadata": {"game_uid": "chatty", "image": "debian:bookworm-slim", "runtime": "debian",
                     "description": "Writes timestamped lines (log benchmark)."},
        "ports": [[{"PORT": ["47000", "tcp"]}]], "environment": {"RATE": "1000"},
        "volumes": {"~!/actions": "/actions", "~!/config": "/home/steam/config"}}
# 10 lines every 10 ms with bash builtins only (no fork per line): about 1,000 lines a second.
START = """#!/bin/bash
exec {never}<> <(:)
n=0
while :; do
  for _ in 1 2 3 4 5 6 7 8 9 10; do n=$((n + 1)); echo "t=$EPOCHREALTIME n=$n"; done
  read -t 0.01 -u "$never" || true
done
"""


def docker(method, path):
    out = subprocess.run(["curl", "-s", "--unix-socket", "/var/run/docker.sock", "-X", method, f"http://docker/v1.41{path}"],
                         capture_output=True).stdout
    return json.loads(out) if out.strip() else None


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(url):
    out = subprocess.run(["wrk", "-t2", "-c32", "-d8s", "--latency", "-H", f"X-Api-Key: {KEY}", url],
                         capture_output=True, text=True).stdout
    line = lambda prefix: next((l for l in out.splitlines() if l.strip().startswith(prefix)), "")
    errors = " ".join(l.strip() for l in out.splitlines() if "Non-2xx" in l or "Socket errors" in l) or "0 errors"
    return line("Requests/sec").split()[1], line("50%").split()[1], line("99%").split()[1], errors


def main():
    tmp = tempfile.mkdtemp(prefix="peon-bench-")
    os.chmod(tmp, 0o755)
    port = free_port()
    data = f"{tmp}/var"
    env = {**os.environ, "PEON_DATA_DIR": data, "PEON_HTTPS_PORT": str(port), "PEON_HTTP_PORT": str(free_port()),
           "PEON_API_KEY": KEY, "PEON_WORKERS": "2", "PEON_BIN": f"{ROOT}/.build/release", "PEON_RATE_LIMIT": "1000000",
           "PEON_RATE_BURST": "1000000", "PEON_CONN_LIMIT": "1000", "PEON_LABELS": f"peon.test={RUN}",
           "PEON_GAME_BIND": "127.0.0.1", "PEON_PORT_RANGE": "47000-47999"}
    log = open(f"{tmp}/stack.log", "w")
    stack = subprocess.Popen([f"{ROOT}/scripts/stack.sh"], env=env, stdout=log, stderr=log, start_new_session=True)
    base = f"https://127.0.0.1:{port}"
    s = requests.Session()
    s.verify = False
    s.trust_env = False
    s.headers["X-Api-Key"] = KEY
    try:
        for _ in range(200):
            try:
                if s.get(base + "/api/v1/orchestrator", timeout=1).json()["scheduler"]["running"]:
                    break
            except Exception:
                pass
            time.sleep(0.1)
        os.makedirs(f"{data}/plans/chatty/actions", exist_ok=True)
        json.dump(PLAN, open(f"{data}/plans/chatty/plan.json", "w"))
        open(f"{data}/plans/chatty/actions/server_start", "w").write(START)
        s.put(base + "/api/v1/plans").raise_for_status()
        baseline = wrk(base + "/api/v1/servers")
        uid = f"chatty.{RUN}"
        s.put(f"{base}/api/v1/server/create/{uid}", json={}, timeout=600).raise_for_status()
        time.sleep(2)

        delays = [[] for _ in range(CLIENTS)]
        stop = threading.Event()

        def client(i):
            with s.get(f"{base}/api/v1/server/logs/{uid}", params={"follow": "true", "lines": "1"}, stream=True,
                       timeout=60) as r:
                for raw in r.iter_lines(decode_unicode=True):
                    if raw.startswith("data: t="):
                        now = time.time()
                        delays[i].append(now - float(raw[8:].split()[0]))
                    if stop.is_set():
                        return

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(1)
        for d in delays:
            d.clear()
        loaded = wrk(base + "/api/v1/servers")
        stop.set()
        for t in threads:
            t.join(10)
        all_delays = sorted(x * 1000 for d in delays for x in d)
        received = [len(d) for d in delays]
        p = lambda q: all_delays[min(len(all_delays) - 1, int(q * len(all_delays)))]
        print(f"{CLIENTS} SSE clients following one game writing ~1,000 lines/s, 2 worker processes, {os.cpu_count()} cores")
        print(f"game echo -> client receipt: p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {all_delays[-1]:.1f} ms"
              f" over {len(all_delays)} lines; per client {min(received)}-{max(received)} lines in ~8 s"
              f" ({statistics.mean(received) / 8:.0f} lines/s each)")
        print(f"{'GET /api/v1/servers':24} {'phase':18} {'req/s':>9} {'p50':>9} {'p99':>9}  errors")
        print(f"{'':24} {'no streams':18} {baseline[0]:>9} {baseline[1]:>9} {baseline[2]:>9}  {baseline[3]}")
        print(f"{'':24} {f'{CLIENTS} streams':18} {loaded[0]:>9} {loaded[1]:>9} {loaded[2]:>9}  {loaded[3]}")
    except Exception:
        print(open(f"{tmp}/stack.log").read()[-4000:])
        raise
    finally:
        try:
            os.killpg(stack.pid, signal.SIGTERM)
            stack.wait(120)
        except Exception:
            os.killpg(stack.pid, signal.SIGKILL)
        sel = urllib.parse.quote(json.dumps({"label": [f"peon.test={RUN}"]}))
        for c in docker("GET", f"/containers/json?all=1&filters={sel}") or []:
            docker("DELETE", f"/containers/{c['Id']}?force=1")
        for n in docker("GET", f"/networks?filters={sel}") or []:
            docker("DELETE", f"/networks/{n['Id']}")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
