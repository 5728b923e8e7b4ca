"""`peon`'s server verbs: the built binary against a real stack, output compared with the API's own answers."""
import http.server
import json
import os
import shutil
import subprocess
import threading

import pytest

from conftest import BIN, RUN, docker


def peon(stack, *args, env=None, home=None, cwd=None):
    full = {k: v for k, v in os.environ.items() if not k.startswith("PEON_")}
    full.update({"PEON_URL": stack.url(""), "PEON_API_KEY": stack.api_key, "PEON_DATA_DIR": stack.data,
                 "HOME": home or os.path.join(stack.dir, "home")})
    full.update(env or {})
    for k in [k for k, v in full.items() if v is None]:
        del full[k]
    return subprocess.run([os.path.join(BIN, "peon"), *args], capture_output=True, text=True, timeout=300, env=full, cwd=cwd)


def test_plans_match_the_api(stack):
    out = peon(stack, "plans")
    assert out.returncode == 0, out.stderr
    plans = stack.request("GET", "/api/v1/plans").json()
    expected = "GAME                 TITLE\n" + "".join(f"{p['game_uid']:<20} {p['title']}\n" for p in plans)
    assert out.stdout == expected
    # --json is the API's answer, byte for byte.
    assert json.loads(peon(stack, "plans", "--json").stdout) == plans


def test_create_follows_the_job_then_power_verbs(stack):
    uid = f"peontest.{RUN}cli"
    out = peon(stack, "create", uid, "--set", "SERVER_NAME=Cli", "--set", "PASSWORD=pw", "--description", "from the CLI")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    # Not a terminal: plain lines, one per change, then the outcome.
    assert lines[0].startswith("job ") and " create: " in lines[0] and lines[-1].endswith(" succeeded"), out.stdout
    assert "\r" not in out.stdout
    assert docker("GET", f"/containers/peon.warcamp.{uid}/json")["State"]["Running"]

    listed = peon(stack, "servers")
    row = [l for l in listed.stdout.splitlines() if l.startswith(uid)]
    assert row and row[0].split()[1] == "running" and row[0].endswith("from the CLI"), listed.stdout
    assert json.loads(peon(stack, "servers", "--json").stdout) == stack.request("GET", "/api/v1/servers").json()

    out = peon(stack, "stop", uid)
    assert (out.returncode, out.stdout) == (0, f"{uid}: exited\n"), out.stdout + out.stderr
    out = peon(stack, "start", uid)
    assert (out.returncode, out.stdout) == (0, f"{uid}: running\n"), out.stdout + out.stderr
    out = peon(stack, "update", uid, "--mode", "quick", "--json")
    assert out.returncode == 0 and json.loads(out.stdout.splitlines()[-1])["state"] == "succeeded", out.stdout + out.stderr


@pytest.fixture(scope="module")
def existing(stack):
    uid = f"peontest.{RUN}clx"
    r = stack.request("PUT", f"/api/v1/server/create/{uid}", json={"SERVER_NAME": "x", "PASSWORD": "pw", "start_later": True})
    assert r.status_code == 200, r.text
    return uid


def test_logs_backup_and_restore_verbs(stack, existing):
    out = peon(stack, "logs", "--lines", "5", existing)
    assert out.returncode == 0, out.stderr
    out = peon(stack, "backup", existing)
    assert out.returncode == 0, out.stderr
    backups = stack.request("GET", f"/api/v1/server/backups/{existing}").json()
    assert len(backups) >= 1
    out = peon(stack, "restore", existing)  # the newest backup
    assert out.returncode == 0, out.stderr
    out = peon(stack, "restore", existing, "1e9")
    assert out.returncode == 64, out.stderr


def test_errors_and_exit_codes(stack):
    out = peon(stack, "start", f"peontest.{RUN}none")
    assert out.returncode == 1 and out.stderr == "Error: There was an issue getting the server. [server.not_found] (HTTP 404)\n"
    out = peon(stack, "servers", env={"PEON_API_KEY": "not-a-valid-key-at-all"})
    assert out.returncode == 1 and "[auth.invalid_key] (HTTP 401)" in out.stderr
    out = peon(stack, "servers", env={"PEON_URL": "https://127.0.0.1:1"})
    assert out.returncode == 3 and out.stderr.startswith("Error: cannot reach the API")
    # Without the stack's data dir the self-signed certificate is not trusted: no silent --insecure.
    out = peon(stack, "servers", env={"PEON_DATA_DIR": "/nonexistent"})
    assert out.returncode == 3, out.stderr
    assert peon(stack, "servers", "--insecure", env={"PEON_DATA_DIR": "/nonexistent"}).returncode == 0
    for hostile in ["..", "a.$(id)", "a.b.c", "a." + "x" * 10000, "a.b;rm"]:
        out = peon(stack, "start", hostile)
        assert out.returncode == 64 and "Error:" in out.stderr, hostile
    assert peon(stack, "create", "a.b", "--set", "NOEQUALS").returncode == 64


def test_config_file_must_be_private(stack, tmp_path):
    home = str(tmp_path)
    os.makedirs(os.path.join(home, ".config", "peon"))
    path = os.path.join(home, ".config", "peon", "config")
    with open(path, "w") as f:
        f.write(f"# peon CLI\nurl = {stack.url('')}\nkey = {stack.api_key}\n")
    os.chmod(path, 0o644)
    out = peon(stack, "servers", env={"PEON_URL": None, "PEON_API_KEY": None}, home=home)
    assert out.returncode == 3 and out.stderr == f"Error: {path} is readable by others; run: chmod 600 {path}\n"
    os.chmod(path, 0o600)
    out = peon(stack, "servers", env={"PEON_URL": None, "PEON_API_KEY": None}, home=home)
    assert out.returncode == 0 and out.stdout.startswith("SERVER "), out.stderr
    # Flags beat the environment, which beats the file.
    out = peon(stack, "servers", "--key", "wrong-key-wrong-key", home=home)
    assert out.returncode == 1


def test_help_lists_exit_codes():
    out = subprocess.run([os.path.join(BIN, "peon"), "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "Exit codes: 0 done; 1 the API refused or the job failed; 2 not supported by\nthis server; 3" in out.stdout
    out = subprocess.run([os.path.join(BIN, "peon"), "start", "--help"], capture_output=True, text=True)
    assert out.stdout.startswith("OVERVIEW: Start a server.\n\nUSAGE: peon start [--url <url>] [--key <key>] [--cacert <cacert>] "
                                 "[--insecure] [--allow-http] [--data-dir <data-dir>] [--json] <server> [--wait] "
                                 "[--wait-timeout <wait-timeout>]\n")


def test_progress_bar_on_a_terminal(stack, existing):
    # script(1) gives peon a pseudo-terminal: the job is drawn as a bar redrawn with \r.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEON_")}
    env.update({"PEON_URL": stack.url(""), "PEON_API_KEY": stack.api_key, "PEON_DATA_DIR": stack.data, "HOME": stack.dir})
    cmd = f"{os.path.join(BIN, 'peon')} update {existing} --mode quick"
    out = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, timeout=300, env=env)
    text = out.stdout.decode()  # bytes: text mode would turn each \r into \n
    assert out.returncode == 0, text
    assert "\r\x1b[K[" in text and " update: " in text and text.rstrip().endswith("succeeded"), repr(text)


def test_json_errors_go_to_stdout_for_scripts(stack):
    out = peon(stack, "start", f"peontest.{RUN}none", "--json")
    assert out.returncode == 1 and json.loads(out.stdout)["code"] == "server.not_found"


def test_stack_certificate_only_from_the_configured_data_dir(stack, tmp_path):
    # Whoever can write var/tls/cert.pem in the folder peon runs in must not become the API: the
    # stack's certificate is trusted only from the data folder Peon is configured with, by absolute path.
    os.makedirs(tmp_path / "var" / "tls")
    shutil.copy(os.path.join(stack.data, "tls", "cert.pem"), tmp_path / "var" / "tls" / "cert.pem")
    for data_dir in [None, "var", "./var", "var/"]:
        out = peon(stack, "servers", env={"PEON_DATA_DIR": data_dir}, cwd=str(tmp_path))
        assert out.returncode == 3 and "certificate is not trusted" in out.stderr and "PEON_DATA_DIR" in out.stderr, (data_dir, out)
        out = peon(stack, "servers", "--data-dir", data_dir or "var", env={"PEON_DATA_DIR": None}, cwd=str(tmp_path))
        assert out.returncode == 3, (data_dir, out)
    # Named by absolute path it is trusted, from the environment or the flag (which wins).
    assert peon(stack, "servers", env={"PEON_DATA_DIR": str(tmp_path / "var")}, cwd="/").returncode == 0
    out = peon(stack, "servers", "--data-dir", stack.data, env={"PEON_DATA_DIR": "/nonexistent"}, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    # A link in its place is not followed.
    os.remove(tmp_path / "var" / "tls" / "cert.pem")
    os.symlink(os.path.join(stack.data, "tls", "cert.pem"), tmp_path / "var" / "tls" / "cert.pem")
    assert peon(stack, "servers", env={"PEON_DATA_DIR": str(tmp_path / "var")}).returncode == 3


class Recorder(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_GET(self):
        Recorder.seen.append((self.path, self.headers.get("X-Api-Key")))
        body = b"[]"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_http_urls_need_allow_http(stack, tmp_path):
    # Plain http sends the key in clear: refused before any connection unless asked for by name.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        Recorder.seen.clear()
        out = peon(stack, "servers", env={"PEON_URL": url})
        assert out.returncode == 3 and "--allow-http" in out.stderr and "unencrypted" in out.stderr, out
        out = peon(stack, "servers", "--url", url + "/")
        assert out.returncode == 3 and "--allow-http" in out.stderr, out
        home = str(tmp_path)
        os.makedirs(os.path.join(home, ".config", "peon"))
        path = os.path.join(home, ".config", "peon", "config")
        with open(path, "w") as f:
            f.write(f"url = {url}\nkey = {stack.api_key}\n")
        os.chmod(path, 0o600)
        out = peon(stack, "servers", env={"PEON_URL": None, "PEON_API_KEY": None}, home=home)
        assert out.returncode == 3 and "--allow-http" in out.stderr, out
        assert Recorder.seen == [], "nothing was sent"
        out = peon(stack, "servers", "--allow-http", env={"PEON_URL": url})
        assert out.returncode == 0, out
        assert Recorder.seen == [("/api/v1/servers", stack.api_key)]
        # https needs no such flag, and the flag changes nothing there.
        assert peon(stack, "servers", "--allow-http").returncode == 0
    finally:
        server.shutdown()
