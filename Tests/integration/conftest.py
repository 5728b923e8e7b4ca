"""Integration fixtures: the real stack (scripts/stack.sh: nginx + peon-api) on free ports and a
temporary data dir, driven over HTTPS. Everything a test creates lives under its own temp dir."""
import http.server
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest
import requests
import urllib3

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("PEON_BIN", os.path.join(ROOT, ".build", "debug"))
ADMIN_KEY = "it-admin-key-" + os.urandom(8).hex()
RUN = "it" + os.urandom(4).hex()  # every container and network a test makes carries peon.test=RUN

urllib3.disable_warnings()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """One running stack. `url(path)` is its HTTPS URL; `stop()` sends SIGTERM and waits."""

    def __init__(self, env=None, api_key=ADMIN_KEY):
        self.dir = tempfile.mkdtemp(prefix="peon-it-")
        os.chmod(self.dir, 0o755)  # nginx's workers (www-data) must reach the socket below it
        self.data = os.path.join(self.dir, "var")
        self.https_port, self.http_port = free_port(), free_port()
        self.api_key = api_key
        full = dict(os.environ)
        full.update({
            "PEON_DATA_DIR": self.data, "PEON_HTTPS_PORT": str(self.https_port), "PEON_HTTP_PORT": str(self.http_port),
            "PEON_BIN": BIN, "PEON_WORKERS": "2", "PEON_RATE_LIMIT": "2000", "PEON_RATE_BURST": "4000", "PEON_CONN_LIMIT": "128",
            "PEON_NGINX_WORKERS": "1", "PEON_LABELS": f"peon.test={RUN}", "PEON_GAME_BIND": "127.0.0.1",
            # Parallel checkouts sharing one engine pick their own range.
            "PEON_PORT_RANGE": os.environ.get("PEON_TEST_PORT_RANGE", "41000-41999"),
            # Webhook tests deliver to receivers on loopback, which Peon refuses unless allowed.
            "PEON_WEBHOOK_ALLOW": "127.0.0.1/32",
            # The host's firewall is one for every stack of the suite: only the stacks that test the
            # games' egress rules manage it (each scheduler rewrites them every minute).
            "PEON_GAME_EGRESS": "unmanaged",
        })
        full.pop("PEON_API_KEY", None)
        full.pop("API_KEY", None)
        if api_key:
            full["PEON_API_KEY"] = api_key
        full.update(env or {})
        self.env = full
        self.stdout = open(os.path.join(self.dir, "stack.out"), "w+")
        self.stderr = open(os.path.join(self.dir, "stack.err"), "w+")
        self.proc = subprocess.Popen([os.path.join(ROOT, "scripts", "stack.sh")], env=full, stdout=self.stdout,
                                     stderr=self.stderr, stdin=subprocess.DEVNULL, start_new_session=True,
                                     # As from a terminal: SIGINT not ignored, whatever this runner inherited.
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.session = requests.Session()
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("stack exited: " + self.output())
            try:
                r = requests.get(self.url("/api/v1/orchestrator"), verify=False, timeout=1,
                                 headers={"X-Api-Key": api_key} if api_key else {})
                # Up, and (unless a test runs its own) with the scheduler beating: actions work at once.
                if r.status_code == 401 or (r.status_code == 200 and (
                        full.get("PEON_START_SCHEDULER") == "0" or r.json().get("scheduler", {}).get("running"))):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("stack did not come up: " + self.output())

    def url(self, path):
        return f"https://127.0.0.1:{self.https_port}{path}"

    def request(self, method, path, key="default", **kw):
        headers = kw.pop("headers", {})
        key = self.api_key if key == "default" else key
        if key is not None:
            headers["X-Api-Key"] = key
        # Verified TLS against the stack's own self-signed certificate.
        kw.setdefault("verify", os.path.join(self.data, "tls", "cert.pem"))
        kw.setdefault("timeout", 30)
        return self.session.request(method, self.url(path), headers=headers, **kw)

    def curl(self, *args):
        """curl as a client that sends the path exactly as given (--path-as-is)."""
        out = subprocess.run(["curl", "-sk", "--path-as-is", "-o", "/dev/stderr", "-w", "%{http_code}", *args],
                             capture_output=True, timeout=30)
        return int(out.stdout.decode() or 0), out.stderr

    def peon(self, *args):
        return subprocess.run([os.path.join(BIN, "peon"), *args, "--data-dir", self.data], capture_output=True, text=True,
                              timeout=30)

    def start_scheduler(self):
        """A scheduler of this stack's own, for tests that kill it (stack made with PEON_START_SCHEDULER=0)."""
        log = open(os.path.join(self.dir, "scheduler.log"), "a")
        return subprocess.Popen([os.path.join(BIN, "peon-scheduler")], env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)

    def api_pid(self):
        out = subprocess.run(["pgrep", "-f", "-P", str(self.proc.pid), "peon-api"], capture_output=True, text=True)
        return int(out.stdout.split()[0])

    def worker_pids(self):
        out = subprocess.run(["pgrep", "-P", str(self.api_pid())], capture_output=True, text=True)
        return sorted(int(p) for p in out.stdout.split())

    def output(self):
        self.stdout.flush()
        self.stderr.flush()
        return open(self.stdout.name).read() + open(self.stderr.name).read()

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def docker(method, path, body=None):
    """The Docker Engine API, to check what Peon did with the engine's own answers."""
    import json as _json
    args = ["curl", "-s", "--unix-socket", "/var/run/docker.sock", "-X", method, f"http://docker{path}"]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "-d", _json.dumps(body)]
    out = subprocess.run(args, capture_output=True, timeout=60).stdout
    return _json.loads(out) if out.strip() else None


def docker_cleanup():
    import json as _json
    import urllib.parse
    selector = urllib.parse.quote(_json.dumps({"label": [f"peon.test={RUN}"]}))
    for c in docker("GET", f"/containers/json?all=1&filters={selector}") or []:
        docker("DELETE", f"/containers/{c['Id']}?force=1&v=1")
    for n in docker("GET", f"/networks?filters={selector}") or []:
        docker("DELETE", f"/networks/{n['Id']}")


def remove_peon_rules():
    """Peon's egress rules, as `PEON_GAME_EGRESS=open` removes them: every stack of the tests
    installs them on this host (`iptables`, `ip6tables`), none of them removes them."""
    for tool in ("iptables", "ip6tables"):
        listing = subprocess.run([tool, "-w", "-S"], capture_output=True, text=True).stdout.splitlines()
        for line in listing:
            words = line.split()
            if words[:1] == ["-A"] and not words[1].startswith("PEON-") and "-j" in words and words[-1].startswith("PEON-"):
                subprocess.run([tool, "-w", "-D", *words[1:]], capture_output=True)
        for chain in ("PEON-EGRESS", "PEON-INPUT"):
            subprocess.run([tool, "-w", "-F", chain], capture_output=True)
            subprocess.run([tool, "-w", "-X", chain], capture_output=True)


@pytest.fixture(scope="session", autouse=True)
def remove_what_tests_made():
    yield
    docker_cleanup()
    remove_peon_rules()


class PlanServer:
    """A local HTTP server that serves a plans tree from a dict (path -> bytes), with optional delays."""

    def __init__(self, files, delays=None):
        files, delays = dict(files), dict(delays or {})
        self.files = files  # tests may change what is served

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                time.sleep(delays.get(self.path, 0))
                body = files.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def plan_json(uid, image="peon/test:1", env='{"SERVER_NAME": null, "MAX_PLAYERS": "8"}'):
    return ('{"metadata": {"game_uid": "%s", "image": "%s", "description": "Remote %s"}, '
            '"ports": [[{"PORT": ["7777", "udp"]}]], "environment": %s, '
            '"volumes": {"~!/data": "/data"}}' % (uid, image, uid, env)).encode()


@pytest.fixture(scope="session")
def plan_server():
    index = b'[{"title": "Remote Game", "game_uid": "remotegame", "plan_url": "r"},' \
            b' {"title": "Broken", "game_uid": "broken", "plan_url": "b"},' \
            b' {"title": "Huge", "game_uid": "huge", "plan_url": "h"},' \
            b' {"title": "Missing", "game_uid": "missing", "plan_url": "m"},' \
            b' {"title": "Valheim Mirror", "game_uid": "valheim", "plan_url": "v"}]'
    server = PlanServer({
        "/plans.json": index,
        "/remotegame/plan.json": plan_json("remotegame"),
        "/broken/plan.json": b'{"metadata": {"game_uid": "broken", "image": "x"}, "volumes": {"/etc": "/etc"}',
        "/huge/plan.json": plan_json("huge", env='{"BIG": "%s"}' % ("x" * (300 << 10))),
        "/valheim/plan.json": plan_json("valheim"),
        "/slow/plans.json": b'[{"title": "Slow", "game_uid": "slowgame", "plan_url": "s"}]',
        "/slow/slowgame/plan.json": plan_json("slowgame"),
    }, delays={"/slow/plans.json": 3.0})
    yield server
    server.close()


@pytest.fixture(scope="session")
def stack(plan_server):
    s = Stack(env={"PEON_PLANS_URL": plan_server.url, "PEON_CORS_ORIGINS": "https://ui.example.com"})
    yield s
    s.cleanup()


@pytest.fixture
def make_stack():
    made = []

    def make(**kw):
        s = Stack(**kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.cleanup()
