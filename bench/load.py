"""Reads while slow actions are in flight: GET /servers, GET /orchestrator and GET /plans at 32
connections, first with nothing else running (the same-run baseline), then while 32 synchronous
stops of game servers that take 20 s to save hold their requests open. Prints req/s, p50, p99,
errors, and the resident memory of each worker process with 64 requests in flight.

Run: bench/load.sh (builds release binaries, starts dockerd if needed)."""
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

import requests
import urllib3

urllib3.disable_warnings()
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
RUN = "bench" + os.urandom(3).hex()
KEY = "bench-key-" + os.urandom(6).hex()
SLOW = int(os.environ.get("SLOW_SERVERS", "32"))
STOP_SECONDS = 25
DURATION = 6


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
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{DURATION}s", "--latency", "-H", f"X-Api-Key: {KEY}", url],
                         capture_output=True, text=True).stdout
    line = lambda prefix: next((l for l in out.splitlines() if l.strip().startswith(prefix)), "")
    errors = " ".join(l.strip() for l in out.splitlines() if "Non-2xx" in l or "Socket errors" in l) or "0 errors"
    return line("Requests/sec").split()[1], line("50%").split()[1], line("99%").split()[1], errors


def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
    return 0


def main():
    tmp = tempfile.mkdtemp(prefix="peon-bench-")
    os.chmod(tmp, 0o755)
    port = free_port()
    env = {**os.environ, "PEON_DATA_DIR": f"{tmp}/var", "PEON_HTTPS_PORT": str(port), "PEON_HTTP_PORT": str(free_port()),
           "PEON_API_KEY": KEY, "PEON_WORKERS": "2", "PEON_BIN": f"{ROOT}/.build/release", "PEON_RATE_LIMIT": "1000000",
           "PEON_RATE_BURST": "1000000", "PEON_CONN_LIMIT": "1000", "PEON_LABELS": f"peon.test={RUN}",
           "PEON_GAME_BIND": "127.0.0.1", "PEON_PORT_RANGE": "43000-43999", "PEON_SCHEDULER_RUNNERS": str(SLOW)}
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
        uids = [f"peontest.{RUN}s{i}" for i in range(SLOW)]
        for uid in uids:
            s.put(f"{base}/api/v1/server/create/{uid}", json={"SERVER_NAME": "Bench", "PASSWORD": "pw",
                                                              "STOP_SECONDS": str(STOP_SECONDS)}).raise_for_status()
        endpoints = ["/api/v1/servers", "/api/v1/orchestrator", "/api/v1/plans"]
        baseline = {ep: wrk(base + ep) for ep in endpoints}

        pool = concurrent.futures.ThreadPoolExecutor(SLOW)
        started = time.monotonic()
        stops = [pool.submit(s.put, f"{base}/api/v1/server/stop/{uid}", timeout=120) for uid in uids]
        time.sleep(1.0)
        loaded = {}
        memory = []
        supervisor = subprocess.run(["pgrep", "-f", "-P", str(stack.pid), "peon-api"], capture_output=True, text=True).stdout.split()[0]
        workers = lambda: subprocess.run(["pgrep", "-P", supervisor], capture_output=True, text=True).stdout.split()
        for ep in endpoints:
            sampler = concurrent.futures.ThreadPoolExecutor(1).submit(
                lambda: (time.sleep(DURATION / 2), [(pid, rss(pid)) for pid in workers()]))
            loaded[ep] = wrk(base + ep)
            memory.append(sampler.result()[1])
        in_flight_at_end = sum(not f.done() for f in stops)
        results = [f.result() for f in stops]
        took = time.monotonic() - started

        print(f"wrk -t2 -c32 -d{DURATION}s over HTTPS, 2 worker processes x 32 threads, {os.cpu_count()} cores;"
              f" {SLOW} servers whose game takes {STOP_SECONDS} s to stop")
        print(f"{'endpoint':24} {'phase':22} {'req/s':>9} {'p50':>9} {'p99':>9}  errors")
        for ep in endpoints:
            print(f"{ep:24} {'alone':22} {baseline[ep][0]:>9} {baseline[ep][1]:>9} {baseline[ep][2]:>9}  {baseline[ep][3]}")
            print(f"{'':24} {f'{SLOW} slow stops in flight':22} {loaded[ep][0]:>9} {loaded[ep][1]:>9} {loaded[ep][2]:>9}  {loaded[ep][3]}")
        print(f"slow stops: {sum(r.status_code == 200 for r in results)}/{SLOW} answered 200, all done after {took:.1f} s,"
              f" {in_flight_at_end} still in flight when the last read phase ended")
        for sample in memory:
            print("worker RSS with 64 requests in flight: " + ", ".join(f"pid {pid} {mb} MB" for pid, mb in sample))
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
