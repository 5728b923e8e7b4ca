"""Server lifecycle through Peon (nginx → API → SQLite job → scheduler → Docker) against the same
container operations made directly on the Docker Engine API in the same run (the floor), plus
GET /servers, with 1, 20 and 100 real servers on the engine, and the lateness of timed stops.

Run: bench/servers.sh (builds release binaries, starts dockerd if needed, prints a table)."""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import requests
import urllib3
from benchlib import docker, free_port, remove_labelled, timed

urllib3.disable_warnings()
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
RUN = "bench" + os.urandom(3).hex()
KEY = "bench-key-" + os.urandom(6).hex()
ROUNDS = int(os.environ.get("ROUNDS", "3"))








def main():
    tmp = tempfile.mkdtemp(prefix="peon-bench-")
    os.chmod(tmp, 0o755)
    port = free_port()
    env = {**os.environ, "PEON_DATA_DIR": f"{tmp}/var", "PEON_HTTPS_PORT": str(port), "PEON_HTTP_PORT": str(free_port()),
           "PEON_API_KEY": KEY, "PEON_WORKERS": "2", "PEON_BIN": f"{ROOT}/.build/release", "PEON_RATE_LIMIT": "1000000",
           "PEON_RATE_BURST": "1000000", "PEON_LABELS": f"peon.test={RUN}", "PEON_GAME_BIND": "127.0.0.1",
           "PEON_PORT_RANGE": "42000-42999"}
    log = open(f"{tmp}/stack.log", "w")
    stack = subprocess.Popen([f"{ROOT}/scripts/stack.sh"], env=env, stdout=log, stderr=log, start_new_session=True)
    base = f"https://127.0.0.1:{port}"
    s = requests.Session()
    s.verify = False
    s.trust_env = False  # REQUESTS_CA_BUNDLE would override verify; the cert is the stack's own self-signed one
    s.headers["X-Api-Key"] = KEY
    try:
        for _ in range(100):
            try:
                if s.get(base + "/api/v1/orchestrator", timeout=1).json()["scheduler"]["running"]:
                    break
            except Exception:
                pass
            time.sleep(0.1)
        settings = {"SERVER_NAME": "Bench", "PASSWORD": "pw"}
        background = 0
        rows = []
        for n in (1, 20, 100):
            # n servers exist while one more goes through its lifecycle (n - 1 running in the background).
            while background < n - 1:
                s.put(f"{base}/api/v1/server/create/peontest.{RUN}b{background}", json=settings).raise_for_status()
                background += 1
            peon = {"create+start": [], "stop": [], "start": [], "restart": []}
            floor = {"create+start": [], "stop": [], "start": [], "restart": []}
            for i in range(ROUNDS):
                uid = f"peontest.{RUN}n{n}r{i}"
                peon["create+start"].append(timed(lambda: s.put(f"{base}/api/v1/server/create/{uid}", json=settings).raise_for_status()))
                peon["stop"].append(timed(lambda: s.put(f"{base}/api/v1/server/stop/{uid}").raise_for_status()))
                peon["start"].append(timed(lambda: s.put(f"{base}/api/v1/server/start/{uid}").raise_for_status()))
                peon["restart"].append(timed(lambda: s.put(f"{base}/api/v1/server/restart/{uid}").raise_for_status()))
                # The floor makes exactly the container Peon made (same config, mounts, ports, limits).
                made = docker("GET", f"/containers/peon.warcamp.{uid}/json")
                s.delete(f"{base}/api/v1/server/destroy/{uid}").raise_for_status()
                name = f"peon-floor-{RUN}n{n}r{i}"
                config = {k: made["Config"][k] for k in ("Image", "Hostname", "User", "Env", "Labels", "ExposedPorts")}
                host = {k: made["HostConfig"][k] for k in ("PortBindings", "Mounts", "Init", "SecurityOpt", "CapDrop", "PidsLimit", "LogConfig")}
                config["Labels"] = {"peon.test": RUN}

                def direct_create():
                    docker("POST", "/networks/create", {"Name": name, "Labels": {"peon.test": RUN}})
                    cid = docker("POST", f"/containers/create?name={name}", {**config, "HostConfig": {**host, "NetworkMode": name}})["Id"]
                    docker("POST", f"/containers/{cid}/start")
                floor["create+start"].append(timed(direct_create))
                floor["stop"].append(timed(lambda: docker("POST", f"/containers/{name}/stop?t=30")))
                floor["start"].append(timed(lambda: docker("POST", f"/containers/{name}/start")))
                floor["restart"].append(timed(lambda: docker("POST", f"/containers/{name}/restart?t=30")))
                docker("DELETE", f"/containers/{name}?force=1")
                docker("DELETE", f"/networks/{name}")
            out = subprocess.run(["wrk", "-t2", "-c32", "-d8s", "--latency", "-H", f"X-Api-Key: {KEY}", base + "/api/v1/servers"],
                                 capture_output=True, text=True).stdout
            listed = len(s.get(base + "/api/v1/servers").json())
            rps = next(l.split()[1] for l in out.splitlines() if l.startswith("Requests/sec"))
            p50 = next(l.split()[1] for l in out.splitlines() if l.strip().startswith("50%"))
            p99 = next(l.split()[1] for l in out.splitlines() if l.strip().startswith("99%"))
            rows.append((n, {op: (statistics.median(peon[op]), statistics.median(floor[op])) for op in peon}, listed, rps, p50, p99))

        print(f"server lifecycle, median of {ROUNDS} rounds in ms (Peon through nginx over HTTPS, waiting for the job;"
              " docker = the identical container made directly on the Engine API)")
        print(f"{'servers':>7} {'operation':14} {'peon':>9} {'docker':>9} {'ratio':>7}")
        for n, ops, _, _, _, _ in rows:
            for op, (p, f) in ops.items():
                print(f"{n:7} {op:14} {p:9.1f} {f:9.1f} {p / f:7.2f}")
        print(f"{'servers':>7} {'GET /servers':14} {'req/s':>9} {'p50':>9} {'p99':>9}  (wrk -t2 -c32 -d8s)")
        for n, _, listed, rps, p50, p99 in rows:
            print(f"{listed:7} {'':14} {rps:>9} {p50:>9} {p99:>9}")

        # Timed stops: how late after their due second do containers stop?
        late = []
        uids = [f"peontest.{RUN}t{i}" for i in range(3)]
        for uid in uids:
            s.put(f"{base}/api/v1/server/create/{uid}", json=settings).raise_for_status()
        dues = {uid: s.put(f"{base}/api/v1/server/stop/{uid}", json={"interval": "3s"}).json()["time"] for uid in uids}
        time.sleep(6)
        for uid in uids:
            info = docker("GET", f"/containers/peon.warcamp.{uid}/json")["State"]
            finished = time.mktime(time.strptime(info["FinishedAt"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
            late.append(finished + float("0." + info["FinishedAt"][20:26]) - dues[uid])
        print(f"timed stop lateness (container exit after the due second): max {max(late):.2f} s over {len(late)} servers,"
              f" with {background + len(uids)} servers on the engine")
    except Exception:
        print(open(f"{tmp}/stack.log").read()[-4000:])
        raise
    finally:
        stopping = time.perf_counter()
        try:
            os.killpg(stack.pid, signal.SIGTERM)
            stack.wait(120)
            print(f"stack stopped in {time.perf_counter() - stopping:.1f} s")
        except Exception as error:  # cleanup below must run whatever happened
            print(f"stack did not stop cleanly: {error}")
            os.killpg(stack.pid, signal.SIGKILL)
        remove_labelled(RUN)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
