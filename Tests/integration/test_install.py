"""`make install`: the systemd units verify, and the installed binaries run with the installed env
file the way the units run them (users, groups, capabilities), in a temp prefix (no systemd here)."""
import os
import shlex
import signal
import socket
import stat
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import BIN, ROOT, RUN, free_port
from test_servers import SETTINGS

UNITS = ["peon-api.service", "peon-scheduler.service", "peon-nginx.service", "peon.target", "peon-acme.service", "peon-acme.timer"]


def make(target, dirs):
    env = dict(os.environ, PEON_BIN=BIN, **dirs)
    return subprocess.run(["make", "-s", "-C", ROOT, target], env=env, capture_output=True, text=True, timeout=120)


def unit(path):
    """A unit file as {key: [values]}, in order."""
    values = {}
    for line in open(path).read().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


def env_file(path):
    return dict(line.split("=", 1) for line in open(path).read().splitlines() if line and not line.startswith("#"))


def as_unit(u, command):
    """`command` run as the unit runs it: its user, groups and ambient capabilities."""
    if "User" not in u:
        return command
    wrap = ["setpriv", f"--reuid={u['User'][0]}", f"--regid={u['Group'][0]}"]
    wrap.append("--groups=" + ",".join(u.get("SupplementaryGroups", [""])[0].split()) if "SupplementaryGroups" in u else "--clear-groups")
    if "AmbientCapabilities" in u:
        caps = ",".join("+" + c.lower().removeprefix("cap_") for c in u["AmbientCapabilities"][0].split())
        wrap += [f"--inh-caps={caps}", f"--ambient-caps={caps}"]
    return wrap + ["--"] + command


@pytest.mark.skipif(os.geteuid() != 0, reason="installs a user and runs the units' users: needs root")
def test_make_install_units_verify_and_the_installed_stack_runs():
    base = tempfile.mkdtemp(prefix="peon-install-")
    os.chmod(base, 0o755)  # the peon user and nginx's workers reach the data dir below it
    dirs = {"PREFIX": f"{base}/usr", "SYSCONFDIR": f"{base}/etc", "UNITDIR": f"{base}/units", "STATEDIR": f"{base}/state"}
    procs, ok = [], False
    try:
        r = make("install", dirs)
        assert r.returncode == 0, r.stderr
        lib = f"{base}/usr/lib/peon"
        for b in ("peon-api", "peon-scheduler", "peon"):
            assert os.access(f"{lib}/bin/{b}", os.X_OK)
        assert os.path.isfile(f"{lib}/plans/peontest/plan.json") and os.path.isfile(f"{lib}/nginx/peon.conf.template")
        env_path = f"{base}/etc/peon/peon.env"
        assert stat.S_IMODE(os.stat(env_path).st_mode) == 0o600
        st = os.stat(dirs["STATEDIR"])
        assert st.st_uid == int(subprocess.run(["id", "-u", "peon"], capture_output=True, text=True).stdout)

        paths = [f"{dirs['UNITDIR']}/{u}" for u in UNITS]
        verify = subprocess.run(["systemd-analyze", "verify", *paths], capture_output=True, text=True)
        assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr
        api, scheduler, nginx = (unit(p) for p in paths[:3])
        for u in (api, scheduler, nginx):
            assert u["Restart"] == ["on-failure"] and u["NoNewPrivileges"] == ["yes"] and u["ProtectSystem"] == ["strict"]
            assert u["ReadWritePaths"] == [dirs["STATEDIR"]] and u["ProtectHome"] == ["yes"] and u["PrivateTmp"] == ["yes"]
            assert u["PartOf"] == ["peon.target"] and u["EnvironmentFile"] == [env_path]
        assert api["User"] == ["peon"] and scheduler["User"] == ["peon"] and scheduler["SupplementaryGroups"] == ["docker"]

        # The admin's edits survive a second install.
        https, http = free_port(), free_port()
        key = "install-key-" + os.urandom(6).hex()
        with open(env_path, "a") as f:
            f.write(f"PEON_HTTPS_PORT={https}\nPEON_HTTP_PORT={http}\nPEON_API_KEY={key}\nPEON_LABELS=peon.test={RUN}\n"
                    "PEON_GAME_BIND=127.0.0.1\nPEON_PORT_RANGE=46000-46999\nPEON_WORKERS=2\nPEON_NGINX_WORKERS=1\n")
        edited = open(env_path).read()
        assert make("install", dirs).returncode == 0
        assert open(env_path).read() == edited and stat.S_IMODE(os.stat(env_path).st_mode) == 0o600

        # Run the installed binaries with the installed env file, as the units do.
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        env.update(env_file(env_path))
        log = open(os.path.join(base, "stack.log"), "w")

        def start(u, command):
            full = dict(env, **dict(e.split("=", 1) for e in u.get("Environment", [])))
            p = subprocess.Popen(as_unit(u, command), env=full, cwd=u.get("WorkingDirectory", ["/"])[0], stdout=log, stderr=log,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
            procs.append(p)
            return p

        start(api, shlex.split(api["ExecStart"][0]))
        sock = f"{dirs['STATEDIR']}/run/api.sock"
        deadline = time.time() + 20
        while time.time() < deadline and not os.path.exists(sock):
            time.sleep(0.05)
        assert os.path.exists(sock), open(log.name).read()
        start(scheduler, shlex.split(scheduler["ExecStart"][0]))
        for pre in nginx["ExecStartPre"]:
            r = subprocess.run(shlex.split(pre), env=env, capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
        start(nginx, shlex.split(nginx["ExecStart"][0]))

        url = f"https://127.0.0.1:{https}/api/v1"
        cert = f"{dirs['STATEDIR']}/tls/cert.pem"
        headers = {"X-Api-Key": key}

        def running():
            try:
                return requests.get(url + "/orchestrator", headers=headers, verify=cert, timeout=2).json()["scheduler"]["running"]
            except (requests.RequestException, ValueError):
                return False

        deadline = time.time() + 20
        while time.time() < deadline and not running():
            time.sleep(0.1)
        assert running(), open(log.name).read()
        uid = f"peontest.{RUN}in"
        r = requests.put(f"{url}/server/create/{uid}", headers=headers, json=SETTINGS, verify=cert, timeout=60)
        assert r.status_code == 200 and r.json()["container_state"] == "running", r.text + open(log.name).read()
        peon = int(subprocess.run(["id", "-u", "peon"], capture_output=True, text=True).stdout)
        for p in procs[:2]:
            assert int(open(f"/proc/{p.pid}/status").read().split("Uid:")[1].split()[0]) == peon
        r = requests.delete(f"{url}/server/eradicate/{uid}", headers=headers, verify=cert, timeout=60)
        assert r.status_code == 200, r.text
        # The installed CLI finds the installed data dir.
        cli = subprocess.run([f"{base}/usr/bin/peon", "key", "list"], capture_output=True, text=True, env=dict(env))
        assert cli.returncode == 0 and "admin" in cli.stdout, cli.stderr
        ok = True
    finally:
        for p, sig in zip(procs, (signal.SIGTERM, signal.SIGTERM, signal.SIGQUIT)):
            p.send_signal(sig)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        if not ok:
            subprocess.run(["rm", "-rf", base])

    try:
        r = make("uninstall", dirs)
        assert r.returncode == 0, r.stderr
        assert not os.path.exists(f"{base}/usr/lib/peon") and not any(os.path.exists(f"{dirs['UNITDIR']}/{u}") for u in UNITS)
        assert os.path.isfile(f"{dirs['STATEDIR']}/peon.db") and os.path.isfile(env_path), "the data and configuration stay"
    finally:
        subprocess.run(["rm", "-rf", base])
