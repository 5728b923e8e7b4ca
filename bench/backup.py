"""Backup and restore of a 1 GiB server folder (half incompressible, half compressible) through
Peon's API against `tar | zstd -3` and `zstd -d | tar -x` of the same folders, in the same run.

Run: bench/backup.sh (builds release binaries, starts dockerd if needed)."""
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
ROUNDS = int(os.environ.get("ROUNDS", "3"))
HALF = 512 << 20


def docker(method, path):
    out = subprocess.run(["curl", "-s", "--unix-socket", "/var/run/docker.sock", "-X", method, f"http://docker/v1.41{path}"],
                         capture_output=True).stdout
    return json.loads(out) if out.strip() else None


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    tmp = tempfile.mkdtemp(prefix="peon-bench-", dir=os.environ.get("BENCH_DIR", "/var/tmp"))
    os.chmod(tmp, 0o755)
    port = free_port()
    data = f"{tmp}/var"
    env = {**os.environ, "PEON_DATA_DIR": data, "PEON_HTTPS_PORT": str(port), "PEON_HTTP_PORT": str(free_port()),
           "PEON_API_KEY": KEY, "PEON_WORKERS": "2", "PEON_BIN": os.environ.get("PEON_BIN", f"{ROOT}/.build/release"),
           "PEON_RATE_LIMIT": "1000000", "PEON_RATE_BURST": "1000000", "PEON_LABELS": f"peon.test={RUN}",
           "PEON_GAME_BIND": "127.0.0.1", "PEON_PORT_RANGE": "48000-48999"}
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
        uid = f"peontest.{RUN}"
        s.put(f"{base}/api/v1/server/create/{uid}", json={"SERVER_NAME": "Bench", "PASSWORD": "pw", "start_later": True},
              timeout=120).raise_for_status()
        home = f"{data}/servers/peontest/{RUN}"
        os.makedirs(f"{home}/user/world", exist_ok=True)
        with open(f"{home}/user/world/random.bin", "wb") as f:
            for _ in range(HALF >> 20):
                f.write(os.urandom(1 << 20))
        line = b"".join(b"block %08d: stone dirt grass air water\n" % i for i in range(25000))
        with open(f"{home}/user/world/map.txt", "wb") as f:
            while f.tell() < HALF:
                f.write(line)
        subprocess.run(["sync"])
        peon_backup, floor_backup, peon_restore, floor_restore, sizes = [], [], [], [], []
        for i in range(ROUNDS):
            made = {}
            peon_backup.append(timed(lambda: made.update(s.post(f"{base}/api/v1/server/backup/{uid}", timeout=900).json())))
            sizes.append(made["size"])
            out = f"{tmp}/floor.tar.zst"
            floor_backup.append(timed(lambda: subprocess.run(
                f"tar -C {home} -cf - actions config user | zstd -3 -q -f -o {out}", shell=True, check=True)))
            peon_restore.append(timed(lambda: s.put(f"{base}/api/v1/server/restore/{uid}", json={"id": made["id"]},
                                                    timeout=900).raise_for_status()))
            target = f"{tmp}/floor-restore"
            shutil.rmtree(target, ignore_errors=True)
            os.makedirs(target)
            floor_restore.append(timed(lambda: subprocess.run(
                f"zstd -d -q -c {out} | tar -C {target} -xf -", shell=True, check=True)))
            floor_size = os.path.getsize(out)
        med = lambda xs: sorted(xs)[len(xs) // 2]
        print(f"1 GiB server folder (512 MiB random + 512 MiB text), median of {ROUNDS}, {os.cpu_count()} cores")
        print(f"{'':10} {'peon (API)':>12} {'tar|zstd -3':>12} {'ratio':>7}")
        print(f"{'backup':10} {med(peon_backup):11.2f}s {med(floor_backup):11.2f}s {med(peon_backup) / med(floor_backup):7.2f}")
        print(f"{'restore':10} {med(peon_restore):11.2f}s {med(floor_restore):11.2f}s {med(peon_restore) / med(floor_restore):7.2f}")
        print(f"archive size: peon {sizes[-1] / 2**20:.0f} MiB (verified, sha256), zstd -3 {floor_size / 2**20:.0f} MiB")
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
