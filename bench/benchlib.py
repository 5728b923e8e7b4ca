"""What every benchmark shares: the Docker Engine API, free ports, wrk, and a stack of its own
(scripts/stack.sh on free ports and a temp data dir, release binaries by default) whose
containers and networks carry `peon.test=<run>` and are removed when it closes."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

import requests
import urllib3

urllib3.disable_warnings()
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def docker(method, path, body=None):
    args = ["curl", "-s", "--unix-socket", "/var/run/docker.sock", "-X", method, f"http://docker/v1.41{path}"]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    out = subprocess.run(args, capture_output=True).stdout
    return json.loads(out) if out.strip() else None


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def remove_labelled(run):
    """Removes the containers and networks labelled `peon.test=<run>` (only what a run made)."""
    selector = urllib.parse.quote(json.dumps({"label": [f"peon.test={run}"]}))
    for c in docker("GET", f"/containers/json?all=1&filters={selector}") or []:
        docker("DELETE", f"/containers/{c['Id']}?force=1")
    for n in docker("GET", f"/networks?filters={selector}") or []:
        docker("DELETE", f"/networks/{n['Id']}")


def timed(fn):
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def fill_world(home, half=512 << 20):
    """A 1 GiB world in a server's user folder: `half` that does not compress, `half` of text, the
    game's user's (uid 1000) as a game would have made them; then written back to disk."""
    os.makedirs(f"{home}/user/world", exist_ok=True)
    with open(f"{home}/user/world/random.bin", "wb") as f:
        for _ in range(half >> 20):
            f.write(os.urandom(1 << 20))
    line = b"".join(b"block %08d: stone dirt grass air water\n" % i for i in range(25000))
    with open(f"{home}/user/world/map.txt", "wb") as f:
        while f.tell() < half:
            f.write(line)
    subprocess.run(["chown", "-R", "1000:1000", f"{home}/user"], check=True)
    subprocess.run(["sync"], check=True)


def settle(home):
    """Each timed step starts from a quiet disk: the folders a restore replaced are gone (Peon
    deletes them after answering) and every dirty page is written back (`sync`), so one step's
    writeback and discards (ext4 `discard`) do not land in the next one's time."""
    while any(n.startswith((".old-", ".restore-")) for n in os.listdir(home)):
        time.sleep(0.05)
    subprocess.run(["sync"], check=True)


def median(values):
    return sorted(values)[len(values) // 2]


def wrk(url, key, connections=32, seconds=8):
    """`wrk --latency` against url: (req/s, p50, p99, errors) as wrk prints them."""
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", f"X-Api-Key: {key}", url],
                         capture_output=True, text=True).stdout
    line = lambda prefix: next((l for l in out.splitlines() if l.strip().startswith(prefix)), "")
    errors = " ".join(l.strip() for l in out.splitlines() if "Non-2xx" in l or "Socket errors" in l) or "0 errors"
    return line("Requests/sec").split()[1], line("50%").split()[1], line("99%").split()[1], errors


class BenchStack:
    """nginx + peon-api + peon-scheduler on free ports; `base` is its HTTPS URL, `session` a
    requests session with the key. Use as a context manager."""

    def __init__(self, env=None, port_range="42000-42999", tmp_dir=None):
        self.run = "bench" + os.urandom(3).hex()
        self.key = "bench-key-" + os.urandom(6).hex()
        self.tmp = tempfile.mkdtemp(prefix="peon-bench-", dir=tmp_dir)
        os.chmod(self.tmp, 0o755)
        self.data = f"{self.tmp}/var"
        port = free_port()
        self.base = f"https://127.0.0.1:{port}"
        full = {**os.environ, "PEON_DATA_DIR": self.data, "PEON_HTTPS_PORT": str(port), "PEON_HTTP_PORT": str(free_port()),
                "PEON_API_KEY": self.key, "PEON_WORKERS": "2", "PEON_BIN": os.environ.get("PEON_BIN", f"{ROOT}/.build/release"),
                "PEON_RATE_LIMIT": "1000000", "PEON_RATE_BURST": "1000000", "PEON_CONN_LIMIT": "1000",
                "PEON_LABELS": f"peon.test={self.run}", "PEON_GAME_BIND": "127.0.0.1", "PEON_PORT_RANGE": port_range,
                **(env or {})}
        self.log = f"{self.tmp}/stack.log"
        out = open(self.log, "w")
        self.proc = subprocess.Popen([f"{ROOT}/scripts/stack.sh"], env=full, stdout=out, stderr=out, start_new_session=True)
        self.session = requests.Session()
        self.session.verify = False
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify; the cert is the stack's own
        self.session.headers["X-Api-Key"] = self.key
        for _ in range(300):
            try:
                if self.session.get(self.base + "/api/v1/orchestrator", timeout=1).json()["scheduler"]["running"]:
                    return
            except Exception:
                pass
            time.sleep(0.1)
        raise RuntimeError("the stack did not come up:\n" + open(self.log).read()[-4000:])

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        if error is not None:
            print(open(self.log).read()[-4000:])
        self.close()

    def close(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(120)
        except Exception:  # cleanup below must run whatever happened
            os.killpg(self.proc.pid, signal.SIGKILL)
        remove_labelled(self.run)
        shutil.rmtree(self.tmp, ignore_errors=True)
